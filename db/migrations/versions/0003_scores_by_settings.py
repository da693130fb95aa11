"""Cached scores keyed by the settings they were computed under; pair scores in their own table.

Revision 0002 keyed a score by (model, image) only, so scores computed under other importance
groups were served as if they were current. Every row of 0002 is kept, marked with the legacy
fingerprint (its settings were not recorded, so it matches no running app's settings). The
disagreement counts that 0002 kept inside model B's scores as ``pair:<hash of A>:<count>`` move
to ``pair_image_scores``, keyed by both model ids.

Revision ID: 0003
Revises: 0002
"""

from collections import defaultdict

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

LEGACY = "legacy"  # db.schema.LEGACY_SETTINGS at the time of this revision
PAIR_PREFIX = "pair:"

_old = sa.table(
    "image_scores",
    sa.column("model_id", sa.Integer),
    sa.column("image_id", sa.Integer),
    sa.column("scores", sa.JSON),
    sa.column("computed_at", sa.DateTime(timezone=True)),
)
_models = sa.table("model_versions", sa.column("id", sa.Integer), sa.column("file_hash", sa.String))


def _id(name: str, table: str) -> sa.Column:
    return sa.Column(name, sa.Integer, sa.ForeignKey(f"{table}.id"), primary_key=True)


def _settings() -> sa.Column:
    return sa.Column("settings", sa.String(64), primary_key=True)


def _score_table(name: str, key: list[sa.Column], payload: str) -> sa.Table:
    """A cache table: its key columns, a JSON payload, when it was computed; indexed by image
    (a changed image drops its rows)."""
    table = op.create_table(
        name,
        *key,
        sa.Column(payload, sa.JSON, nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(f"ix_{name}_image_id", name, ["image_id"])
    return table


def _create_tables() -> tuple[sa.Table, sa.Table]:
    model_scores = _score_table(
        "model_image_scores",
        [_id("model_id", "model_versions"), _id("image_id", "images"), _settings()],
        "scores",
    )
    pair_key = [_id("model_a_id", "model_versions"), _id("model_b_id", "model_versions")]
    pair_scores = _score_table(
        "pair_image_scores", [*pair_key, _id("image_id", "images"), _settings()], "counts"
    )
    return model_scores, pair_scores


def _model_a_by_prefix(conn: sa.Connection) -> dict[str, int]:
    """Model id by the hash prefix 0002 wrote into pair keys (ambiguous prefixes left out)."""
    found: dict[str, list[int]] = defaultdict(list)
    for model_id, file_hash in conn.execute(sa.select(_models.c.id, _models.c.file_hash)):
        found[file_hash[:16]].append(model_id)
    return {prefix: ids[0] for prefix, ids in found.items() if len(ids) == 1}


def _legacy_rows(conn: sa.Connection) -> tuple[list[dict], list[dict]]:
    """0002's rows split into model rows and pair rows, all marked legacy."""
    model_a = _model_a_by_prefix(conn)
    model_rows, pair_rows = [], []
    for model_id, image_id, scores, computed_at in conn.execute(sa.select(_old)):
        own = {k: v for k, v in scores.items() if not k.startswith(PAIR_PREFIX)}
        key = {"image_id": image_id, "settings": LEGACY, "computed_at": computed_at}
        if own:
            model_rows.append({**key, "model_id": model_id, "scores": own})
        counts: dict[str, dict[str, int]] = defaultdict(dict)
        for name, value in scores.items():
            if name.startswith(PAIR_PREFIX):
                prefix, _, count = name[len(PAIR_PREFIX) :].partition(":")
                counts[prefix][count] = value
        for prefix, by_name in counts.items():
            if prefix in model_a:
                ids = {"model_a_id": model_a[prefix], "model_b_id": model_id}
                pair_rows.append({**key, **ids, "counts": by_name})
    return model_rows, pair_rows


def upgrade() -> None:
    model_scores, pair_scores = _create_tables()
    model_rows, pair_rows = _legacy_rows(op.get_bind())
    if model_rows:
        op.bulk_insert(model_scores, model_rows)
    if pair_rows:
        op.bulk_insert(pair_scores, pair_rows)
    op.drop_index("ix_image_scores_image_id", "image_scores")
    op.drop_table("image_scores")


def downgrade() -> None:
    """Back to 0002's single table with the legacy model rows; the pair counts and the scores
    under recorded settings are dropped (0002 cannot tell settings apart; they are computed
    again)."""
    _score_table(
        "image_scores", [_id("model_id", "model_versions"), _id("image_id", "images")], "scores"
    )
    op.execute(
        "INSERT INTO image_scores (model_id, image_id, scores, computed_at) "
        "SELECT model_id, image_id, scores, computed_at FROM model_image_scores "
        f"WHERE settings = '{LEGACY}'"
    )
    for table in ("pair_image_scores", "model_image_scores"):
        op.drop_index(f"ix_{table}_image_id", table)
        op.drop_table(table)
