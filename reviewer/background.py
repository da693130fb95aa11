"""The split's first evaluation run behind the app, so it serves at once: a large split takes
minutes to score, and its images can be reviewed meanwhile (the queue is in name order
until the scores are in). At start-up the same thread first compiles the taxonomy and labels,
loads both models and looks for the pair's stored scores, so that none of it delays
serving the page."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

from models.evaluate import ProgressCallback
from models.scoring import SplitScores
from models.taxonomy import compile_taxonomy
from models.upsampling import compile_fast_labels
from reviewer.review_queue import ScoreCache

LOADING = "loading the models"
SCORING = "scoring"


@dataclass
class BackgroundScoring:
    """An evaluation of the split running in its own thread while people already review."""

    names: tuple[str, str]
    total: int
    future: Future[SplitScores | None] = field(default_factory=Future)
    """The split's scores; None when the store already held them (nothing was scored)."""
    done: int = 0
    stage: str = SCORING
    """:data:`LOADING` while the thread loads the models and looks for stored scores."""

    @property
    def running(self) -> bool:
        return not self.future.done()

    def failure(self) -> BaseException | None:
        """The error that stopped it, None while it runs or once it succeeded."""
        return None if self.running else self.future.exception()


def score_in_background(
    scores: ScoreCache,
    name_a: str,
    name_b: str,
    progress: ProgressCallback | None = None,
    when_missing: bool = False,
    starting: Callable[[], None] | None = None,
    after: threading.Event | None = None,
) -> BackgroundScoring:
    """Evaluate the split with the pair into the score cache, in a thread of its own. With
    ``when_missing`` the thread first loads both models and ends there when the store holds
    the pair's scores (a restart); ``starting`` is called from it as the evaluation begins.
    The thread waits for ``after`` first: start-up sets it once the page is served, so that
    neither loading nor scoring takes the CPU from serving it."""
    scoring = BackgroundScoring((name_a, name_b), len(scores.registry.dataset))
    if when_missing:
        scoring.stage = LOADING

    def report(done: int, total: int) -> None:
        scoring.done = done
        if progress is not None:
            progress(done, total)

    def evaluate() -> SplitScores | None:
        if after is not None:
            after.wait()
        compile_taxonomy()
        compile_fast_labels()
        if when_missing:
            for name in (name_a, name_b):
                scores.registry.model(name)
            if scores.cached_scores(name_a, name_b) is not None:
                return None
            scoring.stage = SCORING
        if starting is not None:
            starting()
        return scores.evaluate(name_a, name_b, report)

    _run_in_thread(evaluate, scoring.future)
    return scoring


def _run_in_thread(job: Callable[[], SplitScores | None], future: Future) -> None:
    """``job``'s result or error into ``future``, from a daemon thread: quitting the app
    must not wait for the evaluation to finish."""
    future.set_running_or_notify_cancel()

    def run() -> None:
        try:
            future.set_result(job())
        except BaseException as error:
            future.set_exception(error)

    threading.Thread(target=run, name="scoring", daemon=True).start()
