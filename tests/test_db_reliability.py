"""Real processes writing at once, and a writer killed mid-transaction, on SQLite and PostgreSQL."""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import time
from collections import Counter
from typing import Any

from sqlalchemy import event, text

from db import DEFAULT_CATEGORIES, ImageRecord, ReviewStore
from tests.pg import pg_server, store_url  # noqa: F401  (fixtures)

WRITERS = 8
FLAGS_PER_WRITER = 250
UPDATE_EVERY = 10  # each writer also confirms every 10th of its flags: a second audit event
COMMITTED_BEFORE_KILL = 15
HALF_WRITTEN = "half-written: must never be committed"
SPAWN = mp.get_context("spawn")


def _setup(url: str) -> dict[str, Any]:
    with ReviewStore.open(url) as store:
        dataset = store.register_dataset("cityscapes", "/d", "cityscapes", "val")
        images = store.register_images(
            dataset.id, [ImageRecord(f"img{i}", f"/d/{i}.png", f"h{i}", 32, 16) for i in range(7)]
        )
        model_a = store.register_model("ce", "sha-ce", {})
        model_b = store.register_model("ial", "sha-ial", {})
    return {"image_ids": list(images.values()), "model_a_id": model_a.id, "model_b_id": model_b.id}


def _flag_args(ctx: dict[str, Any], writer: int, n: int, note: str) -> dict[str, Any]:
    return {
        "image_id": ctx["image_ids"][n % len(ctx["image_ids"])],
        "reviewer": f"writer{writer}",
        "target": "model_a",
        "model_a_id": ctx["model_a_id"],
        "model_b_id": ctx["model_b_id"],
        "severity": ("critical", "major", "minor")[n % 3],
        "category": "other",
        "note": note,
    }


def _writer(url: str, ctx: dict[str, Any], writer: int, start: Any) -> None:
    """One reviewer process: 250 flags, one transaction each, as the GUI writes them."""
    with ReviewStore.open(url) as store:
        start.wait(timeout=60)
        for n in range(FLAGS_PER_WRITER):
            flag = store.create_flag(**_flag_args(ctx, writer, n, f"w{writer}-{n}"))
            if n % UPDATE_EVERY == 0:
                store.update_flag(flag.id, f"writer{writer}", status="confirmed")


def _killed_writer(url: str, ctx: dict[str, Any], progress: Any) -> None:
    """Commit some flags, then stop inside the next transaction (after its flag row and audit
    event are written, before COMMIT) and wait there to be killed."""
    with ReviewStore.open(url) as store:
        for n in range(COMMITTED_BEFORE_KILL):
            flag = store.create_flag(**_flag_args(ctx, 0, n, f"kept-{n}"))
            progress.put(("committed", flag.id))

        @event.listens_for(store.engine, "after_cursor_execute")
        def _pause(_conn, _cursor, statement: str, *_args: object) -> None:
            if statement.lstrip().upper().startswith("INSERT INTO FLAG_EVENTS"):
                progress.put(("mid-transaction", os.getpid()))
                time.sleep(300)

        store.create_flag(**_flag_args(ctx, 0, 99, HALF_WRITTEN))


def _join(procs: list[Any], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for proc in procs:
        proc.join(max(0.0, deadline - time.monotonic()))
    alive = [p for p in procs if p.is_alive()]
    for proc in alive:
        proc.kill()
        proc.join()
    assert not alive, f"{len(alive)} writer(s) still running after {timeout} s"
    assert [p.exitcode for p in procs] == [0] * len(procs)


def test_concurrent_writers_lose_and_duplicate_nothing(store_url: str) -> None:  # noqa: F811
    ctx = _setup(store_url)
    start = SPAWN.Event()
    procs = [SPAWN.Process(target=_writer, args=(store_url, ctx, w, start)) for w in range(WRITERS)]
    for proc in procs:
        proc.start()
    start.set()
    _join(procs, timeout=240)

    with ReviewStore.open(store_url) as store:
        flags = store.list_flags()
        with store.engine.connect() as conn:
            events = conn.execute(
                text("SELECT flag_id, action, reviewer_id FROM flag_events")
            ).all()
            reviewer_names = dict(conn.execute(text("SELECT id, name FROM reviewers")).all())
    expected_notes = {f"w{w}-{n}" for w in range(WRITERS) for n in range(FLAGS_PER_WRITER)}
    assert len(flags) == WRITERS * FLAGS_PER_WRITER
    assert Counter(f.note for f in flags) == Counter(expected_notes)
    by_id = {f.id: f for f in flags}
    assert len(by_id) == len(flags)
    for f in flags:
        writer, n = (int(part) for part in f.note[1:].split("-"))
        assert f.reviewer == f"writer{writer}"
        assert f.status == ("confirmed" if n % UPDATE_EVERY == 0 else "open")
    expected_events = Counter({(fid, "create"): 1 for fid in by_id})
    expected_events.update((f.id, "update") for f in flags if f.status == "confirmed")
    assert Counter((fid, action) for fid, action, _ in events) == expected_events
    for fid, _action, reviewer_id in events:
        assert reviewer_names[reviewer_id] == by_id[fid].reviewer


def test_writer_killed_mid_transaction_leaves_the_database_consistent(
    store_url: str,  # noqa: F811
) -> None:
    ctx = _setup(store_url)
    progress = SPAWN.Queue()
    proc = SPAWN.Process(target=_killed_writer, args=(store_url, ctx, progress))
    proc.start()
    committed = []
    try:
        while True:
            kind, value = progress.get(timeout=120)
            if kind == "mid-transaction":
                break
            committed.append(value)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.join(30)
        if proc.is_alive():
            proc.kill()
            proc.join()
    assert proc.exitcode == -signal.SIGKILL
    assert len(committed) == COMMITTED_BEFORE_KILL

    with ReviewStore.open(store_url) as store:
        if store.engine.dialect.name == "sqlite":
            with store.engine.connect() as conn:
                assert conn.exec_driver_sql("PRAGMA integrity_check").scalars().all() == ["ok"]
                assert conn.exec_driver_sql("PRAGMA foreign_key_check").all() == []
        flags = store.list_flags()
        assert sorted(f.id for f in flags) == sorted(committed)
        assert sorted(f.note for f in flags) == sorted(
            f"kept-{n}" for n in range(COMMITTED_BEFORE_KILL)
        )
        assert all(f.note != HALF_WRITTEN for f in flags)
        for flag_id in committed:
            assert [e.action for e in store.flag_history(flag_id)] == ["create"]
        with store.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM flag_events")).scalar() == len(committed)
        after = store.create_flag(**_flag_args(ctx, 1, 0, "written after the crash"))
        assert after.id not in committed


def test_processes_opening_a_new_database_at_once_create_it_once(
    store_url: str,  # noqa: F811
) -> None:
    """The first start of a team: every client finds an empty database and migrates it."""
    start = SPAWN.Event()
    procs = [SPAWN.Process(target=_open_only, args=(store_url, start)) for _ in range(WRITERS)]
    for proc in procs:
        proc.start()
    start.set()
    _join(procs, timeout=120)
    with ReviewStore.open(store_url) as store:
        assert store.categories() == list(DEFAULT_CATEGORIES)


def _open_only(url: str, start: Any) -> None:
    start.wait(timeout=60)
    ReviewStore.open(url).close()
