"""Engines for the two supported back ends, with SQLite tuned for several writers on one file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

SUPPORTED_BACKENDS = ("sqlite", "postgresql")
SQLITE_BUSY_TIMEOUT_MS = 30_000
# Execution option read by the SQLite "begin" hook: writers take the write lock up front
# (IMMEDIATE) so two transactions never deadlock upgrading a read lock; readers stay DEFERRED.
SQLITE_BEGIN = "sqlite_begin"


class DatabaseURLError(ValueError):
    """The database URL cannot be used (malformed, or a back end this tool does not support)."""


class DatabaseAccessError(RuntimeError):
    """The database at a valid URL cannot be used as it is (not a database, unreachable,
    read-only, written by a newer version): one line naming it and what to do."""


# SQLSTATEs of PostgreSQL that mean "this session may not write here".
_PG_READ_ONLY = {"25006", "42501"}  # read_only_sql_transaction, insufficient_privilege
_SQLITE_READ_ONLY = ("attempt to write a readonly database", "readonly database")


def is_read_only(error: SQLAlchemyError) -> bool:
    """Whether a failed statement failed because the database refuses writes."""
    orig = getattr(error, "orig", None)
    if getattr(orig, "sqlstate", None) in _PG_READ_ONLY:
        return True
    return any(text in str(orig or error) for text in _SQLITE_READ_ONLY)


def access_error(url: str, error: SQLAlchemyError) -> DatabaseAccessError:
    """The one-line explanation of why the database at `url` cannot be used."""
    parsed = make_url(url)
    shown = parsed.database if parsed.get_backend_name() == "sqlite" else None
    shown = shown or parsed.render_as_string(hide_password=True)
    orig = getattr(error, "orig", None)
    text = str(orig if orig is not None else error).strip()
    detail = text.splitlines()[0] if text else type(error).__name__
    backend = parsed.get_backend_name()
    if is_read_only(error):
        fix = (
            "make the file and its folder writable by this user"
            if backend == "sqlite"
            else "grant this user write access"
        )
        return DatabaseAccessError(
            f"the review database {shown} is read-only ({detail}): {fix}, or pass --db with "
            "a writable database"
        )
    if backend == "sqlite" and "not a database" in detail:
        return DatabaseAccessError(
            f"{shown} is not a SQLite database ({detail}): pass --db with the "
            "review database's URL, or move the file away to start a new database there"
        )
    if backend == "postgresql":
        return DatabaseAccessError(
            f"cannot use the PostgreSQL database {shown}: {detail}; check that the server "
            "runs and that the URL's host, port, user, password and database name are right"
        )
    return DatabaseAccessError(
        f"cannot use the SQLite database {shown}: {detail}; check that the "
        "file and its folder exist and are readable and writable by this user"
    )


def make_engine(url: str) -> Engine:
    """An engine for `url`; for a SQLite file its folder is created so a first start just works."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise DatabaseURLError(f"cannot parse database URL {url!r}: {exc}") from None
    backend = parsed.get_backend_name()
    if backend not in SUPPORTED_BACKENDS:
        raise DatabaseURLError(
            f"database URL {url!r} uses {backend!r}; supported: sqlite:///PATH or "
            "postgresql+psycopg://USER@HOST:PORT/DB"
        )
    if backend == "postgresql" and parsed.get_driver_name() != "psycopg":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if backend == "sqlite":
        if parsed.database in (None, "", ":memory:"):
            raise DatabaseURLError(
                f"database URL {url!r} is in-memory; the review store needs a file so that flags "
                "survive and several processes can share it"
            )
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(parsed)
        _tune_sqlite(engine)
        return engine
    return create_engine(parsed, pool_pre_ping=True)


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Hand transaction control to the "begin" hook below instead of the driver's implicit BEGIN.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        mode = conn.get_execution_options().get(SQLITE_BEGIN, "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")
