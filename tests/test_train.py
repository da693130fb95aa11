"""Training CLI: short real runs on a tiny Cityscapes-layout set and the CamVid sample;
determinism, resume after Ctrl-C, the log, the checkpoint metadata, augmentation, devices."""

from __future__ import annotations

import argparse
import copy
import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from models.checkpoints import load_checkpoint
from models.cpu_tuning import CpuTuner
from models.device import (
    DeviceError,
    autocast,
    grad_scaler,
    memory_format,
    select_device,
    uses_amp,
)
from models.labels import BACKGROUND, DEFAULT_GROUPS, NUM_CLASSES, PALETTE, ImportanceGroups
from models.losses import SegmentationLoss
from models.segnet import SegNet
from models.synthetic.cli import image_size
from models.train import (
    CSV_COLUMNS,
    OutputPaths,
    TrainConfig,
    TrainingError,
    augment,
    config_from_args,
    input_size,
    main,
    portable_arguments,
    train,
)
from models.train_step import training_layout, training_step
from tests.test_losses import write_tiny_cityscapes

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
TINY = ["--width", "0.0625", "--size", "32x64", "--batch", "2", "--quiet"]


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny") / "cityscapes"
    write_tiny_cityscapes(root, {"train": 5, "val": 2}, size=(64, 128), seed=3)
    return root


@pytest.fixture(autouse=True)
def _user_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SEGBENCH_CACHE", str(tmp_path / "user-cache"))


def _config(data: Path, out: Path, *extra: str) -> TrainConfig:
    return config_from_args(["--data", str(data), "--out", str(out), *TINY, *extra])


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path).model.state_dict()


def _equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_training_writes_checkpoints_log_and_complete_metadata(tiny_data, tmp_path):
    out = tmp_path / "run" / "ial.pt"
    groups_file = tmp_path / "groups.toml"
    groups = ImportanceGroups(
        ("other", "road users"),
        ((*range(11), 16, BACKGROUND), (11, 12, 13, 14, 15, 17, 18)),
    )
    groups_file.write_text(groups.to_toml())
    argv = ["--data", str(tiny_data), "--out", str(out), *TINY]
    argv += ["--loss", "ial", "--epochs", "2", "--groups", str(groups_file), "--limit", "4"]
    assert main(argv) == 0

    paths = OutputPaths.for_out(out)
    assert paths.last == tmp_path / "run" / "ial.last.pt"
    assert paths.resume.is_file() and paths.log.is_file()
    rows = _rows(paths.log)
    assert list(rows[0]) == list(CSV_COLUMNS)
    assert [r["epoch"] for r in rows] == ["1", "2"]
    for row in rows:
        assert all(math.isfinite(float(row[c])) for c in CSV_COLUMNS)
        assert 0 <= float(row["val_weighted_iou"]) <= 1

    best_epoch = min(rows, key=lambda r: float(r["val_loss"]))
    best, last = load_checkpoint(out), load_checkpoint(paths.last)
    meta = best.metadata
    assert meta.epochs == int(best_epoch["epoch"]) and last.metadata.epochs == 2
    assert meta.validation_metrics["val_loss"] == pytest.approx(float(best_epoch["val_loss"]))
    assert set(meta.validation_metrics) == {"val_loss", "val_weighted_iou", "val_mean_iou"}
    assert meta.architecture == "SegNet" and meta.width == 0.0625 and meta.num_classes == 20
    assert meta.loss == "ial" and meta.groups == groups
    assert meta.input_size == (32, 64)
    assert meta.preprocessing.channel_order == "BGR"
    assert meta.preprocessing.scale == pytest.approx(1 / 255)
    assert meta.preprocessing.interpolation == "area"
    assert best.preprocessing == meta.preprocessing and not best.assumed_preprocessing
    assert meta.class_weights is not None and len(meta.class_weights) == NUM_CLASSES
    assert meta.training_data["layout"] == meta.training_data["kind"] == "cityscapes"
    assert meta.training_data["name"] == "Cityscapes layout, split 'train', 5 images"
    assert meta.training_data["folder"] == "cityscapes"
    assert meta.training_data["train_images"] == 4
    assert meta.training_data["images"] == 5
    assert meta.training_data["val_images"] == 2
    assert meta.training["lr"] == 1e-4 and meta.training["weight_decay"] == 2e-4
    assert meta.training["amsgrad"] is True and meta.training["batch"] == 2
    assert meta.command.startswith("python -m models.train --data ")
    assert "--groups groups.toml" in meta.command and "--out ial.pt" in meta.command
    assert str(tmp_path) not in repr(meta.to_dict()), "no local path in the model card"
    assert meta.weights_sha256 and meta.created
    assert (tiny_data / ".segbench-class-counts-train-32x64.json").is_file()


