"""The split's first evaluation run behind the app, so it serves at once: a large split takes
minutes to score, and its images can be reviewed meanwhile (the queue is in name order
until the scores are in)."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from dataclasses import dataclass, field

from models.evaluate import ProgressCallback
from models.scoring import SplitScores
from reviewer.review_queue import ScoreCache


@dataclass
class BackgroundScoring:
    """An evaluation of the split running in its own thread while people already review."""

    names: tuple[str, str]
    total: int
    future: Future[SplitScores] = field(default_factory=Future)
    done: int = 0

    @property
    def running(self) -> bool:
        return not self.future.done()

    def failure(self) -> BaseException | None:
        """The error that stopped it, None while it runs or once it succeeded."""
        return None if self.running else self.future.exception()


def score_in_background(
    scores: ScoreCache, name_a: str, name_b: str, progress: ProgressCallback | None = None
) -> BackgroundScoring:
    """Evaluate the split with the pair into the score cache, in a thread of its own."""
    scoring = BackgroundScoring((name_a, name_b), len(scores.registry.dataset))

    def report(done: int, total: int) -> None:
        scoring.done = done
        if progress is not None:
            progress(done, total)

    scoring.future.set_running_or_notify_cancel()

    def run() -> None:
        try:
            scoring.future.set_result(scores.evaluate(name_a, name_b, report))
        except BaseException as error:
            scoring.future.set_exception(error)

    # A daemon thread: quitting the app must not wait for the evaluation to finish.
    threading.Thread(target=run, name="scoring", daemon=True).start()
    return scoring
