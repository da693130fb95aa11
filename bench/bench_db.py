"""Benchmark the review store on SQLite: flags written per second and listing 10,000 flags.

Each figure is printed next to a reference measured in the same run with the raw `sqlite3`
module, as a ratio store/reference, so the numbers mean the same on a fast or a busy machine:
writes are compared with the same inserts on an identically configured file (WAL,
synchronous=NORMAL, one transaction per flag), reads with the same joined SELECT on the store's
own file. The ratio is the price of validation, the ORM and building result records.

    python -m bench.bench_db [--written 1000] [--total 10000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from db import DEFAULT_CATEGORIES, SEVERITIES, STATUSES, ImageRecord, ReviewStore

IMAGES = 500
# The reference for reads: the same join the store runs, through raw sqlite3 on the same file.
JOINED_FLAGS = (
    "SELECT f.*, i.image_key, i.dataset_id, c.name, r.name, ma.name, mb.name FROM flags f"
    " JOIN images i ON i.id = f.image_id JOIN categories c ON c.id = f.category_id"
    " JOIN reviewers r ON r.id = f.reviewer_id JOIN model_versions ma ON ma.id = f.model_a_id"
    " JOIN model_versions mb ON mb.id = f.model_b_id"
)


def _median_seconds(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _reference_db(path: Path) -> sqlite3.Connection:
    """A bare table pair shaped like flags + flag_events, with the store's pragmas."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(
        "CREATE TABLE flags (id INTEGER PRIMARY KEY, image_id INT, target TEXT, model_a_id INT,"
        " model_b_id INT, severity TEXT, category TEXT, status TEXT, note TEXT, reviewer TEXT,"
        " created_at TEXT, updated_at TEXT)"
    )
    conn.execute(
        "CREATE TABLE flag_events (id INTEGER PRIMARY KEY, flag_id INT, reviewer TEXT, at TEXT,"
        " action TEXT, changes TEXT)"
    )
    return conn


