"""Benchmark: the inference engine's measured CPU execution against the plain eager pass.

The engine measures its execution per case at first use (``models/cpu_tuning.py``) into a
fresh cache file, so every run shows what this machine's measurement chooses now and how
long that first call took. For each width and input size, at batch 1 (the GUI's case) and
batch 16 (split evaluation), the engine's ``predict_batch`` on demo images (256x512) is
timed beside two references measured in the same run: the same call on an engine forced to
the plain float32 NCHW eager pass (``fast=False``, the recipe's way) and this machine's
dense float32 matmul GFLOP/s.
Labels at input resolution (preprocessing, network, argmax: the goals are judged here) and
at the image's resolution (plus the bilinear upsampling of the logits, a cost the same for
both) are timed, and the network alone (the prepared network against the plain one on a
preprocessed batch) with its achieved GFLOP/s (2 x the convolutions' multiply-adds, counted
by forward hooks) as a share of the matmul figure, timed among the same repeats. Every
figure is the median of ``--repeats`` interleaved repeats after a warm-up (the machine is
shared). A speed FAIL says at what share of the matmul rate the goal would have the network
run: near or above 100% the goal is out of reach for float32 on this CPU.

Candidates measured and left out (numbers in README): bfloat16 autocast (AMX makes it 2-3x
faster on CPUs that have it, but it changes over 1% of the trained demo model's labels),
torch.compile (20 s of compiling per shape at first use, not faster than the folded
channels_last pass), torch.jit trace/freeze (tracing fails on max_unpool2d's output size).

Goals (PASS, else FAIL and exit status 1): engine at least 1.0x the plain pass at batch 1 and
1.3x at batch 16, labels differing from the plain pass on at most 0.1% of pixels.

Run: ``python -m bench.bench_inference [--repeats 5] [--case 0.25@96x96 ...]``.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np
import torch
import torch.nn.functional as F

from models.checkpoints import CheckpointError, CheckpointMetadata, load_checkpoint, save_checkpoint
from models.cpu_tuning import CpuTuner
from models.datasets import open_dataset
from models.execution import Execution
from models.inference import InferenceEngine, LoadedModel
from models.preprocess import Preprocessing
from models.segnet import SegNet
from models.synthetic import ensure_demo_dataset
from models.train import input_size
from models.upsampling import upsampled_labels

CASES = ("0.25@96x96", "0.5@96x96", "1.0@96x96", "0.25@128x256")
BATCHES = (1, 16)
MIN_SPEEDUP = {1: 1.0, 16: 1.3}
MAX_DIFFERING_PIXELS = 0.001
CHECKPOINTS = Path(__file__).resolve().parents[1] / "models" / "checkpoints"
DEMO_CHECKPOINT = CHECKPOINTS / "segnet-ce.pt"
"""The trained demo model timed for its width and input size (0.25 at 128x256)."""
TRAINED_CHECKPOINTS = (DEMO_CHECKPOINT, CHECKPOINTS / "segnet-ial.pt")
"""Trained models whose labels are checked at both batch sizes, whichever exist."""
MATMUL_SIZE = 2048
REPEAT_SECONDS = 0.3
"""Each repeat runs a timed call often enough to last about this long."""


def median_seconds(functions: Sequence[Callable[[], object]], repeats: int) -> list[float]:
    """Median seconds per call of each function; the functions are interleaved inside every
    repeat (alternating their order) so that load from other users hits them alike."""
    loops = []
    for function in functions:
        function()
        start = time.perf_counter()
        function()
        loops.append(max(1, round(REPEAT_SECONDS / max(time.perf_counter() - start, 1e-6))))
    times: list[list[float]] = [[] for _ in functions]
    for repeat in range(repeats):
        order = range(len(functions)) if repeat % 2 == 0 else reversed(range(len(functions)))
        for index in order:
            start = time.perf_counter()
            for _ in range(loops[index]):
                functions[index]()
            times[index].append((time.perf_counter() - start) / loops[index])
    return [statistics.median(t) for t in times]


def matmul_gflops(repeats: int, size: int = MATMUL_SIZE) -> float:
    """This machine's dense float32 matmul rate (torch.mm of two size x size matrices)."""
    generator = torch.Generator().manual_seed(0)
    a = torch.rand(size, size, generator=generator)
    b = torch.rand(size, size, generator=generator)
    (seconds,) = median_seconds([lambda: torch.mm(a, b)], repeats)
    return 2 * size**3 / seconds / 1e9