def test_same_seed_gives_identical_weights_on_cpu(tiny_data, tmp_path):
    runs = {}
    for name, seed in (("a", "7"), ("b", "7"), ("c", "8")):
        config = _config(tiny_data, tmp_path / f"{name}.pt", "--loss", "ce", "--epochs", "1")
        config.seed = int(seed)
        train(config)
        runs[name] = _weights(tmp_path / f"{name}.last.pt")
    assert _equal(runs["a"], runs["b"])
    assert not _equal(runs["a"], runs["c"])


def test_interrupted_run_resumes_to_the_same_weights(tiny_data, tmp_path):
    train(_config(tiny_data, tmp_path / "full.pt", "--loss", "ial", "--epochs", "3"))

    def ctrl_c_in_epoch_2(epoch: int, index: int) -> None:
        if epoch == 2 and index == 1:
            raise KeyboardInterrupt

    interrupted = _config(tiny_data, tmp_path / "cut.pt", "--loss", "ial", "--epochs", "3")
    with pytest.raises(KeyboardInterrupt):
        train(interrupted, on_batch=ctrl_c_in_epoch_2)
    assert [r["epoch"] for r in _rows(tmp_path / "cut.csv")] == ["1"]
    assert load_checkpoint(tmp_path / "cut.last.pt").metadata.epochs == 1

    resumed = _config(tiny_data, tmp_path / "cut.pt", "--loss", "ial", "--epochs", "3", "--resume")
    train(resumed)
    assert _equal(_weights(tmp_path / "cut.last.pt"), _weights(tmp_path / "full.last.pt"))
    assert _equal(_weights(tmp_path / "cut.pt"), _weights(tmp_path / "full.pt"))
    full_rows, cut_rows = _rows(tmp_path / "full.csv"), _rows(tmp_path / "cut.csv")
    drop = ("seconds", "images_per_second")
    assert [{k: v for k, v in r.items() if k not in drop} for r in cut_rows] == [
        {k: v for k, v in r.items() if k not in drop} for r in full_rows
    ]


def test_ctrl_c_on_the_command_line_reports_the_resume_file(
    tiny_data, tmp_path, monkeypatch, capsys
):
    from models import train as train_module

    original = train_module.Trainer.validate

    def validate_then_ctrl_c(self, epoch):
        if epoch == 2:
            raise KeyboardInterrupt
        return original(self, epoch)

    monkeypatch.setattr(train_module.Trainer, "validate", validate_then_ctrl_c)
    argv = ["--data", str(tiny_data), "--out", str(tmp_path / "m.pt"), *TINY]
    assert main([*argv, "--loss", "ce", "--epochs", "3"]) == 130
    message = capsys.readouterr().err
    assert "epoch 1 is saved" in message and "m.resume.pt" in message and "--resume" in message


def test_resume_refuses_changed_settings_and_missing_state(tiny_data, tmp_path, capsys):
    argv = ["--data", str(tiny_data), "--out", str(tmp_path / "m.pt"), *TINY, "--epochs", "1"]
    assert main([*argv, "--loss", "ce", "--resume"]) == 2
    assert "no resume state" in capsys.readouterr().err
    assert main([*argv, "--loss", "ce"]) == 0
    assert main([*argv, "--loss", "ial", "--resume"]) == 2
    assert "loss: was 'ce', now 'ial'" in capsys.readouterr().err


def test_cosine_schedule_decays_per_epoch_and_fixes_the_horizon_on_resume(
    tiny_data, tmp_path, capsys
):
    config = _config(tiny_data, tmp_path / "m.pt", "--loss", "ce", "--epochs", "4")
    config.lr_schedule = "cosine"
    assert [config.lr_at(e) for e in (1, 2, 3, 4)] == pytest.approx(
        [1e-4 * (1 + math.cos(math.pi * k / 4)) / 2 for k in range(4)]
    )
    argv = ["--data", str(tiny_data), "--out", str(tmp_path / "c.pt"), *TINY, "--loss", "ce"]
    assert main([*argv, "--epochs", "1", "--lr-schedule", "cosine"]) == 0
    assert main([*argv, "--epochs", "2", "--lr-schedule", "cosine", "--resume"]) == 2
    assert "schedule: was ['cosine', 1], now ['cosine', 2]" in capsys.readouterr().err


