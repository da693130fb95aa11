"""The review store's service API on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import itertools
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import MetaData, select, text
from sqlalchemy.exc import IntegrityError

from db import (
    DEFAULT_CATEGORIES,
    MAX_NOTE_CHARS,
    SEVERITIES,
    STATUSES,
    TARGETS,
    DatabaseURLError,
    ImageRecord,
    Region,
    ReviewStore,
    ValidationError,
    resolve_db_url,
)
from tests.pg import pg_server, store_url  # noqa: F401  (fixtures)


@dataclass
class World:
    store: ReviewStore
    dataset_id: int
    images: dict[str, int]
    model_a: int
    model_b: int

    def flag(self, **overrides: object):
        args = {
            "image_id": self.images["img0"],
            "reviewer": "alice",
            "target": "model_a",
            "model_a_id": self.model_a,
            "model_b_id": self.model_b,
            "severity": "major",
            "category": "missed person",
        }
        args.update(overrides)
        return self.store.create_flag(**args)


@pytest.fixture
def world(store_url: str) -> Iterator[World]:  # noqa: F811
    store = ReviewStore.open(store_url)
    dataset = store.register_dataset("cityscapes", "/data/cs", "cityscapes", "val")
    images = store.register_images(
        dataset.id,
        [ImageRecord(f"img{i}", f"/data/cs/img{i}.png", f"hash{i}", 64, 32) for i in range(5)],
    )
    model_a = store.register_model("segnet-ce", "sha-ce", {"loss": "ce", "epochs": 3})
    model_b = store.register_model("segnet-ial", "sha-ial", {"loss": "ial", "gamma": 2.0})
    yield World(store, dataset.id, images, model_a.id, model_b.id)
    store.close()


def snapshot(store: ReviewStore) -> dict[str, list[tuple]]:
    """Every row of every table, to prove a failed call wrote nothing."""
    meta = MetaData()
    meta.reflect(store.engine)
    with store.engine.connect() as conn:
        return {
            name: sorted(conn.execute(select(table)).all(), key=repr)
            for name, table in meta.tables.items()
        }


# ------------------------------------------------------------------------------- configuration


def test_db_url_precedence_cli_then_env_then_data_dir(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SEGBENCH_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("SEGBENCH_DB", raising=False)
    assert resolve_db_url(None) == f"sqlite:///{tmp_path / 'data' / 'review.db'}"
    monkeypatch.setenv("SEGBENCH_DB", "postgresql+psycopg://team@db/review")
    assert resolve_db_url(None) == "postgresql+psycopg://team@db/review"
    assert resolve_db_url("sqlite:///x.db") == "sqlite:///x.db"
    monkeypatch.delenv("SEGBENCH_DATA")
    monkeypatch.delenv("SEGBENCH_DB")
    monkeypatch.setenv("HOME", str(tmp_path))
    expected = tmp_path / ".local" / "share" / "segnet-review-bench" / "review.db"
    assert resolve_db_url(None) == f"sqlite:///{expected}"


def test_default_store_is_created_in_the_data_folder(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SEGBENCH_DATA", str(tmp_path / "new" / "folder"))
    monkeypatch.delenv("SEGBENCH_DB", raising=False)
    with ReviewStore.open() as store:
        store.ensure_reviewer("alice")
    assert (tmp_path / "new" / "folder" / "review.db").is_file()


def test_sqlite_connections_use_wal_foreign_keys_and_busy_timeout(tmp_path: Path) -> None:
    with ReviewStore.open(f"sqlite:///{tmp_path / 'r.db'}") as store, store.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert c.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


@pytest.mark.parametrize(
    ("url", "fragment"),
    [("mysql://x@h/db", "supported"), ("sqlite://", "in-memory"), ("not a url", "cannot parse")],
)
def test_unusable_urls_are_refused_clearly(url: str, fragment: str) -> None:
    with pytest.raises(DatabaseURLError, match=fragment):
        ReviewStore.open(url)


# ------------------------------------------------------------------------------- flags


def test_created_flag_reads_back_with_every_field(world: World) -> None:
    before = datetime.now(UTC)
    flag = world.flag(
        image_id=world.images["img2"],
        target="both_models",
        severity="critical",
        category="missed pole/sign/light",
        note="pole at left edge missed by both",
        region=(3, 4, 64, 32),
        reviewer="  carol ",
    )
    after = datetime.now(UTC)
    assert (flag.image_key, flag.dataset_id, flag.target) == (
        "img2",
        world.dataset_id,
        "both_models",
    )
    assert (flag.model_a, flag.model_b) == ("segnet-ce", "segnet-ial")
    assert (flag.severity, flag.category, flag.status) == (
        "critical",
        "missed pole/sign/light",
        "open",
    )
    assert flag.region == Region(3, 4, 64, 32)
    assert flag.reviewer == "carol"
    assert flag.created_at.tzinfo is not None and flag.created_at.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= flag.created_at <= after + timedelta(seconds=1)
    assert flag.updated_at == flag.created_at
    assert world.store.get_flag(flag.id) == flag
    assert world.store.list_flags() == [flag]


def test_every_change_is_in_the_history_with_who_and_old_and_new(world: World) -> None:
    flag = world.flag(note="first look", region=(0, 0, 10, 10))
    world.store.update_flag(flag.id, "bob", status="confirmed", severity="critical")
    unchanged = world.store.update_flag(flag.id, "bob", status="confirmed")
    final = world.store.update_flag(
        flag.id,
        "carol",
        category="boundary error",
        note="edge only",
        region=None,
        target="ground_truth",
    )
    history = world.store.flag_history(flag.id)
    assert [(e.action, e.reviewer) for e in history] == [
        ("create", "alice"),
        ("update", "bob"),
        ("update", "carol"),
    ]
    assert history[0].changes == {
        "image_id": (None, world.images["img0"]),
        "target": (None, "model_a"),
        "model_a_id": (None, world.model_a),
        "model_b_id": (None, world.model_b),
        "severity": (None, "major"),
        "category": (None, "missed person"),
        "status": (None, "open"),
        "note": (None, "first look"),
        "region": (None, [0, 0, 10, 10]),
    }
    assert history[1].changes == {
        "status": ("open", "confirmed"),
        "severity": ("major", "critical"),
    }
    assert history[2].changes == {
        "category": ("missed person", "boundary error"),
        "note": ("first look", "edge only"),
        "region": ([0, 0, 10, 10], None),
        "target": ("model_a", "ground_truth"),
    }
    assert history[0].at == flag.created_at
    assert unchanged.updated_at == history[1].at
    assert final.updated_at == history[2].at > history[1].at
    assert final.created_at == flag.created_at
    assert (final.status, final.severity, final.category, final.note, final.region) == (
        "confirmed",
        "critical",
        "boundary error",
        "edge only",
        None,
    )
    assert final.reviewer == "alice", "the flag keeps its author; changers are in the history"


def test_list_flags_filters_match_an_independent_selection(world: World) -> None:
    other = world.store.register_dataset("camvid", "/data/camvid", "camvid", "test")
    other_image = world.store.register_images(other.id, [ImageRecord("cv0", "p", "h", 10, 10)])
    model_c = world.store.register_model("segnet-ial-v2", "sha-ial2", {}).id
    combos = itertools.product(STATUSES, SEVERITIES, ("alice", "bob"), (0, 1, 2))
    made = []
    for n, (status, severity, reviewer, variant) in enumerate(combos):
        image = other_image["cv0"] if variant == 2 else world.images[f"img{n % 5}"]
        made.append(
            world.flag(
                status=status,
                severity=severity,
                reviewer=reviewer,
                image_id=image,
                category=DEFAULT_CATEGORIES[n % len(DEFAULT_CATEGORIES)],
                target=TARGETS[n % len(TARGETS)],
                model_b_id=model_c if variant == 1 else world.model_b,
            )
        )
    newest_first = sorted(made, key=lambda f: (f.created_at, f.id), reverse=True)
    cases = [
        ({"status": "open"}, lambda f: f.status == "open"),
        ({"status": ["dismissed", "resolved"]}, lambda f: f.status in ("dismissed", "resolved")),
        (
            {"severity": "critical", "reviewer": "bob"},
            lambda f: f.severity == "critical" and f.reviewer == "bob",
        ),
        ({"category": "false alarm"}, lambda f: f.category == "false alarm"),
        ({"target": "ground_truth"}, lambda f: f.target == "ground_truth"),
        ({"image_id": world.images["img3"]}, lambda f: f.image_key == "img3"),
        ({"dataset_id": other.id}, lambda f: f.dataset_id == other.id),
        ({"model_id": model_c}, lambda f: model_c in (f.model_a_id, f.model_b_id)),
        ({"model_id": world.model_a}, lambda f: True),
        ({"reviewer": "nobody"}, lambda f: False),
    ]
    for filters, keep in cases:
        expected = [f.id for f in newest_first if keep(f)]
        assert [f.id for f in world.store.list_flags(**filters)] == expected, filters
        assert world.store.count_flags(**filters) == len(expected), filters
    page = world.store.list_flags(severity="minor", limit=5, offset=3)
    assert [f.id for f in page] == [f.id for f in newest_first if f.severity == "minor"][3:8]


@pytest.mark.parametrize(
    ("filters", "fragment"),
    [
        ({"status": "closed"}, "unknown status 'closed'"),
        ({"severity": ["major", "huge"]}, "'huge'"),
        ({"category": "mising person"}, "unknown category 'mising person'"),
        ({"target": "model_c"}, "unknown target"),
    ],
)
def test_a_misspelt_filter_is_an_error_not_an_empty_list(world: World, filters, fragment) -> None:
    with pytest.raises(ValidationError, match=fragment):
        world.store.list_flags(**filters)


def test_images_with_flag_state_counts_and_worst_open_severity(world: World) -> None:
    plan = {
        "img0": [("open", "minor"), ("confirmed", "major"), ("dismissed", "critical")],
        "img1": [("dismissed", "critical")],
        "img3": [("resolved", "critical"), ("open", "major"), ("open", "major")],
    }
    for key, flags in plan.items():
        for status, severity in flags:
            world.flag(image_id=world.images[key], status=status, severity=severity)
    states = world.store.images_with_flag_state(world.dataset_id)
    assert [s.image_key for s in states] == [f"img{i}" for i in range(5)]
    for state in states:
        flags = plan.get(state.image_key, [])
        assert state.counts == {s: Counter(st for st, _ in flags)[s] for s in STATUSES}
        assert state.total == len(flags)
        live = [SEVERITIES.index(sev) for st, sev in flags if st != "dismissed"]
        assert state.worst_severity == (SEVERITIES[min(live)] if live else None)
        assert state.path == f"/data/cs/{state.image_key}.png"


# ------------------------------------------------------------------------------- registration


def test_registration_is_idempotent_and_ids_are_stable(world: World) -> None:
    again = world.store.register_images(
        world.dataset_id,
        [
            ImageRecord("img1", "/moved/img1.png", "hash1", 64, 32),
            ImageRecord("img9", "/data/cs/img9.png", "hash9", 64, 32),
        ],
    )
    assert again["img1"] == world.images["img1"]
    assert set(again) == {"img1", "img9"}
    assert world.store.get_image(world.images["img1"]).path == "/moved/img1.png"
    same = world.store.register_model("renamed", "sha-ce", {"other": 1})
    assert (same.id, same.name, same.metadata) == (
        world.model_a,
        "segnet-ce",
        {"loss": "ce", "epochs": 3},
    )
    moved = world.store.register_dataset("cityscapes", "/mnt/cs", "cityscapes", "val")
    assert moved.id == world.dataset_id
    assert [d.root for d in world.store.list_datasets()] == ["/mnt/cs"]
    assert world.store.ensure_reviewer("dave") == world.store.ensure_reviewer(" dave ")
    assert [m.name for m in world.store.list_models()] == ["segnet-ce", "segnet-ial"]


def test_categories_default_and_configurable(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'c.db'}"
    with ReviewStore.open(url, categories=["missed cyclist", "other"]) as store:
        assert store.categories() == ["missed cyclist", "other"]
    with ReviewStore.open(url, categories=["other", "glare"]) as store:
        assert store.categories() == ["missed cyclist", "other", "glare"]
        assert store.add_category("fog") == ["missed cyclist", "other", "glare", "fog"]
    with ReviewStore.open(url) as store:
        assert store.categories() == ["missed cyclist", "other", "glare", "fog"]
    with ReviewStore.open(f"sqlite:///{tmp_path / 'd.db'}") as store:
        assert store.categories() == list(DEFAULT_CATEGORIES)


# ------------------------------------------------------------------------------- cached scores

S = "settings-1"
"""A settings fingerprint (the store treats it as an opaque key)."""


def test_scores_under_other_settings_are_separate_rows(world: World) -> None:
    img = world.images
    world.store.put_scores(world.model_a, img["img0"], {"miou": 0.5}, settings=S)
    world.store.put_scores(world.model_a, img["img0"], {"miou": 0.25}, settings="settings-2")
    assert world.store.get_scores(world.model_a, settings=S) == {"img0": {"miou": 0.5}}
    assert world.store.get_scores(world.model_a, settings="settings-2") == {"img0": {"miou": 0.25}}
    assert world.store.get_scores(world.model_a, settings="settings-3") == {}


def test_pair_scores_round_trip_by_ordered_pair_and_settings(world: World) -> None:
    img = world.images
    counts = {"both_right": 7, "only_a": 1, "only_b": 0, "both_wrong": 2}
    world.store.put_pair_scores(world.model_a, world.model_b, {img["img1"]: counts}, settings=S)
    got = world.store.get_pair_scores(world.model_a, world.model_b, settings=S)
    assert got == {"img1": counts}
    assert world.store.get_pair_scores(world.model_b, world.model_a, settings=S) == {}
    assert world.store.get_pair_scores(world.model_a, world.model_b, settings="other") == {}
    changed = {**counts, "only_b": 3}
    world.store.put_pair_scores(world.model_a, world.model_b, {img["img1"]: changed}, settings=S)
    where = {"settings": S, "dataset_id": world.dataset_id, "image_ids": [img["img1"]]}
    assert world.store.get_pair_scores(world.model_a, world.model_b, **where) == {"img1": changed}
    records = [ImageRecord("img1", "/data/cs/img1.png", "relabelled", 64, 32)]
    world.store.register_images(world.dataset_id, records)
    assert world.store.get_pair_scores(world.model_a, world.model_b, settings=S) == {}


def test_scores_round_trip_with_undefined_and_overwrite(world: World) -> None:
    img = world.images
    undefined = {"miou": 0.5, "iou_person": math.nan, "critical_miss_rate": None}
    world.store.put_scores_bulk(
        world.model_a, {img["img0"]: undefined, img["img1"]: {"miou": 0.25}}, settings=S
    )
    world.store.put_scores(world.model_a, img["img1"], {"miou": 0.75, "pixels": 2048}, settings=S)
    world.store.put_scores(world.model_b, img["img0"], {"miou": 0.125}, settings=S)
    got = world.store.get_scores(world.model_a, settings=S)
    assert set(got) == {"img0", "img1"}
    assert got["img0"] == {"miou": 0.5, "iou_person": None, "critical_miss_rate": None}
    assert got["img1"] == {"miou": 0.75, "pixels": 2048}
    assert world.store.get_scores(world.model_a, settings=S, image_ids=[img["img1"]]) == {
        "img1": got["img1"]
    }
    assert world.store.get_scores(world.model_b, settings=S, dataset_id=world.dataset_id) == {
        "img0": {"miou": 0.125}
    }


def test_replaced_image_content_drops_only_its_cached_scores(world: World) -> None:
    img = world.images
    scores = {img[key]: {"miou": 0.5} for key in ("img0", "img1", "img2")}
    world.store.put_scores_bulk(world.model_a, scores, settings=S)
    world.store.put_scores(world.model_b, img["img1"], {"miou": 0.25}, settings=S)
    flag = world.flag(image_id=img["img1"])
    records = [
        ImageRecord(
            f"img{i}", f"/data/cs/img{i}.png", "relabelled" if i == 1 else f"hash{i}", 64, 32
        )
        for i in range(5)
    ]
    assert world.store.register_images(world.dataset_id, records) == img
    assert set(world.store.get_scores(world.model_a, settings=S)) == {"img0", "img2"}
    assert world.store.get_scores(world.model_b, settings=S) == {}
    assert [f.id for f in world.store.list_flags(image_id=img["img1"])] == [flag.id]
    world.store.register_images(world.dataset_id, records)
    assert set(world.store.get_scores(world.model_a, settings=S)) == {"img0", "img2"}


def test_scores_for_same_key_in_two_datasets_need_a_dataset(world: World) -> None:
    other = world.store.register_dataset("cityscapes", "/data/cs", "cityscapes", "train")
    other_img = world.store.register_images(other.id, [ImageRecord("img0", "p", "h", 64, 32)])
    world.store.put_scores(world.model_a, world.images["img0"], {"miou": 0.5}, settings=S)
    world.store.put_scores(world.model_a, other_img["img0"], {"miou": 0.25}, settings=S)
    with pytest.raises(ValidationError, match="pass dataset_id"):
        world.store.get_scores(world.model_a, settings=S)
    assert world.store.get_scores(world.model_a, settings=S, dataset_id=other.id) == {
        "img0": {"miou": 0.25}
    }


# ------------------------------------------------------------------------------- bad input


BAD_CREATES = [
    ({"image_id": 10_000}, "unknown image id 10000"),
    ({"severity": "catastrophic"}, "unknown severity 'catastrophic'"),
    ({"status": "pending"}, "unknown status 'pending'"),
    ({"target": "model_c"}, "unknown target 'model_c'"),
    ({"category": "missed dog"}, "unknown category 'missed dog'"),
    ({"note": "x" * (MAX_NOTE_CHARS + 1)}, "note is 10001 characters long"),
    ({"region": (0, 0, 65, 32)}, r"region \(0, 0, 65, 32\) lies outside image 'img0' \(64x32"),
    ({"region": (-1, 0, 5, 5)}, "lies outside image"),
    ({"region": (5, 5, 5, 9)}, "region .* is empty"),
    ({"reviewer": ""}, "reviewer name must be a non-empty string"),
    ({"reviewer": "   "}, "reviewer name must be a non-empty string"),
    ({"model_b_id": 999}, "unknown model id 999"),
]


@pytest.mark.parametrize(("override", "message"), BAD_CREATES)
def test_bad_flag_is_refused_and_writes_nothing(world: World, override, message) -> None:
    world.flag()
    before = snapshot(world.store)
    args = {"reviewer": "newcomer", **override}
    with pytest.raises(ValidationError, match=message):
        world.flag(**args)
    assert snapshot(world.store) == before


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"status": "closed"}, "unknown status"),
        ({"severity": None}, "unknown severity None"),
        ({"category": "nope", "status": "confirmed"}, "unknown category 'nope'"),
        ({"note": "y" * (MAX_NOTE_CHARS + 1)}, "at most 10000"),
        ({"region": (60, 0, 70, 10), "status": "dismissed"}, "lies outside image"),
        ({"reviewer": ""}, "reviewer name"),
    ],
)
def test_bad_update_is_refused_and_writes_nothing(world: World, change, message) -> None:
    flag = world.flag()
    before = snapshot(world.store)
    args = {"reviewer": "newcomer", **change}
    with pytest.raises(ValidationError, match=message):
        world.store.update_flag(flag.id, **args)
    assert snapshot(world.store) == before
    with pytest.raises(ValidationError, match="unknown flag id 777"):
        world.store.update_flag(777, "bob", status="confirmed")
    assert snapshot(world.store) == before


def test_limits_are_inclusive(world: World) -> None:
    flag = world.flag(note="n" * MAX_NOTE_CHARS, region=(0, 0, 64, 32))
    assert len(world.store.get_flag(flag.id).note) == MAX_NOTE_CHARS


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda w: w.store.put_scores(
                w.model_a, w.images["img0"], {"miou": math.inf}, settings=S
            ),
            "infinite",
        ),
        (
            lambda w: w.store.put_scores(w.model_a, w.images["img0"], {"miou": "high"}, settings=S),
            "not a number",
        ),
        (
            lambda w: w.store.put_scores_bulk(
                w.model_a, {w.images["img0"]: {"m": 1.0}, 999: {"m": 1}}, settings=S
            ),
            r"unknown image id\(s\): \[999\]",
        ),
        (
            lambda w: w.store.put_scores(999, w.images["img0"], {"m": 1.0}, settings=S),
            "unknown model id 999",
        ),
        (
            lambda w: w.store.put_scores(w.model_a, w.images["img0"], {"m": 1.0}, settings=""),
            "settings fingerprint must be a string",
        ),
        (
            lambda w: w.store.put_pair_scores(
                w.model_a, w.model_b, {w.images["img0"]: {"only_a": -1}}, settings=S
            ),
            "must be a non-negative integer",
        ),
        (
            lambda w: w.store.put_pair_scores(
                w.model_a, 999, {w.images["img0"]: {"only_a": 1}}, settings=S
            ),
            "unknown model id 999",
        ),
        (
            lambda w: w.store.register_images(w.dataset_id, [ImageRecord("z", "p", "h", 0, 5)]),
            "width of image 'z' must be positive",
        ),
        (
            lambda w: w.store.register_images(998, [ImageRecord("z", "p", "h", 5, 5)]),
            "unknown dataset id 998",
        ),
        (
            lambda w: w.store.register_model("m", "sha-x", {"when": datetime.now(UTC)}),
            "not plain JSON",
        ),
        (lambda w: w.store.register_dataset("", "/r", "cityscapes", "val"), "dataset name"),
    ],
)
def test_other_bad_input_is_refused_and_writes_nothing(world: World, call, message) -> None:
    before = snapshot(world.store)
    with pytest.raises(ValidationError, match=message):
        call(world)
    assert snapshot(world.store) == before


def test_check_constraints_guard_the_tables_too(world: World) -> None:
    """Even a client bypassing the service cannot store an unknown status."""
    flag = world.flag()
    with pytest.raises(IntegrityError, match=r"(?i)check"), world.store.engine.begin() as conn:
        conn.execute(text("UPDATE flags SET status = 'bogus' WHERE id = :id"), {"id": flag.id})
    assert world.store.get_flag(flag.id).status == "open"
