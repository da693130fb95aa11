"""The CPU execution per (network width, input size, batch size), measured once per machine.

A fixed choice tuned on one CPU misses on another (oneDNN's NHWC kernels, cache sizes and
core counts differ), so the first batch of each kind is run in every candidate execution and
in the plain eager pass, interleaved so that load from other processes hits them alike. Each
option's figure is its fastest call (other users' load only ever slows a call down, so the
minimum is the steadiest estimate from a few calls). The fastest candidate is kept only when
it beats the plain pass by ``MARGIN`` (else the plain pass: a tie is noise, and the plain pass
is the recipe's way).

The measurement is bounded by ``BUDGET_SECONDS`` of calls, so a user waits seconds, once: a
warm-up round first (it counts as a sample where a call is long enough for the one-time
costs to vanish in it), then rounds until the budget is spent; options slower than ``PRUNE``
times the best are dropped once they have two samples (one may be a spike). A warning in the
log says that the measurement is running and where it is stored.

Decisions are stored in a JSON file in the user's cache folder under a machine signature
(CPU model, core count, torch version), so a later process reads instead of measuring. An
unreadable or corrupt file counts as empty (measured again and rewritten); a file that
cannot be written leaves the decision in memory for this process. Each decision keeps the
load per core when it was measured: one measured on a busy machine (above ``BUSY_LOAD``,
other work taking turns with the calls) is used, but measured again by the first later
process that finds the machine quiet.

Threads are not a candidate: ``torch.set_num_threads`` is process-wide and the engine is
shared by GUI sessions running at once.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from models.execution import PLAIN, Execution
from models.synthetic.writer import default_cache_dir

log = logging.getLogger(__name__)

CACHE_NAME = "cpu-executions.json"
CPU_CHUNK_PIXELS = 1 << 17
"""Input pixels per forward call of the chunked candidate, whose feature maps stay in the
caches (4 images of 128x256, 14 of 96x96)."""
MARGIN = 1.05
"""How much faster than the plain pass (fastest call against fastest call) a candidate must
be."""
BUDGET_SECONDS = 2.0
"""Measuring stops after the round that passes this many seconds of calls (warm-up included)."""
LONG_CALL_SECONDS = 0.25
"""A warm-up call at least this long counts as a sample: its one-time costs (oneDNN
primitives for a new shape) are a few milliseconds."""
PRUNE = 1.3
"""Options with two samples whose fastest call is slower than this times the best's are
dropped (never the plain pass, the reference)."""
MAX_ROUNDS = 9
BUSY_LOAD = 1.0
"""Load average per core above which the machine counts as busy: more runnable threads than
cores, so a measurement then says more about the others' work than about the options."""