def test_best_checkpoint_by_validation_miou(tiny_data, tmp_path):
    out = tmp_path / "m.pt"
    argv = ["--data", str(tiny_data), "--out", str(out), *TINY, "--loss", "ce", "--epochs", "3"]
    assert main([*argv, "--select", "val_mean_iou"]) == 0
    rows = _rows(tmp_path / "m.csv")
    best_epoch = max(rows, key=lambda r: float(r["val_mean_iou"]))
    assert load_checkpoint(out).metadata.epochs == int(best_epoch["epoch"])
    assert load_checkpoint(out).metadata.training["selected_by"] == "val_mean_iou"


def test_recorded_command_keeps_only_the_last_part_of_paths():
    argv = ["--data", "/home/me/data/camvid/", "--out=/tmp/runs/ce.pt", "--loss", "ce"]
    assert portable_arguments(argv) == ["--data", "camvid", "--out=ce.pt", "--loss", "ce"]


def test_bad_input_gives_clear_errors(tmp_path, capsys):
    base = ["--out", str(tmp_path / "m.pt"), "--loss", "ce"]
    assert main(["--data", str(tmp_path / "absent"), *base]) == 2
    assert "dataset folder not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--data", str(tmp_path), *base, "--size", "16x64"])
    assert "at least 32x32" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--data", str(tmp_path), *base, "--size", "big"])
    assert "HEIGHTxWIDTH" in capsys.readouterr().err


def test_sizes_are_written_one_way_and_checked_per_command() -> None:
    assert input_size(" 64X128 ") == image_size("64x128") == (64, 128)
    for parse in (input_size, image_size):
        with pytest.raises(argparse.ArgumentTypeError, match="HEIGHTxWIDTH such as 256x512"):
            parse("64 by 128")
    with pytest.raises(argparse.ArgumentTypeError, match="SegNet needs at least 32x32"):
        input_size("16x64")
    with pytest.raises(argparse.ArgumentTypeError, match=r"must be 32\.\.4096"):
        image_size("64x5000")


def test_help_explains_every_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--data", "--loss", "--width", "--size", "--epochs", "--batch", "--out",
                   "--device", "--seed", "--resume", "--lr", "--groups", "--train-split",
                   "--val-split", "--workers", "--limit", "--interpolation"):  # fmt: skip
        assert option in text


def test_training_on_the_camvid_sample(tmp_path):
    camvid = SHARED_DATA / "camvid-sample"
    if not camvid.is_dir():
        pytest.skip(f"real CamVid sample not found at {camvid}")
    before = sorted(p.name for p in camvid.iterdir())
    out = tmp_path / "camvid.pt"
    argv = ["--data", str(camvid), "--out", str(out), *TINY, "--loss", "ial", "--epochs", "1"]
    assert main([*argv, "--limit", "6", "--no-dataset-cache", "--workers", "1"]) == 0
    assert sorted(p.name for p in camvid.iterdir()) == before
    meta = load_checkpoint(out).metadata
    assert meta.training_data["layout"] == meta.training_data["kind"] == "camvid"
    assert meta.training_data["name"] == "CamVid train, 41 real images (CC BY-NC 4.0)"
    assert meta.training_data["val_images"] == 13
    assert math.isfinite(meta.validation_metrics["val_loss"])


def test_training_on_the_synthetic_demo_set(tmp_path):
    from models.synthetic import generate_dataset

    data = generate_dataset(
        tmp_path / "synthetic", {"train": 4, "val": 2}, seed=1, size=(128, 256), progress=False
    )
    out = tmp_path / "synthetic.pt"
    argv = ["--data", str(data), "--out", str(out), *TINY, "--loss", "ce", "--epochs", "2"]
    assert main(argv) == 0
    meta = load_checkpoint(out).metadata
    assert meta.loss == "ce" and meta.training_data["train_images"] == 4
    assert meta.training_data["kind"] == "synthetic"
    assert meta.training_data["name"] == "synthetic demo scenes (generated, not real photos)"
    assert len(_rows(tmp_path / "synthetic.csv")) == 2


