"""The CPU execution per (network width, input size, batch size), measured once per machine.

A fixed choice tuned on one CPU misses on another (oneDNN's NHWC kernels, cache sizes and
core counts differ), so the first batch of each kind is run a few times in every candidate
execution and in the plain eager pass, interleaved so that load from other processes hits
them alike. The fastest candidate is kept only when its median beats the plain pass's by
``MARGIN`` (else the plain pass: a tie is noise, and the plain pass is the recipe's way).
Decisions are stored in a JSON file in the user's cache folder under a machine signature
(CPU model, core count, torch version), so a later process reads instead of measuring. An
unreadable or corrupt file counts as empty (measured again and rewritten); a file that
cannot be written leaves the decision in memory for this process.

Threads are not a candidate: ``torch.set_num_threads`` is process-wide and the engine is
shared by GUI sessions running at once.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable
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
"""How much faster than the plain pass (median against median) a candidate must be."""
BUDGET_SECONDS = 1.5
"""Measuring stops after the round that passes this, once ``MIN_ROUNDS`` are done."""
MIN_ROUNDS = 3
MAX_ROUNDS = 9


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


def tuning_key(width: float, input_size: tuple[int, int], batch_size: int) -> str:
    return f"width {width:g} input {input_size[0]}x{input_size[1]} batch {batch_size}"


class CpuTuner:
    """Measures the fastest execution per key on first use and remembers it on disk.

    ``timer`` is the clock measured with (injectable so tests can count measurements);
    ``path`` the JSON file (default ``$SEGBENCH_CACHE/cpu-executions.json``).
    """

    def __init__(
        self, path: Path | None = None, timer: Callable[[], float] = time.perf_counter
    ) -> None:
        self.path = path if path is not None else default_cache_dir() / CACHE_NAME
        self.timer = timer
        self.signature = machine_signature()
        self._decisions: dict[str, Execution] | None = None
        self._lock = threading.Lock()

    def execution(
        self, key: str, options: list[Execution], run: Callable[[Execution], object]
    ) -> Execution:
        """The execution for ``key`` among ``options`` (plain first), measured with ``run``
        the first time this machine sees ``key``."""
        with self._lock:
            if self._decisions is None:
                self._decisions = self._read()
            decision = self._decisions.get(key)
            if decision not in options:
                decision = self._measure(options, run)
                self._decisions[key] = decision
                self._write()
            return decision

    def _measure(self, options: list[Execution], run: Callable[[Execution], object]) -> Execution:
        """The fastest option by median of interleaved rounds, if it beats the plain pass
        (``options[0]``) by ``MARGIN``; a warm-up call of each first."""
        for option in options:
            run(option)
        times: list[list[float]] = [[] for _ in options]
        start = self.timer()
        for round_ in range(MAX_ROUNDS):
            order = range(len(options)) if round_ % 2 == 0 else reversed(range(len(options)))
            for index in order:
                before = self.timer()
                run(options[index])
                times[index].append(self.timer() - before)
            if round_ + 1 >= MIN_ROUNDS and self.timer() - start > BUDGET_SECONDS:
                break
        medians = [statistics.median(t) for t in times]
        best = min(range(len(options)), key=medians.__getitem__)
        return options[best] if medians[0] >= MARGIN * medians[best] else options[0]

    def _read(self) -> dict[str, Execution]:
        """This machine's decisions from the file; none if it is missing or unreadable."""
        try:
            machines = json.loads(self.path.read_text(encoding="utf-8"))
            stored = machines.get(self.signature, {})
            return {key: _execution(value) for key, value in stored.items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
            log.warning("ignoring CPU tuning cache %s (%s)", self.path, error)
            return {}

    def _write(self) -> None:
        """Store this machine's decisions, keeping other machines' (atomic replace)."""
        try:
            machines = json.loads(self.path.read_text(encoding="utf-8"))
            if not isinstance(machines, dict):
                machines = {}
        except (OSError, ValueError):
            machines = {}
        decisions = self._decisions or {}
        machines[self.signature] = {
            key: [e.channels_last, e.fold_batchnorm, e.chunk] for key, e in decisions.items()
        }
        temporary = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps(machines, indent=1) + "\n", encoding="utf-8")
            temporary.replace(self.path)
        except OSError as error:
            log.warning("could not store CPU tuning in %s (%s)", self.path, error)


def _execution(value: object) -> Execution:
    """A stored [channels_last, fold_batchnorm, chunk]; ValueError if it is not one."""
    if not isinstance(value, list) or len(value) != 3:
        raise ValueError(f"not a layout: {value!r}")
    channels_last, fold, chunk = value
    if not isinstance(channels_last, bool) or not isinstance(fold, bool):
        raise ValueError(f"not a layout: {value!r}")
    if chunk is not None and (isinstance(chunk, bool) or not isinstance(chunk, int)):
        raise ValueError(f"not a layout: {value!r}")
    return Execution(channels_last, fold, None, chunk)
