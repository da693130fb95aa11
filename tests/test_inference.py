"""The inference engine: each checkpoint's own preprocessing, resolutions, cache, threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.checkpoints import CheckpointMetadata, save_checkpoint
from models.inference import InferenceEngine
from models.preprocess import Preprocessing
from models.segnet import SegNet


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
    assert engine._cached_bytes <= 2 * one
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
    cpu = InferenceEngine(device="cpu")
    image = _images(1)[0]
    gpu_labels = engine.predict(engine.load(checkpoint), image).labels
    cpu_labels = cpu.predict(cpu.load(checkpoint), image).labels
    assert (gpu_labels != cpu_labels).mean() < 0.01
