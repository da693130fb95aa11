"""The inference engine: each checkpoint's own preprocessing, resolutions, cache, threads."""

from __future__ import annotations

import copy
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.checkpoints import CheckpointMetadata, save_checkpoint
from models.cpu_tuning import CpuTuner, candidates
from models.execution import PLAIN, Execution
from models.inference import FAST_ENV, InferenceEngine
from models.preprocess import Preprocessing
from models.segnet import SegNet


@pytest.fixture(autouse=True, scope="module")
def _tuning_cache(tmp_path_factory):
    """Engines of this module measure into a cache folder of their own, not the user's."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEGBENCH_CACHE", str(tmp_path_factory.mktemp("user-cache")))
        yield


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    model = SegNet(width=0.0625)
    preprocessing = Preprocessing(input_size=(32, 64), channel_order="BGR", interpolation="area")
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, model.eval(), CheckpointMetadata(0.0625, 20, preprocessing))
    return path


def _images(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (48, 80, 3), dtype=np.uint8) for _ in range(count)]


def _reference_logits(engine: InferenceEngine, path: Path, image: np.ndarray) -> torch.Tensor:
    """Independent forward: resize with cv2 area, BGR, /255, plain eager network."""
    model = engine.load(path)
    resized = cv2.resize(image, (64, 32), interpolation=cv2.INTER_AREA)[..., ::-1] / 255.0
    batch = torch.from_numpy(resized.copy()).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        return model.checkpoint.model(batch)[0]


def test_prediction_follows_the_checkpoints_preprocessing(checkpoint: Path) -> None:
    engine = InferenceEngine(device="cpu")
    image = _images(1)[0]
    logits = _reference_logits(engine, checkpoint, image)
    at_input = engine.predict(engine.load(checkpoint), image, resolution="input")
    assert at_input.labels.shape == (32, 64)
    assert np.array_equal(at_input.labels, logits.argmax(0).numpy())
    upsampled = F.interpolate(logits[None], size=(48, 80), mode="bilinear", align_corners=False)
    at_label = engine.predict(engine.load(checkpoint), image, resolution="label")
    assert at_label.labels.shape == (48, 80) and at_label.labels.dtype == np.uint8
    assert np.array_equal(at_label.labels, upsampled[0].argmax(0).numpy())
    assert at_label.probabilities.shape == (20, 48, 80)
    np.testing.assert_allclose(at_label.probabilities.astype(np.float32).sum(0), 1.0, atol=1e-2)


def test_checkpoint_is_loaded_once_and_batches_match_single_images(checkpoint: Path) -> None:
    engine = InferenceEngine(device="cpu")
    assert engine.load(checkpoint) is engine.load(str(checkpoint))
    model = engine.load(checkpoint)
    images = _images(3)
    batch = engine.predict_batch(model, images)
    for image, prediction in zip(images, batch, strict=True):
        assert np.array_equal(engine.predict(model, image).labels, prediction.labels)


def test_revisited_image_comes_from_the_cache(checkpoint: Path, monkeypatch) -> None:
    engine = InferenceEngine(device="cpu")
    model = engine.load(checkpoint)
    image = _images(1)[0]
    forward = engine._forward
    calls: list[int] = []

    def counting_forward(*args):
        calls.append(1)
        return forward(*args)

    monkeypatch.setattr(engine, "_forward", counting_forward)
    first = engine.predict(model, image, image_id="a")
    assert engine.predict(model, image, image_id="a") is first
    assert engine.predict(model, image, image_id="a", resolution="input") is not first
    assert len(calls) == 2
    engine.clear_cache()
    engine.predict(model, image, image_id="a")
    assert len(calls) == 3


def test_cache_is_bounded_in_bytes(checkpoint: Path) -> None:
    engine = InferenceEngine(device="cpu")
    model = engine.load(checkpoint)
    one = engine.predict(model, _images(1)[0]).nbytes
    engine.cache_bytes = 2 * one
    for n, image in enumerate(_images(4)):
        engine.predict(model, image, image_id=str(n))
    assert engine._cache.nbytes <= 2 * one
    assert [key[1] for key in engine._cache] == ["2", "3"]


def test_concurrent_sessions_get_their_own_answers(checkpoint: Path) -> None:
    engine = InferenceEngine(device="cpu")
    model = engine.load(checkpoint)
    images = _images(8, seed=1)
    expected = [engine.predict(model, image).labels for image in images]
    engine.clear_cache()
    with ThreadPoolExecutor(4) as pool:
        results = list(
            pool.map(lambda n: engine.predict(model, images[n], image_id=str(n)), range(8))
        )
    for want, got in zip(expected, results, strict=True):
        assert np.array_equal(want, got.labels)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_path_uses_amp_and_channels_last(checkpoint: Path) -> None:
    engine = InferenceEngine(device="cuda")
    assert engine.channels_last
    model = engine.load(checkpoint)
    for batch in (1, 16):
        tensor = torch.zeros(batch, 3, 32, 64, device=engine.device)
        execution = engine.execution(model, tensor)
        assert execution.channels_last and execution.autocast is torch.float16
    cpu = InferenceEngine(device="cpu")
    image = _images(1)[0]
    gpu_labels = engine.predict(engine.load(checkpoint), image).labels
    cpu_labels = cpu.predict(cpu.load(checkpoint), image).labels
    assert (gpu_labels != cpu_labels).mean() < 0.01


# The fast CPU path: policy, override, agreement with the plain eager pass.

DEMO_CHECKPOINT = Path(__file__).resolve().parents[1] / "models" / "checkpoints" / "segnet-ce.pt"
SAMPLE_IMAGE = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "data"
    / "cityscapes-sample"
    / "leftImg8bit/val/frankfurt/frankfurt_000000_000294_leftImg8bit.png"
)


def _smooth_images(count: int, shape: tuple[int, int], seed: int = 0) -> list[np.ndarray]:
    """Blurred noise: regions and edges like a photo, not per-pixel static."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (count, shape[0] // 8, shape[1] // 8, 3), dtype=np.uint8)
    return [cv2.resize(c, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC) for c in coarse]


