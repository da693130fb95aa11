"""Schema versioning with Alembic, configured in code: an installed package needs no alembic.ini."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, text

from db.engine import DatabaseAccessError

MIGRATIONS_DIR = Path(__file__).resolve().with_name("migrations")
# Arbitrary constant key of the PostgreSQL advisory lock that serialises schema changes.
_PG_MIGRATION_LOCK = 7_431_802_113


class SchemaVersionError(DatabaseAccessError):
    """The database was written by a newer version of this tool than the one running."""


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no migrations found in {MIGRATIONS_DIR}: the package is incomplete")
    return head


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def lock_schema(conn: Connection) -> None:
    """Make concurrent schema changes (migrations, category seeding) take turns.

    SQLite needs nothing more: the write transaction began IMMEDIATE and already holds the lock.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK})


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to `revision` in one transaction, so a failed upgrade leaves it untouched.

    The transaction holds the write lock (BEGIN IMMEDIATE on SQLite, an advisory lock on
    PostgreSQL) while it reads the current revision, so processes starting together upgrade once.
    """
    script = ScriptDirectory.from_config(_config())
    with engine.begin() as conn:
        lock_schema(conn)
        current = MigrationContext.configure(conn).get_current_revision()
        if current is not None and current not in {s.revision for s in script.walk_revisions()}:
            raise SchemaVersionError(
                f"database {engine.url.render_as_string(hide_password=True)} is at schema "
                f"revision {current!r}, which this version of the tool does not know (newest "
                f"known: {script.get_current_head()!r}); upgrade segnet-review-bench to use it"
            )
        target = script.get_current_head() if revision == "head" else revision
        if current != target:
            command.upgrade(_config(conn), revision)