def test_augmentation_keeps_image_and_label_aligned_with_background_border():
    label = np.zeros((48, 64), dtype=np.uint8)
    label[:, 32:] = 13
    label[:10, :20] = 10
    image = PALETTE[label]
    seen_flipped, border_pixels = False, []
    for seed in range(40):
        out_image, out_label = augment(image, label, np.random.default_rng(seed))
        assert out_image.shape == image.shape and out_label.shape == label.shape
        assert set(np.unique(out_label)) <= {0, 10, 13, BACKGROUND}
        agreement = (out_image == PALETTE[out_label]).all(axis=2)
        inside = out_label != BACKGROUND
        assert agreement[inside].mean() > 0.9
        border_pixels.append(out_image[~inside])
        seen_flipped |= bool(out_label[24, 5] == 13)
    border = np.concatenate(border_pixels)
    assert len(border) > 100 and seen_flipped
    assert border.mean() < 0.25 * image.mean()


def test_device_selection():
    assert select_device("cpu") == torch.device("cpu")
    assert not uses_amp(torch.device("cpu"))
    assert memory_format(torch.device("cpu")) == torch.contiguous_format
    with pytest.raises(DeviceError, match="unknown device"):
        select_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA GPU"):
            select_device("cuda")
        assert select_device("auto") == torch.device("cpu")


def test_missing_labels_are_refused(tmp_path):
    (tmp_path / "images").mkdir()
    import cv2

    cv2.imwrite(str(tmp_path / "images" / "a.png"), np.zeros((40, 40, 3), np.uint8))
    config = _config(tmp_path / "images", tmp_path / "m.pt", "--loss", "ce")
    with pytest.raises(TrainingError, match="training needs labels"):
        train(config)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_training_step_with_amp_and_channels_last():
    device = select_device("cuda")
    assert uses_amp(device) and memory_format(device) == torch.channels_last
    torch.manual_seed(0)
    model = SegNet(width=0.0625).to(device, memory_format=memory_format(device))
    loss_fn = SegmentationLoss("ial", np.ones(NUM_CLASSES, np.float32), DEFAULT_GROUPS).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scaler = grad_scaler(device)
    images = torch.rand(2, 3, 64, 128, device=device).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, NUM_CLASSES, (2, 64, 128), device=device)
    before = model.conv1.conv.weight.detach().clone()
    with autocast(device):
        logits = model(images)
    assert logits.dtype == torch.float16
    loss = loss_fn(logits, labels)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    assert not torch.equal(before, model.conv1.conv.weight.detach())


class LayoutClock:
    """A clock for CpuTuner that advances only inside a network's forward, by 1 s for an NCHW
    input and ``1 / speedup`` s for a channels_last one (shared by the tuner's copies)."""

    def __init__(self, speedup: float) -> None:
        self.speedup, self.now, self.layouts = speedup, 0.0, []

    def __call__(self) -> float:
        return self.now

    def __deepcopy__(self, memo: dict) -> LayoutClock:
        return self

    def tick(self, x: torch.Tensor) -> None:
        channels_last = x.is_contiguous(memory_format=torch.channels_last) and not (
            x.is_contiguous()
        )
        self.layouts.append(channels_last)
        self.now += 1 / self.speedup if channels_last else 1.0


class TimedSegNet(SegNet):
    def __init__(self, clock: LayoutClock) -> None:
        super().__init__(width=0.0625)
        self.clock = clock

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.clock.tick(x)
        return super().forward(x)


def _fixed_batch() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(2, 3, 32, 64, generator=generator)
    return images, torch.randint(0, NUM_CLASSES, (2, 32, 64), generator=generator)


def _ial() -> SegmentationLoss:
    return SegmentationLoss("ial", np.ones(NUM_CLASSES, np.float32), DEFAULT_GROUPS)


def _adam(parameters) -> torch.optim.Adam:
    return torch.optim.Adam(parameters, lr=1e-4, weight_decay=2e-4, amsgrad=True)