def balanced_chunk(batch_size: int, input_size: tuple[int, int]) -> int:
    """Images per call when a batch is split into calls of at most ``CPU_CHUNK_PIXELS``
    input pixels, balanced (16 images of 96x96, at most 14 a call: two calls of 8)."""
    most = max(1, CPU_CHUNK_PIXELS // (input_size[0] * input_size[1]))
    calls = -(-batch_size // most)
    return -(-batch_size // calls)


def candidates(batch_size: int, input_size: tuple[int, int]) -> list[Execution]:
    """The plain pass first, then BatchNorm folded in NCHW and channels_last, and the same
    two run in cache-sized chunks when that splits the batch. No bfloat16 autocast: on the
    trained demo model it changes far more labels than the engine's 0.1% promise."""
    layouts = [(False, None), (True, None)]
    chunk = balanced_chunk(batch_size, input_size)
    if chunk < batch_size:
        layouts += [(False, chunk), (True, chunk)]
    return [PLAIN] + [Execution(last, True, None, part) for last, part in layouts]


def machine_signature() -> str:
    """What makes a decision valid on this machine only: CPU model, cores, torch version."""
    return f"{cpu_model()} | {os.cpu_count()} cores | torch {torch.__version__}"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_per_core() -> float:
    """The one-minute load average per core (0 where the system does not report it)."""
    try:
        return os.getloadavg()[0] / (os.cpu_count() or 1)
    except (AttributeError, OSError):
        return 0.0


def tuning_key(width: float, input_size: tuple[int, int], batch_size: int) -> str:
    return f"width {width:g} input {input_size[0]}x{input_size[1]} batch {batch_size}"


class CpuTuner:
    """Measures the fastest execution per key on first use and remembers it on disk.

    ``timer`` is the clock measured with and ``load`` the load per core (injectable so tests
    can count measurements and make the machine busy); ``path`` the JSON file (default
    ``$SEGBENCH_CACHE/cpu-executions.json``).
    """

    def __init__(
        self,
        path: Path | None = None,
        timer: Callable[[], float] = time.perf_counter,
        load: Callable[[], float] = load_per_core,
    ) -> None:
        self.path = path if path is not None else default_cache_dir() / CACHE_NAME
        self.timer = timer
        self.load = load
        self.signature = machine_signature()
        self._decisions: dict[str, _Decision] = {}
        self._settled: set[str] = set()
        """Keys this process measured or accepted from the file: answered from memory."""
        self._lock = threading.Lock()

    def execution(
        self,
        key: str,
        options: list[Execution],
        run: Callable[[Execution], object],
        prepare: Callable[[Execution], object] | None = None,
        margin: float = MARGIN,
    ) -> Execution:
        """The execution for ``key`` among ``options`` (plain first), measured with ``run``
        the first time this machine sees ``key``; ``prepare`` builds what an option needs
        (a folded copy of the network) before the clock runs; a candidate must beat the plain
        pass by ``margin``."""
        with self._lock:
            stored = self._lookup(key, options)
            if stored is not None and (key in self._settled or self._trusted(stored)):
                self._settled.add(key)
                return stored.execution
            return self._measured(key, options, run, prepare, margin, stored).execution

    def _lookup(self, key: str, options: list[Execution]) -> _Decision | None:
        """The decision for ``key`` if it is among ``options``: from memory when this process
        has settled it, else from the file (another engine or process may have stored it)."""
        known = self._decisions.get(key)
        if key not in self._settled or known is None or known.execution not in options:
            self._decisions |= self._read()
            known = self._decisions.get(key)
        return known if known is not None and known.execution in options else None

    def _trusted(self, stored: _Decision) -> bool:
        """Whether a stored decision stands: measured on a quiet machine, or the machine is
        still busy (measuring now would be no better)."""
        return stored.load <= BUSY_LOAD or self.load() > BUSY_LOAD

    def _measured(
        self,
        key: str,
        options: list[Execution],
        run: Callable[[Execution], object],
        prepare: Callable[[Execution], object] | None,
        margin: float,
        stale: _Decision | None,
    ) -> _Decision:
        """Measure ``key`` now (``stale``: the decision measured on a busy machine that this
        replaces), store and settle it."""
        why = "once on this machine"
        if stale is not None:
            why = f"again: the stored choice was measured at load {stale.load:.1f} per core"
        log.warning(
            "measuring the fastest CPU execution for %s, %s (a few seconds; stored in %s)",
            key,
            why,
            self.path,
        )
        for option in options if prepare is not None else ():
            prepare(option)
        load = self.load()
        measured = _Decision(self._measure(options, run, margin), load)
        log.info("CPU execution for %s: %s", key, measured.execution.describe())
        self._write(key, measured)
        self._settled.add(key)
        return measured

    def _measure(
        self, options: list[Execution], run: Callable[[Execution], object], margin: float
    ) -> Execution:
        """The option with the fastest call, if it beats the plain pass (``options[0]``) by
        ``margin``, from interleaved rounds bounded by ``BUDGET_SECONDS``."""
        samples: list[list[float]] = [[] for _ in options]
        live = list(range(len(options)))
        spent = 0.0
        for round_ in range(MAX_ROUNDS + 1):
            for index in live if round_ % 2 == 0 else reversed(live):
                before = self.timer()
                run(options[index])
                seconds = self.timer() - before
                spent += seconds
                if round_ > 0 or seconds >= LONG_CALL_SECONDS:
                    samples[index].append(seconds)
            fastest = [min(s, default=float("inf")) for s in samples]
            live = [
                i
                for i in live
                if i == 0 or len(samples[i]) < 2 or fastest[i] <= PRUNE * min(fastest)
            ]
            if spent > BUDGET_SECONDS and all(samples[i] for i in live):
                break
        chosen = min(live, key=fastest.__getitem__)
        return options[chosen] if fastest[0] >= margin * fastest[chosen] else options[0]

    def _read(self) -> dict[str, _Decision]:
        """This machine's decisions from the file; none if it is missing or unreadable."""
        return self._this_machine(self._machines())

    def _machines(self) -> dict:
        """Every machine's stored decisions as the file holds them; empty if it is missing
        or unreadable (said in the log)."""
        try:
            machines = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as error:
            log.warning("ignoring CPU tuning cache %s (%s)", self.path, error)
            return {}
        if not isinstance(machines, dict):
            log.warning("ignoring CPU tuning cache %s (not a JSON object)", self.path)
            return {}
        return machines

    def _this_machine(self, machines: dict) -> dict[str, _Decision]:
        """This machine's entries of ``machines``, parsed; none if one is malformed."""
        try:
            return {
                key: _decision(value) for key, value in machines.get(self.signature, {}).items()
            }
        except (ValueError, TypeError, AttributeError) as error:
            log.warning("ignoring CPU tuning cache %s (%s)", self.path, error)
            return {}

    def _write(self, key: str, decision: _Decision) -> None:
        """Add one decision to this machine's, as the file holds them now (another engine
        or process may have added some since they were read), keeping other machines'
        (atomic replace)."""
        machines = self._machines()
        self._decisions |= {**self._this_machine(machines), key: decision}
        machines[self.signature] = {name: d.stored() for name, d in self._decisions.items()}
        writer = f"{os.getpid()}.{threading.get_ident()}"
        temporary = self.path.with_name(f"{self.path.name}.{writer}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps(machines, indent=1) + "\n", encoding="utf-8")
            temporary.replace(self.path)
        except OSError as error:
            log.warning("could not store CPU tuning in %s (%s)", self.path, error)


@dataclass(frozen=True)
class _Decision:
    """A measured execution and the load per core when it was measured (0 for decisions
    stored before loads were)."""

    execution: Execution
    load: float

    def stored(self) -> list:
        execution = self.execution
        layout = [execution.channels_last, execution.fold_batchnorm, execution.chunk]
        return [*layout, round(self.load, 2)]


def _decision(value: object) -> _Decision:
    """A stored [channels_last, fold_batchnorm, chunk, load] (or the first three, as
    stored before loads were); ValueError if it is not one."""
    if not isinstance(value, list) or len(value) not in (3, 4):
        raise ValueError(f"not a layout: {value!r}")
    channels_last, fold, chunk, *load = value
    if not isinstance(channels_last, bool) or not isinstance(fold, bool):
        raise ValueError(f"not a layout: {value!r}")
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int)):
        raise ValueError(f"not a layout: {value!r}")
    measured_at = load[0] if load else 0.0
    if isinstance(measured_at, bool) or not isinstance(measured_at, int | float):
        raise ValueError(f"not a load: {value!r}")
    return _Decision(Execution(channels_last, fold, None, chunk), float(measured_at))