def conv_flops(network: torch.nn.Module, input_size: tuple[int, int]) -> int:
    """Floating-point operations of one image's forward pass: 2 x the multiply-adds of every
    convolution (the rest, BatchNorm, ReLU, pooling, is a rounding error beside them)."""
    total = 0

    def count(module: torch.nn.Conv2d, _inputs: object, output: torch.Tensor) -> None:
        nonlocal total
        per_output = module.in_channels // module.groups * module.kernel_size[0]
        total += 2 * output[0].numel() * per_output * module.kernel_size[1]

    convs = [m for m in network.modules() if isinstance(m, torch.nn.Conv2d)]
    handles = [conv.register_forward_hook(count) for conv in convs]
    training = network.training
    try:
        with torch.inference_mode():
            network.eval()(torch.zeros(1, 3, *input_size))
    finally:
        network.train(training)
        for handle in handles:
            handle.remove()
    return total


def demo_images(count: int) -> list[np.ndarray]:
    """``count`` demo validation images (uint8 RGB 256x512), generated on first use."""
    dataset = open_dataset(ensure_demo_dataset(progress=False), "val")
    return [dataset.read_image(dataset[n % len(dataset)]) for n in range(count)]


def calibrated_network(
    width: float, preprocessing: Preprocessing, images: Sequence[np.ndarray]
) -> SegNet:
    """A seeded SegNet whose BatchNorm statistics come from real images, so its activations
    and logits are spread like a trained model's rather than exploding or collapsing."""
    torch.manual_seed(0)
    network = SegNet(width=width)
    network.train()
    for layer in network.modules():
        if isinstance(layer, torch.nn.BatchNorm2d):
            layer.momentum = None
    with torch.no_grad():
        for start in range(0, len(images), 8):
            network(preprocessing.image_to_tensor(images[start : start + 8]))
    return network.eval()


def case_checkpoint(
    width: float, size: tuple[int, int], images: Sequence[np.ndarray], folder: Path
) -> tuple[Path, str]:
    """The trained demo checkpoint when it has this width and input size, else a calibrated
    random network saved in ``folder``; with a word saying which."""
    if DEMO_CHECKPOINT.is_file():
        try:
            metadata = load_checkpoint(DEMO_CHECKPOINT).metadata
        except CheckpointError:
            metadata = None
        if metadata is not None and (metadata.width, metadata.input_size) == (width, size):
            return DEMO_CHECKPOINT, "trained"
    preprocessing = Preprocessing(input_size=size, channel_order="BGR", interpolation="area")
    network = calibrated_network(width, preprocessing, images)
    path = folder / f"segnet-{width}-{size[0]}x{size[1]}.pt"
    save_checkpoint(path, network, CheckpointMetadata(width, 20, preprocessing))
    return path, "random"


def differing_pixels(
    fast: InferenceEngine,
    plain: InferenceEngine,
    models: tuple[LoadedModel, LoadedModel],
    images: Sequence[np.ndarray],
    batch: int,
) -> float:
    """Share of label pixels where the engine and the plain pass disagree."""
    differing = total = 0
    for start in range(0, len(images), batch):
        chunk = images[start : start + batch]
        ours = fast.predict_batch(models[0], chunk)
        theirs = plain.predict_batch(models[1], chunk)
        for a, b in zip(ours, theirs, strict=True):
            differing += int((a.labels != b.labels).sum())
            total += a.labels.size
    return differing / total