@pytest.mark.parametrize(("speedup", "expected"), [(1.1, False), (1.3, True)])
def test_cpu_training_layout_is_measured_and_channels_last_only_when_clearly_faster(
    tmp_path, speedup, expected
):
    """Below TRAINING_MARGIN (1.2x) the plain step stays; the model, its BatchNorm statistics
    and the global random stream are untouched by the measurement; a second tuner reads the
    decision from the file without timing a step."""
    clock = LayoutClock(speedup)
    torch.manual_seed(0)
    model = TimedSegNet(clock).train()
    before = copy.deepcopy(model.state_dict())
    rng = torch.get_rng_state()
    tuner = CpuTuner(tmp_path / "cpu.json", timer=clock, load=lambda: 0.0)
    layout = training_layout(model, 0.0625, _ial(), _adam, _fixed_batch(), tuner)
    assert (layout == torch.channels_last) is expected
    assert True in clock.layouts and False in clock.layouts
    assert _equal(before, model.state_dict()) and torch.equal(rng, torch.get_rng_state())
    assert "train width 0.0625 input 32x64 batch 2" in (tmp_path / "cpu.json").read_text()
    calls = len(clock.layouts)
    again = CpuTuner(tmp_path / "cpu.json", timer=clock, load=lambda: 0.0)
    assert training_layout(model, 0.0625, _ial(), _adam, _fixed_batch(), again) == layout
    assert len(clock.layouts) == calls


def _loss_curve(
    model: SegNet, layout: torch.memory_format, dtype: torch.dtype, steps: int = 8
) -> np.ndarray:
    trial = copy.deepcopy(model).to(dtype=dtype, memory_format=layout).train()
    optimizer, scaler = _adam(trial.parameters()), grad_scaler(torch.device("cpu"))
    images, labels = _fixed_batch()
    images = images.to(dtype).contiguous(memory_format=layout)
    curve = [
        training_step(trial, _ial(), optimizer, scaler, images, labels)[0] for _ in range(steps)
    ]
    return np.array([float(value) for value in curve])


def test_channels_last_training_follows_the_plain_loss_curve_within_float_noise():
    """Same weights, same batch: the first loss agrees to float rounding, and over 8 steps
    the channels_last curve stays as close to the plain one as a float64 run does (Adam
    amplifies rounding alike in both: float64 drifts by ~3e-3 of the loss by step 8 here)."""
    torch.manual_seed(0)
    model = SegNet(width=0.0625)
    plain = _loss_curve(model, torch.contiguous_format, torch.float32)
    channels_last = _loss_curve(model, torch.channels_last, torch.float32)
    exact = _loss_curve(model, torch.contiguous_format, torch.float64)
    assert abs(channels_last[0] - plain[0]) <= 1e-5 * plain[0]
    noise = np.abs(exact - plain).max()
    assert np.abs(channels_last - plain).max() <= 4 * noise
    assert plain[-1] < plain[0]


def test_a_tiny_run_in_channels_last_ends_like_the_plain_run(tiny_data, tmp_path, monkeypatch):
    """The trainer measures its layout once (stored in the user's cache, named in the
    checkpoint); forced into either layout, the two runs' logged losses agree within float
    noise: training losses to 1e-4, the validation loss of this barely trained net (eval-mode
    BatchNorm on two images) to 1e-2 (it moved by 4e-3 here)."""
    measured = train(_config(tiny_data, tmp_path / "measured.pt", "--loss", "ce"))
    stored = json.loads((tmp_path / "user-cache" / "cpu-executions.json").read_text())
    (decision,) = [v for k, v in next(iter(stored.values())).items() if k.startswith("train ")]
    assert load_checkpoint(measured).metadata.training["channels_last"] is decision[0]
    runs = {}
    for layout in (torch.contiguous_format, torch.channels_last):
        monkeypatch.setattr("models.train.training_layout", lambda *_, layout=layout: layout)
        out = tmp_path / f"{layout}.pt".replace("torch.", "")
        checkpoint = train(_config(tiny_data, out, "--epochs", "2", "--loss", "ce"))
        assert load_checkpoint(checkpoint).metadata.training["channels_last"] is (
            layout == torch.channels_last
        )
        runs[layout] = _rows(OutputPaths.for_out(out).log)
    for ours, theirs in zip(*runs.values(), strict=True):
        assert math.isclose(float(ours["train_loss"]), float(theirs["train_loss"]), rel_tol=1e-4)
        assert math.isclose(float(ours["val_loss"]), float(theirs["val_loss"]), rel_tol=1e-2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_trains_channels_last_without_measuring(tmp_path):
    device = select_device("cuda")
    model = SegNet(width=0.0625).to(device)
    batch = tuple(tensor.to(device) for tensor in _fixed_batch())
    tuner = CpuTuner(tmp_path / "cpu.json")
    layout = training_layout(model, 0.0625, _ial().to(device), _adam, batch, tuner)
    assert layout == memory_format(device) == torch.channels_last
    assert not (tmp_path / "cpu.json").exists()
