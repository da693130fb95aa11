"""Checkpoint files: round trip, the recipe's bare state_dict, and every way a file can be bad.
Also the one preprocessing definition that checkpoints record."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import pickle

import cv2
import numpy as np
import pytest
import torch

from models.checkpoints import (
    CheckpointError,
    CheckpointMetadata,
    load_checkpoint,
    save_checkpoint,
)
from models.labels import DEFAULT_GROUPS
from models.preprocess import RECIPE_PREPROCESSING, Preprocessing, PreprocessingError
from models.segnet import SegNet

DEMO_PREPROCESSING = Preprocessing(input_size=(64, 128), channel_order="BGR", interpolation="area")


def _metadata() -> CheckpointMetadata:
    return CheckpointMetadata(
        width=0.0625,
        num_classes=20,
        preprocessing=DEMO_PREPROCESSING,
        loss="ial",
        groups=DEFAULT_GROUPS,
        class_weights=tuple(float(i + 1) for i in range(20)),
        training_data={"description": "tiny set", "train_images": 4},
        training={"lr": 1e-4, "batch": 2},
        epochs=3,
        validation_metrics={"val_loss": 1.5, "val_weighted_iou": 0.25},
        command="python -m models.train --data x --loss ial",
    )


def _model(width: float = 0.0625, classes: int = 20, seed: int = 0) -> SegNet:
    torch.manual_seed(seed)
    model = SegNet(num_classes=classes, width=width)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    return model


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_round_trip_keeps_weights_and_every_metadata_field(tmp_path):
    path = tmp_path / "model.pt"
    model = _model()
    stored = save_checkpoint(path, model, _metadata())
    loaded = load_checkpoint(path)

    assert _same_weights(loaded.model, model)
    assert not loaded.model.training
    assert next(loaded.model.parameters()).device.type == "cpu"
    assert loaded.file_hash == hashlib.sha256(path.read_bytes()).hexdigest()
    assert loaded.preprocessing == DEMO_PREPROCESSING
    assert loaded.assumed_preprocessing is False
    assert loaded.metadata == stored
    assert stored.weights_sha256 and stored.created
    assert dataclasses.replace(stored, weights_sha256="", created="") == _metadata()
    assert loaded.metadata.input_size == (64, 128)


def test_file_is_plain_data_readable_with_weights_only(tmp_path):
    path = tmp_path / "model.pt"
    save_checkpoint(path, _model(), _metadata())
    raw = torch.load(path, weights_only=True)
    metadata = raw["metadata"]
    expected_fields = {
        "architecture", "width", "num_classes", "preprocessing", "loss", "groups",
        "class_weights", "class_names", "training_data", "training", "epochs",
        "validation_metrics", "command", "weights_sha256", "created",
    }  # fmt: skip
    assert set(metadata) == expected_fields

    def plain(value) -> bool:
        if isinstance(value, dict):
            return all(isinstance(k, str) and plain(v) for k, v in value.items())
        if isinstance(value, list):
            return all(plain(v) for v in value)
        return value is None or isinstance(value, str | int | float | bool)

    assert plain(metadata)
    assert metadata["groups"] == DEFAULT_GROUPS.to_dict()
    assert metadata["preprocessing"]["channel_order"] == "BGR"


def test_save_is_atomic_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "sub" / "model.pt"
    save_checkpoint(path, _model(seed=1), _metadata())
    first = path.read_bytes()
    save_checkpoint(path, _model(seed=2), _metadata())
    assert path.read_bytes() != first
    assert sorted(p.name for p in path.parent.iterdir()) == ["model.pt"]


def test_recipe_bare_state_dict_loads_with_inferred_shape_and_assumed_preprocessing(tmp_path):
    model = _model(width=0.125, classes=11).eval()
    path = tmp_path / "net.pt"
    torch.save(model.state_dict(), path)
    loaded = load_checkpoint(path)
    assert loaded.metadata.width == 0.125
    assert loaded.metadata.num_classes == 11
    assert loaded.assumed_preprocessing is True
    assert loaded.preprocessing == RECIPE_PREPROCESSING
    assert RECIPE_PREPROCESSING.input_size == (96, 96)
    assert RECIPE_PREPROCESSING.channel_order == "BGR"
    assert RECIPE_PREPROCESSING.scale == pytest.approx(1 / 255)
    assert RECIPE_PREPROCESSING.interpolation == "nearest"
    assert loaded.metadata.loss is None
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), model(x))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_code_executing_pickle_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "executed"

    class Exploit:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    zipped = tmp_path / "exploit.pt"
    torch.save({"conv1.conv.weight": Exploit()}, zipped)
    legacy = tmp_path / "exploit.pkl"
    legacy.write_bytes(pickle.dumps({"state_dict": Exploit()}))
    with pytest.raises(CheckpointError, match="refused: unpickling this file would execute code"):
        load_checkpoint(zipped)
    with pytest.raises(CheckpointError, match="refused") as error:
        load_checkpoint(legacy)
    assert str(legacy) in str(error.value)
    assert not marker.exists()


def test_truncated_file_is_a_clear_error(tmp_path):
    path = tmp_path / "model.pt"
    save_checkpoint(path, _model(), _metadata())
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated") as error:
        load_checkpoint(path)
    assert str(path) in str(error.value)


def test_random_bytes_are_a_clear_error(tmp_path):
    path = tmp_path / "noise.pt"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises(CheckpointError, match="corrupt") as error:
        load_checkpoint(path)
    assert str(path) in str(error.value)


def test_missing_file_and_wrong_content_are_clear_errors(tmp_path):
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "absent.pt")
    listed = tmp_path / "list.pt"
    torch.save([torch.zeros(3)], listed)
    with pytest.raises(CheckpointError, match="holds a list"):
        load_checkpoint(listed)
    other = tmp_path / "other.pt"
    torch.save({"fc.weight": torch.zeros(3, 3)}, other)
    with pytest.raises(CheckpointError, match="not a SegNet checkpoint"):
        load_checkpoint(other)


def test_state_dict_with_wrong_shapes_is_refused(tmp_path):
    state = _model(width=0.125).state_dict()
    state["conv5.conv.weight"] = torch.zeros(32, 8, 3, 3)
    path = tmp_path / "wrong.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="do not match a SegNet") as error:
        load_checkpoint(path)
    assert "conv5.conv.weight" in str(error.value)
    missing = _model(width=0.125).state_dict()
    del missing["conv20.bn.running_var"]
    torch.save(missing, path)
    with pytest.raises(CheckpointError, match=r"conv20\.bn\.running_var"):
        load_checkpoint(path)


def test_altered_weights_are_detected_by_the_recorded_hash(tmp_path):
    path = tmp_path / "model.pt"
    save_checkpoint(path, _model(), _metadata())
    payload = torch.load(path, weights_only=True)
    payload["state_dict"]["conv3.conv.bias"] += 1
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="hash"):
        load_checkpoint(path)


def test_metadata_that_does_not_match_the_weights_is_refused(tmp_path):
    path = tmp_path / "model.pt"
    save_checkpoint(path, _model(), _metadata())
    payload = torch.load(path, weights_only=True)
    payload["metadata"]["width"] = 0.125
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match=r"width 0\.125"):
        load_checkpoint(path)
    payload["metadata"]["width"] = 0.0625
    payload["version"] = 99
    torch.save(payload, path)
    with pytest.raises(CheckpointError, match="version 99"):
        load_checkpoint(path)


def test_image_to_tensor_applies_channel_order_scale_and_normalisation():
    image = np.zeros((2, 3, 3), dtype=np.uint8)
    image[..., 0], image[..., 1], image[..., 2] = 10, 20, 30
    bgr = Preprocessing(input_size=(2, 3), channel_order="BGR", scale=1 / 255)
    tensor = bgr.image_to_tensor([image, image])
    assert tensor.shape == (2, 3, 2, 3) and tensor.dtype == torch.float32
    torch.testing.assert_close(tensor[1, :, 0, 0], torch.tensor([30, 20, 10]) / 255)
    rgb = Preprocessing(
        input_size=(2, 3), channel_order="RGB", scale=1.0, mean=(1, 2, 3), std=(2, 2, 2)
    )
    torch.testing.assert_close(
        rgb.image_to_tensor([image])[0, :, 1, 2], torch.tensor([4.5, 9, 13.5])
    )


@pytest.mark.parametrize(
    ("interpolation", "flag"),
    [("nearest", cv2.INTER_NEAREST), ("linear", cv2.INTER_LINEAR), ("area", cv2.INTER_AREA)],
)
def test_image_resize_uses_the_recorded_interpolation(interpolation, flag):
    image = np.random.default_rng(1).integers(0, 256, (60, 90, 3), dtype=np.uint8)
    preprocessing = Preprocessing(input_size=(20, 30), interpolation=interpolation, scale=1.0)
    expected = cv2.resize(image, (30, 20), interpolation=flag)[..., ::-1].astype(np.float32)
    got = preprocessing.image_to_tensor([image])[0].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(got, expected)


def test_label_resize_is_nearest_and_invents_no_class():
    label = np.zeros((40, 40), dtype=np.uint8)
    label[:, 20:] = 13
    resized = RECIPE_PREPROCESSING.resize_label(label)
    assert resized.shape == (96, 96)
    assert set(np.unique(resized)) == {0, 13}
    assert (resized[:, :48] == 0).all() and (resized[:, 48:] == 13).all()


def test_preprocessing_round_trips_and_rejects_bad_values():
    for preprocessing in (RECIPE_PREPROCESSING, DEMO_PREPROCESSING):
        assert Preprocessing.from_dict(preprocessing.to_dict()) == preprocessing
    with pytest.raises(PreprocessingError, match="channel order"):
        Preprocessing(input_size=(8, 8), channel_order="BRG")
    with pytest.raises(PreprocessingError, match="interpolation"):
        Preprocessing(input_size=(8, 8), interpolation="cubic")
    with pytest.raises(PreprocessingError, match="invalid preprocessing"):
        Preprocessing.from_dict({"input_size": [8]})
    with pytest.raises(PreprocessingError, match="uint8 RGB"):
        RECIPE_PREPROCESSING.image_to_tensor([np.zeros((4, 4), np.uint8)])