@pytest.fixture(scope="module")
def trained_like_checkpoint(tmp_path_factory) -> Path:
    """A small SegNet whose BatchNorm layers hold real statistics and affine terms, so that
    folding them into the convolutions is not the identity."""
    torch.manual_seed(1)
    model = SegNet(width=0.125)
    preprocessing = Preprocessing(input_size=(64, 96), channel_order="BGR", interpolation="area")
    model.train()
    with torch.no_grad():
        for layer in model.modules():
            if isinstance(layer, torch.nn.BatchNorm2d):
                layer.momentum = None
                layer.weight.uniform_(0.5, 1.5)
                layer.bias.uniform_(-0.2, 0.2)
        model(preprocessing.image_to_tensor(_smooth_images(8, (64, 96), seed=2)))
    path = tmp_path_factory.mktemp("ckpt") / "trained-like.pt"
    save_checkpoint(path, model.eval(), CheckpointMetadata(0.125, 20, preprocessing))
    return path


def _labels(engine: InferenceEngine, path: Path, images: list[np.ndarray], batch: int):
    model = engine.load(path)
    labels = []
    for start in range(0, len(images), batch):
        labels += [
            p.labels.ravel() for p in engine.predict_batch(model, images[start : start + batch])
        ]
    return np.concatenate(labels)


def _differing_share(path: Path, images: list[np.ndarray], fast: InferenceEngine) -> float:
    plain = InferenceEngine(device="cpu", fast=False)
    worst = 0.0
    for batch in (1, len(images)):
        ours, theirs = _labels(fast, path, images, batch), _labels(plain, path, images, batch)
        worst = max(worst, float((ours != theirs).mean()))
    return worst


def _batch(engine: InferenceEngine, path: Path, images: list[np.ndarray]) -> torch.Tensor:
    return engine.load(path).checkpoint.preprocessing.image_to_tensor(images)


class CountingTimer:
    def __init__(self) -> None:
        self.reads = 0

    def __call__(self) -> float:
        self.reads += 1
        return time.perf_counter()


def test_cpu_execution_is_measured_once_per_machine(
    trained_like_checkpoint: Path, tmp_path: Path
) -> None:
    path = tmp_path / "cpu.json"
    images = _smooth_images(3, (64, 96))
    timers = CountingTimer(), CountingTimer()
    tuners = (CpuTuner(path, timer, lambda: 0.0) for timer in timers)
    first, second = (InferenceEngine(device="cpu", tuner=tuner) for tuner in tuners)
    chosen = first._forward(first.load(trained_like_checkpoint), images)
    assert timers[0].reads > 0 and path.is_file()
    options = candidates(3, (64, 96))
    execution = first.execution(
        first.load(trained_like_checkpoint), _batch(first, trained_like_checkpoint, images)
    )
    assert execution in options
    again = second._forward(second.load(trained_like_checkpoint), images)
    assert timers[1].reads == 0
    model = second.load(trained_like_checkpoint)
    assert second.execution(model, _batch(second, trained_like_checkpoint, images)) == execution
    assert torch.equal(chosen, again)
    assert "width 0.125 input 64x96 batch 3" in path.read_text(encoding="utf-8")


def test_every_cpu_candidate_agrees_with_plain_eager(trained_like_checkpoint: Path) -> None:
    """Each logit within rounding of the plain pass or of a float64 pass: where a max-pooling
    window holds a near-tie, float32 rounding may send it either way (on this machine the
    plain pass at batch 6 and float64 disagree on 8% of the logits of these images)."""
    engine = InferenceEngine(device="cpu")
    model = engine.load(trained_like_checkpoint)
    images = _smooth_images(6, (64, 96), seed=3)
    batch = _batch(engine, trained_like_checkpoint, images)
    with torch.no_grad():
        eager = model.checkpoint.model(batch)
        exact = copy.deepcopy(model.checkpoint.model).double()(batch.double()).float()
    tolerance = 1e-3 * float(eager.abs().max())
    for option in [*candidates(6, (64, 96)), Execution(True, True, None, 4)]:
        logits = engine._run(model, option, batch)
        near = ((logits - eager).abs() <= tolerance) | ((logits - exact).abs() <= tolerance)
        assert bool(near.all()), option
    assert _differing_share(trained_like_checkpoint, _smooth_images(6, (96, 160)), engine) <= 0.001