def network_timers(
    engine: InferenceEngine, model: LoadedModel, plain: LoadedModel, batch: torch.Tensor
) -> list[Callable[[], object]]:
    """Network-only calls on a preprocessed batch: the engine's execution, the same with the
    other memory layout (the check on the channels_last threshold) and the plain eager pass."""
    chosen = engine.execution(model, batch)
    flipped = replace(chosen, channels_last=not chosen.channels_last)

    def timer(execution: Execution) -> Callable[[], object]:
        network = model.network_for(execution)
        layout = torch.channels_last if execution.channels_last else torch.contiguous_format
        parts = [
            p.contiguous(memory_format=layout) for p in batch.split(execution.chunk or len(batch))
        ]

        def run() -> object:
            with torch.inference_mode(), execution.context(engine.device):
                return [network(part) for part in parts]

        return run

    def recipe() -> object:
        with torch.no_grad():
            return plain.network(batch)

    return [timer(chosen), timer(flipped), recipe]


def postprocessing_line(logits: torch.Tensor, size: tuple[int, int], repeats: int) -> str:
    """Per-image cost of the eager way (upsample, softmax, argmax, float16 probabilities)
    against the engine's (upsample, argmax; probabilities only when asked for)."""

    def eager() -> object:
        up = F.interpolate(logits[None], size=size, mode="bilinear", align_corners=False)[0]
        probabilities = torch.softmax(up, dim=0)
        return probabilities.argmax(0).to(torch.uint8), probabilities.to(torch.float16)

    def engine() -> object:
        return upsampled_labels(logits, size)

    ours, theirs = median_seconds([engine, eager], repeats)
    return (
        f"post-processing at {size[0]}x{size[1]}: engine {ours * 1e3:.2f} ms, "
        f"eager softmax {theirs * 1e3:.2f} ms ({theirs / ours:.1f}x)"
    )


def parse_case(text: str) -> tuple[float, tuple[int, int]]:
    width, _, size = text.partition("@")
    try:
        return float(width), input_size(size)
    except (ValueError, argparse.ArgumentTypeError) as error:
        raise argparse.ArgumentTypeError(f"case {text!r}: expected WIDTH@HxW, {error}") from None


def case_parser(doc: str, cases: Sequence[str]) -> argparse.ArgumentParser:
    """A benchmark's parser, described by its docstring, with the repeatable ``--case``."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument(
        "--case",
        action="append",
        type=parse_case,
        help=f"width multiplier and input size as WIDTH@HxW, repeatable (default {cases})",
    )
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = case_parser(__doc__, CASES)
    parser.add_argument(
        "--repeats", type=int, default=5, help="timed repeats per figure, median reported"
    )
    parser.add_argument(
        "--images",
        type=int,
        default=32,
        help="demo images compared for the differing-pixel share (default 32)",
    )
    return parser


def float64_differing_pixels(
    model: LoadedModel, images: Sequence[np.ndarray], plain: InferenceEngine
) -> float:
    """Share of label pixels where the plain float32 pass and a float64 one disagree: how
    sensitive this network's labels are to rounding at all (near-tied logits)."""
    network = copy.deepcopy(model.network).double()
    preprocessing = model.checkpoint.preprocessing
    differing = total = 0
    for start in range(0, len(images), 8):
        chunk = images[start : start + 8]
        with torch.no_grad():
            logits = network(preprocessing.image_to_tensor(chunk).double()).float()
        plain_predictions = plain.predict_batch(model, chunk)
        for image, item, theirs in zip(chunk, logits, plain_predictions, strict=True):
            ours = upsampled_labels(item, image.shape[:2]).numpy()
            differing += int((ours != theirs.labels).sum())
            total += ours.size
    return differing / total


