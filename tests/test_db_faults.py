"""Database and export faults end in one line naming the file or URL and what to do, exit 2:
a file that is not SQLite, an unreachable PostgreSQL, a read-only database, a database from a
newer version, a full disk, an --out that is a file; abandoned partial exports are cleaned;
notes and names that one back end would refuse are refused by both alike."""

from __future__ import annotations

import errno
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from db.engine import DatabaseAccessError
from db.store import ImageRecord, ReviewStore, ValidationError
from models.datasets import open_dataset
from reviewer import export, launcher
from reviewer.handlers import readable
from tests.pg import PgServer, pg_server, store_url  # noqa: F401  (fixtures)

FUTURE = "0099"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _set_revision(url: str, revision: str) -> None:
    ReviewStore.open(url).close()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    engine.dispose()


def _read_only_file(path: Path, request: pytest.FixtureRequest) -> None:
    """Make a file read-only even for root (who ignores permission bits): immutable."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        return
    if shutil.which("chattr") is None:
        pytest.skip("running as root without chattr: cannot make a file read-only")
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"chattr +i is not supported here: {done.stderr.strip()}")
    request.addfinalizer(lambda: subprocess.run(["chattr", "-i", str(path)], check=False))


class Databases:
    """Broken databases of each kind, each as (URL, what the error line must name)."""

    def __init__(self, tmp_path: Path, request: pytest.FixtureRequest) -> None:
        self.tmp_path = tmp_path
        self.request = request

    def _pg(self) -> str:
        server: PgServer = self.request.getfixturevalue("pg_server")
        url = server.create_database()
        self.request.addfinalizer(lambda: server.drop_database(url))
        return url

    def not_sqlite(self) -> tuple[str, list[str]]:
        path = self.tmp_path / "review.db"
        path.write_text("flags,notes\nthis is a CSV file, not a database\n")
        return f"sqlite:///{path}", [str(path), "is not a SQLite database", "--db"]

    def missing_file(self) -> tuple[str, list[str]]:
        path = self.tmp_path / "moved" / "review.db"
        return f"sqlite:///{path}", [f"review database not found: {path} (", "--db"]

    def pg_unreachable(self) -> tuple[str, list[str]]:
        port = _free_port()  # nothing listens there
        url = f"postgresql+psycopg://reviewer@127.0.0.1:{port}/reviews"
        return url, [f"127.0.0.1:{port}", "check that the server runs"]

    def sqlite_read_only(self) -> tuple[str, list[str]]:
        path = self.tmp_path / "review.db"
        ReviewStore.open(f"sqlite:///{path}").close()
        _read_only_file(path, self.request)
        return f"sqlite:///{path}", [str(path), "is read-only", "writable"]

    def pg_read_only(self) -> tuple[str, list[str]]:
        url = self._pg()
        ReviewStore.open(url).close()
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            name = conn.execute(text("SELECT current_database()")).scalar_one()
            conn.execute(text(f"ALTER DATABASE {name} SET default_transaction_read_only = on"))
        engine.dispose()
        return url, [f"/{name}", "is read-only", "write access"]

    def sqlite_future(self) -> tuple[str, list[str]]:
        url = f"sqlite:///{self.tmp_path / 'review.db'}"
        _set_revision(url, FUTURE)
        return url, [str(self.tmp_path / "review.db"), f"'{FUTURE}'", "upgrade segnet-review-bench"]

    def pg_future(self) -> tuple[str, list[str]]:
        url = self._pg()
        _set_revision(url, FUTURE)
        return url, [url.split("//")[1], f"'{FUTURE}'", "upgrade segnet-review-bench"]


def _pg_case(name: str) -> object:
    return pytest.param(name, marks=pytest.mark.postgres, id=name)


LAUNCH_FAULTS = [
    "not_sqlite",
    _pg_case("pg_unreachable"),
    "sqlite_read_only",
    _pg_case("pg_read_only"),
    "sqlite_future",
    _pg_case("pg_future"),
]
# An export only reads, so a read-only database exports fine.
EXPORT_FAULTS = [
    "missing_file",
    "not_sqlite",
    _pg_case("pg_unreachable"),
    "sqlite_future",
    _pg_case("pg_future"),
]


@pytest.fixture()
def databases(tmp_path: Path, request: pytest.FixtureRequest) -> Databases:
    return Databases(tmp_path, request)


def one_error_line(stderr: str, *names: str) -> str:
    """The single 'error:' line of a failed command, which names every one of ``names``."""
    assert "Traceback" not in stderr, stderr
    assert "PosixPath" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1, stderr
    for name in names:
        assert name in lines[0], (name, lines[0])
    return lines[0]


@pytest.fixture()
def launch(
    tiny_synthetic: Path,
    tiny_models: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> Callable[..., tuple[int, str]]:
    monkeypatch.setenv("SEGBENCH_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(os, "umask", lambda mask: mask)  # the test process keeps its own
    options = ["--data", str(tiny_synthetic), "--models", str(tiny_models), "--only-my-models"]
    options += ["--device", "cpu", "--no-evaluate"]

    def run(*extra: str) -> tuple[int, str]:
        code = launcher.main([*options, *extra])
        return code, capsys.readouterr().err

    return run


@pytest.mark.parametrize("fault", LAUNCH_FAULTS)
def test_launch_on_a_broken_database_is_one_line(
    fault: str, databases: Databases, launch: Callable[..., tuple[int, str]]
) -> None:
    url, names = getattr(databases, fault)()
    code, stderr = launch("--db", url)
    assert code == 2
    one_error_line(stderr, *names)


def test_launch_with_a_file_where_a_folder_goes_is_one_line(
    launch: Callable[..., tuple[int, str]], tmp_path: Path
) -> None:
    blocker = tmp_path / "exports"
    blocker.write_text("a file where the export folder should go")
    code, stderr = launch("--export-dir", str(blocker / "reports"))
    assert code == 2
    one_error_line(stderr, str(blocker / "reports"), "Not a directory")


def test_a_flag_saved_into_a_database_made_read_only_meanwhile_reads_as_one_message(
    tmp_path: Path, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "review.db"
    store = ReviewStore.open(f"sqlite:///{path}")
    dataset = store.register_dataset("d", "/data", "plain", "val")
    image = store.register_images(dataset.id, [ImageRecord("img", "p", "h", 8, 8)])["img"]
    a, b = (store.register_model(n, f"sha-{n}", {}).id for n in ("a", "b"))
    store.close()
    _read_only_file(path, request)
    fields = {"image_id": image, "reviewer": "ana", "target": "model_a", "model_a_id": a}
    fields |= {"model_b_id": b, "severity": "minor", "category": "other"}
    with ReviewStore.open(f"sqlite:///{path}") as store:
        with pytest.raises(DatabaseAccessError) as raised:
            store.create_flag(**fields)
        assert store.list_flags() == []
    message = readable(raised.value, "saving a flag")
    assert message.startswith(f"the review database {path} is read-only")
    assert "\n" not in message
    assert caplog.records == [], "an expected failure is not logged as a bug"


# ----------------------------------------------------------------------------- export


@pytest.fixture()
def flagged(tiny_synthetic: Path, tmp_path: Path) -> Iterator[str]:
    """A SQLite review database with one flag on an image of the tiny split."""
    url = f"sqlite:///{tmp_path / 'flags.db'}"
    dataset = open_dataset(tiny_synthetic, "val")
    sample = dataset.samples[0]
    with ReviewStore.open(url) as store:
        info = store.register_dataset("tiny", str(tiny_synthetic), dataset.layout, "val")
        record = ImageRecord(sample.id, str(sample.image_path), "h", 256, 128)
        image_id = store.register_images(info.id, [record])[sample.id]
        a = store.register_model("segnet-ce", "sha-of-a-missing-file-a", {})
        b = store.register_model("segnet-ial", "sha-of-a-missing-file-b", {})
        store.create_flag(
            image_id=image_id,
            reviewer="ana",
            target="model_a",
            model_a_id=a.id,
            model_b_id=b.id,
            severity="major",
            category="other",
        )
    yield url


def run_export(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = export.main([*args, "--format", "json", "--device", "cpu"])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("fault", EXPORT_FAULTS)
def test_export_from_a_broken_database_is_one_line(
    fault: str, databases: Databases, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, names = getattr(databases, fault)()
    code, stderr = run_export(capsys, "--out", str(tmp_path / "report"), "--db", url)
    assert code == 2
    one_error_line(stderr, *names)
    assert not (tmp_path / "report").exists()


def test_export_to_a_file_says_it_is_a_file(
    flagged: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "report.html"
    target.write_text("an earlier report")
    code, stderr = run_export(capsys, "--out", str(target), "--db", flagged)
    assert code == 2
    line = one_error_line(stderr, str(target), "is a file", "new folder")
    assert "exists" not in line
    assert target.read_text() == "an earlier report"


class _FullDisk:
    """A file whose writes fail as on a full disk, past the first few bytes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle = open(path, "w", encoding="utf-8")  # noqa: SIM115

    def write(self, data: str) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))

    def __enter__(self) -> _FullDisk:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.handle.close()