def test_fast_path_leaves_the_plain_network_untouched(trained_like_checkpoint: Path) -> None:
    engine = InferenceEngine(device="cpu")
    model = engine.load(trained_like_checkpoint)
    batch = _batch(engine, trained_like_checkpoint, _smooth_images(2, (64, 96)))
    for option in candidates(2, (64, 96)):
        engine._run(model, option, batch)
    assert set(model.variants) == {(False, True), (True, True)}
    assert isinstance(model.network.conv1.bn, torch.nn.BatchNorm2d)
    assert model.network.conv1.conv.weight.is_contiguous()
    folded = model.variants[(True, True)]
    assert isinstance(folded.conv1.bn, torch.nn.Identity)
    assert folded.conv1.conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_plain_path_is_the_recipes_eager_pass(
    trained_like_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(FAST_ENV, "0")
    from_env = InferenceEngine(device="cpu")
    monkeypatch.delenv(FAST_ENV)
    assert InferenceEngine(device="cpu").fast
    images = _smooth_images(4, (64, 96))
    for engine in (from_env, InferenceEngine(device="cpu", fast=False)):
        assert not engine.fast
        model = engine.load(trained_like_checkpoint)
        batch = _batch(engine, trained_like_checkpoint, images)
        assert engine.execution(model, batch[:1]) == engine.execution(model, batch) == PLAIN
        with torch.no_grad():
            eager = model.checkpoint.model(batch)
        assert torch.equal(engine._forward(model, images), eager)
        assert model.variants == {}


def test_channels_last_argument_overrides_the_measurement(trained_like_checkpoint: Path) -> None:
    for forced in (True, False):
        engine = InferenceEngine(device="cpu", channels_last=forced)
        model = engine.load(trained_like_checkpoint)
        batch = _batch(engine, trained_like_checkpoint, _smooth_images(2, (64, 96)))
        assert engine.execution(model, batch).channels_last is forced


def test_trained_demo_checkpoint_agrees_with_plain_eager() -> None:
    """Whichever candidate the measurement picks, its labels match the plain pass's."""
    if not DEMO_CHECKPOINT.is_file():
        pytest.skip(f"no trained demo checkpoint at {DEMO_CHECKPOINT} (python -m models.train)")
    images = _smooth_images(15, (256, 512), seed=5)
    if SAMPLE_IMAGE.is_file():
        images.append(cv2.cvtColor(cv2.imread(str(SAMPLE_IMAGE)), cv2.COLOR_BGR2RGB))
    engine = InferenceEngine(device="cpu")
    model = engine.load(DEMO_CHECKPOINT)
    for count in (1, len(images)):
        batch = _batch(engine, DEMO_CHECKPOINT, images[:count])
        labels = [
            engine._run(model, o, batch).argmax(1) for o in candidates(count, batch.shape[-2:])
        ]
        for other in labels[1:]:
            assert float((other != labels[0]).float().mean()) <= 0.001
    assert _differing_share(DEMO_CHECKPOINT, images[-4:], engine) <= 0.001


def test_probabilities_are_computed_on_demand_and_counted_up_front(checkpoint: Path) -> None:
    engine = InferenceEngine(device="cpu")
    image = _images(1)[0]
    prediction = engine.predict(engine.load(checkpoint), image)
    assert "probabilities" not in vars(prediction)
    expected_bytes = 48 * 80 + 20 * 32 * 64 * 4 + 20 * 48 * 80 * 2
    assert prediction.nbytes == expected_bytes
    logits = _reference_logits(engine, checkpoint, image)
    upsampled = F.interpolate(logits[None], size=(48, 80), mode="bilinear", align_corners=False)
    softmax = torch.softmax(upsampled[0], dim=0).numpy()
    assert prediction.probabilities.dtype == np.float16
    np.testing.assert_allclose(prediction.probabilities, softmax, atol=1e-3)
    np.testing.assert_allclose(prediction.confidence, softmax.max(0), atol=1e-3)
    assert prediction.nbytes == expected_bytes


def test_large_batches_run_in_chunks_in_order(trained_like_checkpoint: Path) -> None:
    engine = InferenceEngine(device="cpu")
    model = engine.load(trained_like_checkpoint)
    batch = _batch(engine, trained_like_checkpoint, _smooth_images(5, (80, 120), seed=6))
    whole = Execution(True, True, None)
    singles = torch.cat([engine._run(model, whole, image[None]) for image in batch])
    assert torch.equal(engine._run(model, Execution(True, True, None, 1), batch), singles)
    in_pairs = engine._run(model, Execution(True, True, None, 2), batch)
    np.testing.assert_allclose(in_pairs, singles, atol=1e-4 * float(singles.abs().max()))
