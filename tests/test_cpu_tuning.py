"""The CPU tuner: measured once per machine and key, read back from its file, robust to a
bad file, and the fastest option kept only when it beats the plain pass by the margin."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from models.cpu_tuning import (
    BUDGET_SECONDS,
    MARGIN,
    MAX_ROUNDS,
    CpuTuner,
    balanced_chunk,
    candidates,
    machine_signature,
)
from models.execution import PLAIN, Execution

OPTIONS = candidates(16, (96, 96))


def quiet() -> float:
    """The load per core of a quiet machine, for tuners whose measurements must be kept."""
    return 0.0


class FakeClock:
    """A clock that only moves when an option runs, by that option's cost; counts reads."""

    def __init__(self, costs: dict[Execution, float]) -> None:
        self.costs = costs
        self.now = 0.0
        self.reads = 0
        self.runs: list[Execution] = []

    def __call__(self) -> float:
        self.reads += 1
        return self.now

    def run(self, option: Execution) -> None:
        self.runs.append(option)
        self.now += self.costs[option]


def _costs(fastest: Execution, speedup: float) -> dict[Execution, float]:
    costs = {option: 1.0 for option in OPTIONS}
    costs[fastest] = 1.0 / speedup
    return costs


def test_candidates_start_with_the_plain_pass_and_chunk_only_a_split_batch() -> None:
    assert OPTIONS[0] == PLAIN and len(set(OPTIONS)) == 5
    assert all(o.fold_batchnorm and o.autocast is None for o in OPTIONS[1:])
    assert balanced_chunk(16, (96, 96)) == 8 and balanced_chunk(16, (128, 256)) == 4
    assert balanced_chunk(30, (96, 96)) == 10 and balanced_chunk(3, (1024, 1024)) == 1
    assert {o.chunk for o in OPTIONS} == {None, 8}
    assert len(candidates(1, (96, 96))) == 3 and len(candidates(4, (128, 256))) == 3


def test_decision_is_measured_once_then_read_from_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "cpu.json"
    clock = FakeClock(_costs(OPTIONS[4], 2.0))
    first = CpuTuner(path, timer=clock, load=quiet)
    assert first.execution("k", OPTIONS, clock.run) == OPTIONS[4]
    assert clock.runs.count(OPTIONS[4]) >= 1 and clock.reads > 0
    runs = len(clock.runs)
    assert first.execution("k", OPTIONS, clock.run) == OPTIONS[4] and len(clock.runs) == runs
    stored = json.loads(path.read_text(encoding="utf-8"))
    assert stored == {machine_signature(): {"k": [True, True, 8, 0.0]}}
    again = FakeClock(_costs(OPTIONS[1], 2.0))
    second = CpuTuner(path, timer=again, load=quiet)
    assert second.execution("k", OPTIONS, again.run) == OPTIONS[4]
    assert again.reads == 0 and again.runs == []


class NoisyClock(FakeClock):
    """A fake clock whose calls cost ``base`` times the option's cost, with a first call of
    each option dearer by ``first`` seconds and every call in ``spikes`` (by its number)
    slowed fourfold, as another process taking the cores would."""

    def __init__(
        self, costs: dict[Execution, float], base: float, first: float, spikes: set[int]
    ) -> None:
        super().__init__(costs)
        self.base, self.first, self.spikes = base, first, spikes

    def run(self, option: Execution) -> None:
        seconds = self.costs[option] * self.base + self.first * (option not in self.runs)
        self.now += seconds * (4 if len(self.runs) in self.spikes else 1)
        self.runs.append(option)


def test_short_calls_are_measured_within_the_budget_and_a_spike_changes_nothing(
    tmp_path: Path,
) -> None:
    """Calls of 10 ms: the warm-up (each option's first call 50 ms dearer) is not counted,
    a load spike on the fastest option's calls does not hide it, and the calls stop after
    about the budget (or ``MAX_ROUNDS``) rather than running on."""
    costs = _costs(OPTIONS[2], 1.5)
    clock = NoisyClock(costs, base=0.01, first=0.05, spikes={2, 7, 13})
    assert (
        CpuTuner(tmp_path / "a.json", timer=clock, load=quiet).execution("k", OPTIONS, clock.run)
        == (OPTIONS[2])
    )
    assert clock.runs.count(PLAIN) == MAX_ROUNDS + 1
    assert clock.now <= BUDGET_SECONDS + 1.0