def _flag_fields(n: int) -> tuple[int, str, str, str, str]:
    """Image number, severity, status, category and note of the n-th synthetic flag."""
    return (
        n % IMAGES,
        SEVERITIES[n % len(SEVERITIES)],
        STATUSES[(n // 3) % len(STATUSES)],
        DEFAULT_CATEGORIES[n % len(DEFAULT_CATEGORIES)],
        f"synthetic flag {n}",
    )


def _reference_writes(conn: sqlite3.Connection, count: int) -> float:
    """Flags per second with raw sqlite3: one BEGIN IMMEDIATE ... COMMIT per flag + event."""
    start = time.perf_counter()
    for n in range(count):
        image, severity, status, category, note = _flag_fields(n)
        now = datetime.now(UTC).isoformat()
        conn.execute("BEGIN IMMEDIATE")
        cur = conn.execute(
            "INSERT INTO flags (image_id, target, model_a_id, model_b_id, severity, category,"
            " status, note, reviewer, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (image, "model_a", 1, 2, severity, category, status, note, "bench", now, now),
        )
        conn.execute(
            "INSERT INTO flag_events (flag_id, reviewer, at, action, changes) VALUES (?,?,?,?,?)",
            (cur.lastrowid, "bench", now, "create", json.dumps({"note": [None, note]})),
        )
        conn.execute("COMMIT")
    return count / (time.perf_counter() - start)


def _bulk_fill(db_path: Path, start: int, stop: int, ids: dict[str, int]) -> None:
    """Top the store up to `stop` flags quickly; rows are what create_flag would have written."""
    conn = sqlite3.connect(db_path)
    cats = dict(conn.execute("SELECT name, id FROM categories"))
    now = datetime.now(UTC).replace(tzinfo=None).isoformat(sep=" ")
    rows = []
    for n in range(start, stop):
        image, severity, status, category, note = _flag_fields(n)
        rows.append(
            (
                ids[f"img{image}"],
                "model_a",
                1,
                2,
                severity,
                cats[category],
                status,
                note,
                1,
                now,
                now,
            )
        )
    with conn:
        conn.executemany(
            "INSERT INTO flags (image_id, target, model_a_id, model_b_id, severity, category_id,"
            " status, note, reviewer_id, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            rows,
        )
        conn.execute(
            "INSERT INTO flag_events (flag_id, reviewer_id, at, action, changes)"
            " SELECT id, reviewer_id, created_at, 'create', '{}' FROM flags WHERE id > ?",
            (start,),
        )
    conn.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--written",
        type=int,
        default=1000,
        help="flags written through the store, one transaction each, to measure writes/s",
    )
    parser.add_argument(
        "--total",
        type=int,
        default=10_000,
        help="flags in the database when timing list and filter (the rest are bulk-loaded)",
    )
    parser.add_argument(
        "--repeat", type=int, default=5, help="runs per timing; the median is shown"
    )
    args = parser.parse_args(argv)
    if not 0 < args.written <= args.total:
        parser.error("need 0 < --written <= --total")

    with tempfile.TemporaryDirectory(prefix="bench-db-") as tmp:
        db_path = Path(tmp) / "review.db"
        store = ReviewStore.open(f"sqlite:///{db_path}")
        dataset = store.register_dataset("bench", tmp, "cityscapes", "val")
        ids = store.register_images(
            dataset.id,
            [ImageRecord(f"img{i}", f"{tmp}/{i}.png", f"h{i}", 2048, 1024) for i in range(IMAGES)],
        )
        model_a = store.register_model("ce", "sha-ce", {}).id
        model_b = store.register_model("ial", "sha-ial", {}).id

        start = time.perf_counter()
        for n in range(args.written):
            image, severity, status, category, note = _flag_fields(n)
            store.create_flag(
                image_id=ids[f"img{image}"],
                reviewer="bench",
                target="model_a",
                model_a_id=model_a,
                model_b_id=model_b,
                severity=severity,
                category=category,
                note=note,
                status=status,
            )
        store_rate = args.written / (time.perf_counter() - start)
        ref_conn = _reference_db(Path(tmp) / "reference.db")
        ref_rate = _reference_writes(ref_conn, args.written)
        ref_conn.close()
        _bulk_fill(db_path, args.written, args.total, ids)
        assert store.count_flags() == args.total

        read_conn = sqlite3.connect(db_path)

        def ref_select(where: str = "", params: tuple = (), tail: str = "") -> Callable[[], object]:
            sql = f"{JOINED_FLAGS} {where} ORDER BY f.created_at DESC, f.id DESC {tail}"
            return lambda: read_conn.execute(sql, params).fetchall()

        timings = [
            (f"list all {args.total} flags", lambda: store.list_flags(), ref_select()),
            (
                "filter status=open, severity=critical",
                lambda: store.list_flags(status="open", severity="critical"),
                ref_select("WHERE f.status = ? AND f.severity = ?", ("open", "critical")),
            ),
            (
                "filter category + first page of 50",
                lambda: store.list_flags(category="false alarm", limit=50),
                ref_select("WHERE c.name = ?", ("false alarm",), "LIMIT 50"),
            ),
            (
                f"images with flag state ({IMAGES} images)",
                lambda: store.images_with_flag_state(dataset.id),
                lambda: (
                    read_conn.execute(
                        "SELECT i.id, i.image_key, i.path FROM images i ORDER BY i.image_key"
                    ).fetchall()
                    + read_conn.execute(
                        "SELECT image_id, status, severity, count(*) FROM flags"
                        " GROUP BY image_id, status, severity"
                    ).fetchall()
                ),
            ),
        ]
        print("SQLite review store benchmark (SQLAlchemy store vs raw sqlite3 reference)")
        print(
            f"  write, one flag + audit event per transaction: {store_rate:8.0f} flags/s"
            f"   reference {ref_rate:8.0f}/s   ratio {store_rate / ref_rate:.2f}"
        )
        for label, fn, ref in timings:
            mine = _median_seconds(fn, args.repeat)
            theirs = _median_seconds(ref, args.repeat)
            print(
                f"  {label:45s} {mine * 1000:8.1f} ms   reference {theirs * 1000:7.1f} ms"
                f"   ratio {mine / theirs:.1f}x"
            )
        read_conn.close()
        store.close()


if __name__ == "__main__":
    main()
