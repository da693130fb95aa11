"""Full-resolution labels: the fast path gives exactly the bilinear reference's labels."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from models.datasets import open_dataset
from models.inference import InferenceEngine
from models.upsampling import fused_multiply_add, kernel_rule, upsampled_labels

CHECKPOINTS = Path(__file__).resolve().parents[1] / "models" / "checkpoints"
SIZES = [(1024, 2048), (1080, 1920), (1025, 2047)]


def reference(logits: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    """argmax of F.interpolate, first maximum winning (torch.argmax's documented rule)."""
    up = F.interpolate(logits[None], size=size, mode="bilinear", align_corners=False)[0]
    return up.argmax(0).numpy().astype(np.uint8)


@pytest.fixture(scope="module")
def trained_logits(cityscapes_root: Path) -> list[torch.Tensor]:
    """Logits of both shipped model pairs on the real Cityscapes sample frame."""
    dataset = open_dataset(cityscapes_root, "val")
    image = dataset.read_image(dataset.samples[0])
    engine = InferenceEngine(device="cpu")
    paths = [CHECKPOINTS / "segnet-ce.pt", CHECKPOINTS / "camvid-ial.pt"]
    return [engine.predict(engine.load(p), image, resolution="input").logits for p in paths]


@pytest.mark.parametrize("size", SIZES)
def test_labels_of_trained_models_equal_the_reference(trained_logits, size):
    for logits in trained_logits:
        assert np.array_equal(upsampled_labels(logits, size).numpy(), reference(logits, size))


def test_ties_go_to_the_first_class_as_in_the_reference():
    generator = torch.Generator().manual_seed(0)
    coarse = torch.randint(0, 3, (20, 32, 64), generator=generator).float()
    coarse[7] = coarse[3]  # exact ties between two planes everywhere
    for size in [(256, 512), (300, 700)]:
        assert np.array_equal(upsampled_labels(coarse, size).numpy(), reference(coarse, size))


def test_random_logits_at_fractional_scales_equal_the_reference():
    generator = torch.Generator().manual_seed(1)
    logits = torch.randn(20, 24, 40, generator=generator).cumsum(1).cumsum(2)
    for size in [(97, 161), (384, 640), (100, 700)]:
        assert np.array_equal(upsampled_labels(logits, size).numpy(), reference(logits, size))


def test_the_kernel_arithmetic_is_known_for_the_shipped_sizes():
    """Where this fails, labels are still right (the reference runs), only slow."""
    assert kernel_rule((128, 256), (1024, 2048)) is not None
    assert kernel_rule((192, 256), (1080, 1920)) is not None


def _fma_exact(a: float, b: float, c: float) -> np.float32:
    """float32 of a * b + c rounded once to nearest, ties to even, in exact rationals."""
    exact = Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c))
    near = np.float32(float(exact))
    low = near if Fraction(float(near)) <= exact else np.nextafter(near, np.float32(-np.inf))
    high = np.nextafter(low, np.float32(np.inf))
    below, above = exact - Fraction(float(low)), Fraction(float(high)) - exact
    if below != above:
        return low if below < above else high
    return low if int(low.view(np.int32)) % 2 == 0 else high


def test_fused_multiply_add_rounds_once():
    generator = torch.Generator().manual_seed(2)
    a = torch.randn(2000, generator=generator)
    b = torch.rand(2000, generator=generator)
    c = torch.randn(2000, generator=generator)
    # (1 + 2**-12)**2 = 1 + 2**-11 + 2**-24 lies halfway between two float32; an addend far
    # below float64's precision moves the exact sum off that point but not its float64.
    a[:3] = b[:3] = 1.0 + 2.0**-12
    c[:3] = torch.tensor([2.0**-80, -(2.0**-80), 0.0])
    ours = fused_multiply_add(a, b, c).numpy()
    triples = zip(a.tolist(), b.tolist(), c.tolist(), strict=True)
    wanted = [_fma_exact(x, y, z) for x, y, z in triples]
    assert np.array_equal(ours, np.array(wanted, dtype=np.float32))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_logits_get_the_reference_labels():
    logits = torch.randn(20, 16, 32).cumsum(2)
    labels = upsampled_labels(logits.cuda(), (128, 256))
    expected = F.interpolate(logits.cuda()[None], size=(128, 256), mode="bilinear")[0]
    assert torch.equal(labels.cpu(), expected.argmax(0).cpu().to(torch.uint8))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_engine_labels_are_the_reference_of_its_logits(cityscapes_root: Path):
    dataset = open_dataset(cityscapes_root, "val")
    image = cv2.resize(dataset.read_image(dataset.samples[0]), (2048, 1024))
    engine = InferenceEngine(device="cuda")
    prediction = engine.predict(engine.load(CHECKPOINTS / "segnet-ce.pt"), image)
    assert np.array_equal(prediction.labels, reference(prediction.logits, (1024, 2048)))