def test_export_onto_a_full_disk_is_one_line_and_leaves_nothing(
    flagged: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(
        export._Job, "_open", lambda job, name, newline=None: _FullDisk(job.partial / name)
    )
    out = tmp_path / "report"
    code, stderr = run_export(capsys, "--out", str(out), "--db", flagged)
    assert code == 2
    one_error_line(stderr, str(out), "no space left", "flags.json", "--out on another disk")
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith("flags.db")] == []


def _dead_pid() -> int:
    """A process id that no process has (above the kernel's limit)."""
    limit = int(Path("/proc/sys/kernel/pid_max").read_text()) if sys.platform == "linux" else 99999
    return limit + 1


def test_next_export_removes_partials_abandoned_over_an_hour_ago(
    flagged: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exports = tmp_path / "exports"
    exports.mkdir()
    dead = _dead_pid()
    abandoned = exports / f"monday.partial-{dead}"
    (abandoned / "masks").mkdir(parents=True)
    (abandoned / "flags.csv").write_text("id\n1\n")
    abandoned_zip = exports / f"monday.zip.partial-{dead}"
    abandoned_zip.write_bytes(b"PK")
    recent = exports / f"today.partial-{dead}"
    recent.mkdir()
    alive = exports / f"running.partial-{os.getpid()}"
    alive.mkdir()
    unrelated = exports / "notes.partial"
    unrelated.mkdir()
    two_hours_ago = time.time() - 7200
    for path in (abandoned, abandoned_zip, alive, unrelated):
        os.utime(path, (two_hours_ago, two_hours_ago))
    os.utime(recent, (time.time() - 600,) * 2)

    code, stderr = run_export(capsys, "--out", str(exports / "tuesday"), "--db", flagged)
    assert code == 0, stderr
    left = sorted(p.name for p in exports.iterdir())
    assert left == sorted(["tuesday", recent.name, alive.name, unrelated.name])


# ----------------------------------------------------------------------------- note text

BAD_TEXT = [
    pytest.param("glare\x00on the lens", "NUL character (at position 5)", id="nul"),
    pytest.param(
        "rider \ud83d behind the bus", "lone surrogate U+D83D (at position 6)", id="surrogate"
    ),
]


@pytest.mark.parametrize(("note", "message"), BAD_TEXT)
def test_note_text_is_validated_alike_on_both_back_ends(
    store_url: str,  # noqa: F811
    note: str,
    message: str,
) -> None:
    with ReviewStore.open(store_url) as store:
        dataset = store.register_dataset("d", "/data", "plain", "val")
        image = store.register_images(dataset.id, [ImageRecord("img", "p", "h", 8, 8)])
        a = store.register_model("a", "sha-a", {})
        b = store.register_model("b", "sha-b", {})
        fields = {"image_id": image["img"], "target": "model_a", "model_a_id": a.id}
        fields |= {"model_b_id": b.id, "severity": "minor", "category": "other"}
        with pytest.raises(ValidationError, match="^note contains a " + re.escape(message)):
            store.create_flag(reviewer="ana", note=note, **fields)
        with pytest.raises(
            ValidationError, match="^reviewer name contains a " + re.escape(message)
        ):
            store.create_flag(reviewer=note, **fields)
        assert store.list_flags() == []
        flag = store.create_flag(reviewer="ana", note="fine", **fields)
        with pytest.raises(ValidationError, match="^note contains a " + re.escape(message)):
            store.update_flag(flag.id, "ana", note=note)
        assert store.get_flag(flag.id).note == "fine"
        assert len(store.flag_history(flag.id)) == 1