def test_long_calls_stop_after_the_warm_up_round_and_slow_options_are_dropped(
    tmp_path: Path,
) -> None:
    """Calls of a second (width 1.0, batch 16; beyond LONG_CALL_SECONDS, and one round
    beyond BUDGET_SECONDS): the warm-up round is the measurement, so
    each option runs once, and the first call's one-time cost is small beside it. Calls of
    0.1 s: an option four times slower than the best (beyond PRUNE) is dropped after its
    warm-up and two samples; the plain pass, twice slower, never is."""
    costs = _costs(OPTIONS[1], 1.2)
    clock = NoisyClock(costs, base=1.0, first=0.01, spikes=set())
    tuner = CpuTuner(tmp_path / "a.json", timer=clock, load=quiet)
    assert tuner.execution("k", OPTIONS, clock.run) == OPTIONS[1]
    assert clock.runs == OPTIONS
    slow = {option: 1.0 for option in OPTIONS} | {OPTIONS[3]: 2.0, OPTIONS[4]: 0.5}
    short = NoisyClock(slow, base=0.1, first=0.0, spikes=set())
    tuner = CpuTuner(tmp_path / "b.json", timer=short, load=quiet)
    assert tuner.execution("k", OPTIONS, short.run) == OPTIONS[4]
    assert short.runs.count(OPTIONS[3]) == 1 + 2 and short.runs.count(PLAIN) > 3


def test_a_win_below_the_margin_keeps_the_plain_pass(tmp_path: Path) -> None:
    slight = FakeClock(_costs(OPTIONS[2], MARGIN * 0.98))
    tuner = CpuTuner(tmp_path / "a.json", timer=slight, load=quiet)
    assert tuner.execution("k", OPTIONS, slight.run) == PLAIN
    clear = FakeClock(_costs(OPTIONS[2], MARGIN * 1.02))
    tuner = CpuTuner(tmp_path / "b.json", timer=clear, load=quiet)
    assert tuner.execution("k", OPTIONS, clear.run) == OPTIONS[2]


@pytest.mark.parametrize(
    "content",
    ["{not json", "[1, 2]", json.dumps({machine_signature(): {"k": [1, "x"]}}), "\x00\xff"],
)
def test_a_corrupt_file_is_measured_again_and_rewritten(tmp_path: Path, content: str) -> None:
    path = tmp_path / "cpu.json"
    path.write_text(content, encoding="utf-8")
    clock = FakeClock(_costs(OPTIONS[3], 3.0))
    assert CpuTuner(path, timer=clock, load=quiet).execution("k", OPTIONS, clock.run) == OPTIONS[3]
    assert clock.reads > 0
    assert json.loads(path.read_text(encoding="utf-8"))[machine_signature()] == {
        "k": [False, True, 8, 0.0]
    }


def test_other_machines_decisions_are_kept_but_not_used(tmp_path: Path) -> None:
    path = tmp_path / "cpu.json"
    path.write_text(json.dumps({"another CPU": {"k": [True, True, None]}}), encoding="utf-8")
    clock = FakeClock(_costs(OPTIONS[1], 2.0))
    assert CpuTuner(path, timer=clock, load=quiet).execution("k", OPTIONS, clock.run) == OPTIONS[1]
    stored = json.loads(path.read_text(encoding="utf-8"))
    assert stored["another CPU"] == {"k": [True, True, None]}
    assert stored[machine_signature()] == {"k": [False, True, None, 0.0]}