def first_use(engine: InferenceEngine, model: LoadedModel, images: Sequence[np.ndarray]) -> str:
    """The execution the engine measures for this batch and the seconds its first call took."""
    start = time.perf_counter()
    engine.predict_batch(model, images, resolution="input")
    seconds = time.perf_counter() - start
    batch = model.checkpoint.preprocessing.image_to_tensor(images)
    return f"{engine.execution(model, batch).describe()} ({seconds:.1f} s)"


def measure(
    engines: tuple[InferenceEngine, InferenceEngine],
    models: tuple[LoadedModel, LoadedModel],
    images: Sequence[np.ndarray],
    batch: int,
    repeats: int,
) -> tuple[str, list[float], float, float]:
    """The engine's measured choice (and its first call's seconds); images/s of engine and
    plain engine at input then label resolution, network, network in the other layout, eager
    network; the dense matmul GFLOP/s interleaved with them; and the share of pixels where the
    engine's labels differ from the plain pass's."""
    fast, plain = engines
    chunk = images[:batch]
    choice = first_use(fast, models[0], chunk)
    tensor = models[1].checkpoint.preprocessing.image_to_tensor(chunk)
    generator = torch.Generator().manual_seed(0)
    a, b = (torch.rand(MATMUL_SIZE, MATMUL_SIZE, generator=generator) for _ in range(2))
    *seconds, matmul = median_seconds(
        [
            lambda: fast.predict_batch(models[0], chunk, resolution="input"),
            lambda: plain.predict_batch(models[1], chunk, resolution="input"),
            lambda: fast.predict_batch(models[0], chunk),
            lambda: plain.predict_batch(models[1], chunk),
            *network_timers(fast, models[0], models[1], tensor),
            lambda: torch.mm(a, b),
        ],
        repeats,
    )
    rates = [batch / s for s in seconds]
    return (
        choice,
        rates,
        2 * MATMUL_SIZE**3 / matmul / 1e9,
        differing_pixels(fast, plain, models, images, batch),
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cases = args.case or [parse_case(c) for c in CASES]
    images = demo_images(max(args.images, max(BATCHES)))
    with tempfile.TemporaryDirectory() as folder:
        tuner = CpuTuner(Path(folder) / "cpu-executions.json")
        engines = (
            InferenceEngine(device="cpu", tuner=tuner),
            InferenceEngine(device="cpu", fast=False),
        )
        failures = run_cases(args, cases, images, engines, Path(folder))
    for failure in failures:
        print(f"FAIL {failure}")
    return 1 if failures else 0


def run_cases(
    args: argparse.Namespace,
    cases: Sequence[tuple[float, tuple[int, int]]],
    images: Sequence[np.ndarray],
    engines: tuple[InferenceEngine, InferenceEngine],
    folder: Path,
) -> list[str]:
    """Print the table of every case and the trained checkpoints' agreement; the failures."""
    start = matmul_gflops(args.repeats)
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}, "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')}, load average "
        f"{os.getloadavg()[0]:.1f}, signature {engines[0].tuner.signature!r}; dense fp32 matmul "
        f"{MATMUL_SIZE}x{MATMUL_SIZE}: {start:.1f} GFLOP/s at the start; median of {args.repeats}"
    )
    print(
        f"{'case':>13} {'batch':>5} {'model':>7} | {'engine':>7} {'eager':>7} {'ratio':>6} | "
        f"{'labels':>7} {'eager':>7} {'ratio':>6} | "
        f"{'net':>7} {'eager':>7} {'ratio':>6} {'layout':>6} | {'GFLOP/s':>7} {'%mm':>5} | "
        f"{'%px':>6} {'fp64':>6} | choice (first call)\n  images/s; engine = predict_batch at "
        "input resolution "
        "(preprocessing, network, labels; the goals), labels = predict_batch with labels at "
        "the 256x512 image size, net = network only, layout = net against the same in the "
        "other memory layout; GFLOP/s = the engine's network, %mm = as a share of dense fp32 "
        "matmul timed among the same repeats (a network near 100% is compute bound: no float32 "
        "execution can be much faster); "
        "%px = labels differing from the plain pass, fp64 = plain fp32 against fp64 "
        "(the network's own sensitivity to rounding); the pixel goal is judged on trained "
        "checkpoints, random weights have near-tied logits; choice = the execution the engine "
        "measured (fold = BatchNorm folded, NHWC = channels_last, /N = N images per call) "
        "and the seconds of its first call, the measurement included"
    )
    failures = []
    compared = images[: args.images]
    for width, size in cases:
        path, kind = case_checkpoint(width, size, images, folder)
        models = engines[0].load(path), engines[1].load(path)
        flops = conv_flops(models[1].network, size)
        sensitivity = float64_differing_pixels(models[1], compared, engines[1])
        for batch in BATCHES:
            choice, rates, reference, differing = measure(
                engines, models, images[: args.images], batch, args.repeats
            )
            ours, theirs, full_ours, full_theirs, net_ours, net_flipped, net_theirs = rates
            gflops = flops * net_ours / 1e9
            verdict = []
            same_pass = choice.startswith("plain ")
            if ours / theirs < MIN_SPEEDUP[batch] and same_pass and MIN_SPEEDUP[batch] <= 1:
                verdict.append("PASS: the engine measured the plain pass, the ratio is noise")
            elif ours / theirs < MIN_SPEEDUP[batch]:
                needed = MIN_SPEEDUP[batch] * flops * net_theirs / 1e9 / reference
                verdict.append(
                    f"FAIL speed < {MIN_SPEEDUP[batch]}x ({MIN_SPEEDUP[batch]}x the plain network "
                    f"would run at {needed:.0%} of dense matmul)"
                )
            if kind == "trained" and differing > MAX_DIFFERING_PIXELS:
                verdict.append(f"FAIL pixels > {MAX_DIFFERING_PIXELS:.1%}")
            name = f"{width}@{size[0]}x{size[1]}"
            failures += [f"{name} batch {batch}: {v}" for v in verdict if v.startswith("FAIL")]
            print(
                f"{name:>13} {batch:>5} {kind:>7} | {ours:7.1f} {theirs:7.1f} "
                f"{ours / theirs:5.2f}x | {full_ours:7.1f} {full_theirs:7.1f} "
                f"{full_ours / full_theirs:5.2f}x | {net_ours:7.1f} {net_theirs:7.1f} "
                f"{net_ours / net_theirs:5.2f}x {net_ours / net_flipped:5.2f}x | "
                f"{gflops:7.1f} {gflops / reference:5.1%} | {differing:6.3%} "
                f"{sensitivity:6.3%} | {choice}  {' '.join(verdict) or 'PASS'}",
                flush=True,
            )
    for path in filter(Path.is_file, TRAINED_CHECKPOINTS):
        models = engines[0].load(path), engines[1].load(path)
        shares = [differing_pixels(*engines, models, compared, b) for b in BATCHES]
        worst = max(shares)
        verdict = (
            f"FAIL pixels > {MAX_DIFFERING_PIXELS:.1%}" if worst > MAX_DIFFERING_PIXELS else "PASS"
        )
        if worst > MAX_DIFFERING_PIXELS:
            failures.append(f"{path.name}: {verdict}")
        print(
            f"trained {path.name}: labels differing from the plain pass at batch "
            f"{' / '.join(map(str, BATCHES))}: {' / '.join(f'{x:.3%}' for x in shares)} "
            f"on {len(compared)} demo images  {verdict}"
        )
    logits = torch.randn(20, *cases[0][1], generator=torch.Generator().manual_seed(0))
    print(postprocessing_line(logits, images[0].shape[:2], args.repeats))
    return failures


if __name__ == "__main__":
    sys.exit(main())
