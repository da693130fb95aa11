"""Schema versioning: an older database is upgraded on open without losing a row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, MetaData, select, text

from db import ReviewStore, SchemaVersionError
from db.engine import make_engine
from db.migrate import current_revision, head_revision, upgrade
from db.schema import LEGACY_SETTINGS, Base
from models.settings import ScoringSettings
from tests.pg import pg_server, store_url  # noqa: F401  (fixtures)

TABLES_AT_0001 = (
    "reviewers",
    "datasets",
    "images",
    "model_versions",
    "categories",
    "flags",
    "flag_events",
)
T0 = datetime(2024, 3, 1, 12, 30, 15, 250000, tzinfo=UTC)


def _stamp(engine: Engine, moment: datetime) -> datetime:
    """A timestamp as the 0001-era code stored it: naive UTC in SQLite, timestamptz elsewhere."""
    return moment.replace(tzinfo=None) if engine.dialect.name == "sqlite" else moment


def _rows_at_0001(engine: Engine) -> dict[str, list[dict]]:
    t = lambda minutes: _stamp(engine, T0 + timedelta(minutes=minutes))  # noqa: E731
    flag = {
        "target": "model_a",
        "model_a_id": 1,
        "model_b_id": 2,
        "region_x0": None,
        "region_y0": None,
        "region_x1": None,
        "region_y1": None,
    }
    return {
        "reviewers": [
            {"id": 1, "name": "alice", "created_at": t(0)},
            {"id": 2, "name": "bob", "created_at": t(1)},
        ],
        "datasets": [
            {
                "id": 1,
                "name": "cityscapes",
                "root": "/d/cs",
                "layout": "cityscapes",
                "split": "val",
                "created_at": t(0),
            },
        ],
        "images": [
            {
                "id": i,
                "dataset_id": 1,
                "image_key": f"frankfurt_{i:06d}",
                "path": f"/d/cs/{i}.png",
                "content_hash": f"h{i}",
                "width": 2048,
                "height": 1024,
            }
            for i in (1, 2, 3)
        ],
        "model_versions": [
            {
                "id": 1,
                "name": "ce",
                "file_hash": "a1",
                "metadata": {"loss": "ce", "miou": 0.61},
                "created_at": t(0),
            },
            {
                "id": 2,
                "name": "ial",
                "file_hash": "b2",
                "metadata": {"loss": "ial", "groups": [["person", "rider"], ["car"]]},
                "created_at": t(0),
            },
        ],
        "categories": [
            {"id": 1, "name": "missed person", "position": 0},
            {"id": 2, "name": "night glare", "position": 1},
        ],
        "flags": [
            {
                **flag,
                "id": 1,
                "image_id": 1,
                "severity": "critical",
                "category_id": 1,
                "status": "confirmed",
                "note": "pedestrian behind car",
                "reviewer_id": 1,
                "created_at": t(2),
                "updated_at": t(5),
                "region_x0": 10,
                "region_y0": 20,
                "region_x1": 300,
                "region_y1": 400,
            },
            {
                **flag,
                "id": 2,
                "image_id": 3,
                "target": "both_models",
                "severity": "minor",
                "category_id": 2,
                "status": "open",
                "note": "",
                "reviewer_id": 2,
                "created_at": t(3),
                "updated_at": t(3),
            },
        ],
        "flag_events": [
            {
                "id": 1,
                "flag_id": 1,
                "reviewer_id": 1,
                "at": t(2),
                "action": "create",
                "changes": {"status": {"old": None, "new": "open"}},
            },
            {
                "id": 2,
                "flag_id": 2,
                "reviewer_id": 2,
                "at": t(3),
                "action": "create",
                "changes": {"status": {"old": None, "new": "open"}},
            },
            {
                "id": 3,
                "flag_id": 1,
                "reviewer_id": 2,
                "at": t(5),
                "action": "update",
                "changes": {"status": {"old": "open", "new": "confirmed"}},
            },
        ],
    }


def _dump(engine: Engine, tables: tuple[str, ...]) -> dict[str, list[tuple]]:
    meta = MetaData()
    meta.reflect(engine, only=tables)
    with engine.connect() as conn:
        return {
            name: conn.execute(select(meta.tables[name]).order_by(text("1"))).all()
            for name in tables
        }


def test_upgrade_from_first_revision_keeps_every_row(store_url: str) -> None:  # noqa: F811
    engine = make_engine(store_url)
    upgrade(engine, "0001")
    assert current_revision(engine) == "0001"
    meta = MetaData()
    meta.reflect(engine)
    assert "image_scores" not in meta.tables
    rows = _rows_at_0001(engine)
    with engine.begin() as conn:
        for name in TABLES_AT_0001:
            conn.execute(meta.tables[name].insert(), rows[name])
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            for name in TABLES_AT_0001:
                conn.execute(text(f"SELECT setval('{name}_id_seq', (SELECT max(id) FROM {name}))"))
    before = _dump(engine, TABLES_AT_0001)
    assert [len(before[n]) for n in TABLES_AT_0001] == [len(rows[n]) for n in TABLES_AT_0001]

    with ReviewStore.open(store_url) as store:
        assert current_revision(engine) == head_revision() != "0001"
        after = _dump(engine, TABLES_AT_0001)
        assert after == before
        for name in TABLES_AT_0001:
            assert [{k: _plain(v) for k, v in r._asdict().items()} for r in after[name]] == [
                {k: _plain(v) for k, v in r.items()} for r in rows[name]
            ], name
        assert store.categories() == ["missed person", "night glare"]
        confirmed = store.get_flag(1)
        assert confirmed.created_at == T0 + timedelta(minutes=2)
        assert (confirmed.reviewer, confirmed.category, confirmed.status) == (
            "alice",
            "missed person",
            "confirmed",
        )
        assert [e.changes["status"] for e in store.flag_history(1)] == [
            (None, "open"),
            ("open", "confirmed"),
        ]
        store.put_scores(2, 3, {"miou": 0.5}, settings="s")
        assert store.get_scores(2, settings="s") == {"frankfurt_000003": {"miou": 0.5}}
        new_flag = store.create_flag(
            image_id=2,
            reviewer="carol",
            target="model_b",
            model_a_id=1,
            model_b_id=2,
            severity="major",
            category="night glare",
        )
        assert new_flag.id == 3
    engine.dispose()


def test_scores_of_0002_are_kept_as_legacy_rows_and_pair_counts_move(
    store_url: str,  # noqa: F811
) -> None:
    engine = make_engine(store_url)
    upgrade(engine, "0002")
    meta = MetaData()
    meta.reflect(engine)
    rows = _rows_at_0001(engine)
    with engine.begin() as conn:
        for name in ("datasets", "images", "model_versions"):
            conn.execute(meta.tables[name].insert(), rows[name])
        # 0002 kept the pair's counts in model B's row, under the first 16 digits of A's hash
        b_scores = {"miou": 0.25, "pair:a1:only_a": 3, "pair:a1:both_wrong": 1}
        conn.execute(
            meta.tables["image_scores"].insert(),
            [
                {
                    "model_id": 1,
                    "image_id": 1,
                    "scores": {"miou": 0.5},
                    "computed_at": _stamp(engine, T0),
                },
                {
                    "model_id": 2,
                    "image_id": 1,
                    "scores": b_scores,
                    "computed_at": _stamp(engine, T0),
                },
            ],
        )
    with ReviewStore.open(store_url) as store:
        assert current_revision(engine) == head_revision()
        assert store.get_scores(1, settings=LEGACY_SETTINGS) == {"frankfurt_000001": {"miou": 0.5}}
        assert store.get_scores(2, settings=LEGACY_SETTINGS) == {"frankfurt_000001": {"miou": 0.25}}
        legacy_pair = store.get_pair_scores(1, 2, settings=LEGACY_SETTINGS)
        assert legacy_pair == {"frankfurt_000001": {"only_a": 3, "both_wrong": 1}}
        current = ScoringSettings().fingerprint
        assert store.get_scores(1, settings=current) == {}
        assert store.get_pair_scores(1, 2, settings=current) == {}
    meta = MetaData()
    meta.reflect(engine)
    assert "image_scores" not in meta.tables
    engine.dispose()


def _plain(value: object) -> object:
    """Compare timestamps as instants whatever the back end returns."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return value


def test_migrations_build_exactly_the_orm_schema(store_url: str) -> None:  # noqa: F811
    ReviewStore.open(store_url).close()
    engine = make_engine(store_url)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), Base.metadata) == []
    engine.dispose()


def test_database_from_a_newer_version_is_refused(store_url: str) -> None:  # noqa: F811
    ReviewStore.open(store_url).close()
    engine = make_engine(store_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()
    with pytest.raises(SchemaVersionError, match=r"revision '0099'.*does not know"):
        ReviewStore.open(store_url)