def test_an_unwritable_cache_keeps_the_decision_in_memory(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("", encoding="utf-8")
    clock = FakeClock(_costs(OPTIONS[2], 2.0))
    tuner = CpuTuner(blocker / "cpu.json", timer=clock, load=quiet)
    assert tuner.execution("k", OPTIONS, clock.run) == OPTIONS[2]
    assert tuner.execution("other", OPTIONS, clock.run) == OPTIONS[2]
    reads = clock.reads
    assert tuner.execution("k", OPTIONS, clock.run) == OPTIONS[2] and clock.reads == reads
    assert tuner.execution("other", OPTIONS, clock.run) == OPTIONS[2] and clock.reads == reads


def test_a_stored_option_no_longer_offered_is_measured_again(tmp_path: Path) -> None:
    path = tmp_path / "cpu.json"
    path.write_text(json.dumps({machine_signature(): {"k": [True, True, 3]}}), encoding="utf-8")
    clock = FakeClock(_costs(OPTIONS[2], 2.0))
    assert CpuTuner(path, timer=clock, load=quiet).execution("k", OPTIONS, clock.run) == OPTIONS[2]
    assert clock.reads > 0


def test_two_tuners_on_one_file_share_their_decisions_and_keep_each_others(
    tmp_path: Path,
) -> None:
    """Two engines (or two processes) on one cache file: a key one of them measured is
    read, not measured again, by the other, and neither write drops the other's keys."""
    path = tmp_path / "cpu.json"
    clock = FakeClock(_costs(OPTIONS[1], 2.0))
    first, second = CpuTuner(path, timer=clock, load=quiet), CpuTuner(path, timer=clock, load=quiet)
    assert first.execution("a", OPTIONS, clock.run) == OPTIONS[1]
    assert second.execution("b", OPTIONS, clock.run) == OPTIONS[1]
    runs = len(clock.runs)
    assert first.execution("b", OPTIONS, clock.run) == OPTIONS[1] and len(clock.runs) == runs
    assert first.execution("c", OPTIONS, clock.run) == OPTIONS[1] and len(clock.runs) > runs
    stored = json.loads(path.read_text(encoding="utf-8"))[machine_signature()]
    assert stored == {key: [False, True, None, 0.0] for key in ("a", "b", "c")}


def test_a_choice_measured_on_a_busy_machine_is_measured_again_once_it_is_quiet(
    tmp_path: Path,
) -> None:
    path = tmp_path / "cpu.json"
    clock = FakeClock(_costs(OPTIONS[1], 2.0))
    busy = CpuTuner(path, timer=clock, load=lambda: 3.0)
    assert busy.execution("k", OPTIONS, clock.run) == OPTIONS[1]
    stored = json.loads(path.read_text(encoding="utf-8"))[machine_signature()]
    assert stored == {"k": [False, True, None, 3.0]}
    runs = len(clock.runs)
    assert busy.execution("k", OPTIONS, clock.run) == OPTIONS[1] and len(clock.runs) == runs
    still_busy = CpuTuner(path, timer=clock, load=lambda: 1.5)
    assert still_busy.execution("k", OPTIONS, clock.run) == OPTIONS[1]
    assert len(clock.runs) == runs

    calm = FakeClock(_costs(OPTIONS[2], 2.0))
    assert CpuTuner(path, timer=calm, load=quiet).execution("k", OPTIONS, calm.run) == OPTIONS[2]
    assert calm.runs
    stored = json.loads(path.read_text(encoding="utf-8"))[machine_signature()]
    assert stored == {"k": [True, True, None, 0.0]}
    later = FakeClock(_costs(OPTIONS[1], 2.0))
    assert CpuTuner(path, timer=later, load=quiet).execution("k", OPTIONS, later.run) == OPTIONS[2]
    assert later.runs == []


def test_a_choice_stored_without_its_load_counts_as_measured_quiet(tmp_path: Path) -> None:
    path = tmp_path / "cpu.json"
    path.write_text(json.dumps({machine_signature(): {"k": [True, True, 8]}}), encoding="utf-8")
    clock = FakeClock(_costs(OPTIONS[1], 2.0))
    assert CpuTuner(path, timer=clock, load=quiet).execution("k", OPTIONS, clock.run) == OPTIONS[4]
    assert clock.runs == []
