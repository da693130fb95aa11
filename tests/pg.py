"""A throwaway PostgreSQL server for the store tests, and a `store_url` fixture for both back ends.

The server is an `initdb` cluster in a temporary folder on a free localhost port, started once per
test session however many modules import the fixtures, and stopped and deleted after the last
one. As root it runs as the `postgres` OS user (PostgreSQL refuses to run as root). Where the
binaries are missing or the server fails to start, the PostgreSQL tests skip with the reason.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import itertools
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

PG_USER = "postgres"


class PgStartError(RuntimeError):
    pass


def _bin_dir() -> Path:
    """The newest installed PostgreSQL's bin folder (Debian keeps initdb off PATH)."""
    on_path = shutil.which("initdb")
    if on_path:
        return Path(on_path).resolve().parent
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parent.parent.name),
    )
    if not found:
        raise PgStartError("initdb not found on PATH or in /usr/lib/postgresql/*/bin")
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PgServer:
    """One running cluster; `create_database()` hands out a fresh, empty database URL."""

    def __init__(self) -> None:
        self._bin = _bin_dir()
        self._dir = Path(tempfile.mkdtemp(prefix="segbench-pg-"))
        self._prefix: list[str] = []
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam(PG_USER)
            except KeyError:
                raise PgStartError(f"running as root but there is no {PG_USER!r} user") from None
            os.chown(self._dir, owner.pw_uid, owner.pw_gid)
            self._prefix = ["runuser", "-u", PG_USER, "--"]
        self.port = _free_port()
        self._names = itertools.count()
        self._started = False

    def _run(self, *args: str) -> None:
        cmd = [*self._prefix, str(self._bin / args[0]), *args[1:]]
        done = subprocess.run(cmd, cwd=self._dir, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            log = self._dir / "server.log"
            tail = log.read_text(errors="replace")[-1500:] if log.exists() else ""
            raise PgStartError(
                f"{args[0]} exited {done.returncode}: {(done.stderr or done.stdout)[-1500:]}{tail}"
            )

    def start(self) -> None:
        data = str(self._dir / "data")
        self._run("initdb", "-D", data, "-A", "trust", "-U", PG_USER, "-E", "UTF8", "--no-sync")
        options = (
            f"-p {self.port} -k {self._dir} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c full_page_writes=off"
        )
        self._started = True
        self._run(
            "pg_ctl",
            "-D",
            data,
            "-l",
            str(self._dir / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        )

    def stop(self) -> None:
        if self._started:
            with contextlib.suppress(PgStartError, subprocess.TimeoutExpired):
                self._run("pg_ctl", "-D", str(self._dir / "data"), "-m", "immediate", "-w", "stop")
            self._started = False
        shutil.rmtree(self._dir, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{PG_USER}@127.0.0.1:{self.port}/{database}"

    def _admin(self, sql: str) -> None:
        dsn = f"host=127.0.0.1 port={self.port} user={PG_USER} dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql)

    def create_database(self) -> str:
        name = f"review_{os.getpid()}_{next(self._names)}"
        self._admin(f"CREATE DATABASE {name}")
        return self.url(name)

    def drop_database(self, url: str) -> None:
        self._admin(f"DROP DATABASE IF EXISTS {make_url(url).database} WITH (FORCE)")


_server: PgServer | None = None
_failure: str | None = None
_users = 0


def _acquire() -> PgServer:
    global _server, _failure, _users
    if _server is None and _failure is None:
        server = None
        try:
            server = PgServer()
            server.start()
            _server = server
            atexit.register(server.stop)
        except (PgStartError, OSError, subprocess.SubprocessError) as exc:
            _failure = str(exc)
            if server is not None:
                server.stop()
    if _server is None:
        pytest.skip(f"PostgreSQL server could not be started: {_failure}")
    _users += 1
    return _server


def _release() -> None:
    global _server, _users
    _users -= 1
    if _users == 0 and _server is not None:
        _server.stop()
        _server = None


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    server = _acquire()
    yield server
    _release()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL of an empty database: a SQLite file, or a fresh database on the test server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'review.db'}"
        return
    server: PgServer = request.getfixturevalue("pg_server")
    url = server.create_database()
    yield url
    server.drop_database(url)
