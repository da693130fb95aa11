"""Where the review database lives: one precedence rule for the GUI launcher and the export CLI."""

from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "SEGBENCH_DATA"
DB_ENV = "SEGBENCH_DB"
DB_FILENAME = "review.db"


def default_data_dir() -> Path:
    """The per-user data folder: `$SEGBENCH_DATA`, else ~/.local/share/segnet-review-bench."""
    override = os.environ.get(DATA_ENV)
    if override:
        return Path(override).expanduser()
    return Path.home() / ".local" / "share" / "segnet-review-bench"


def resolve_db_url(cli_value: str | None) -> str:
    """The database URL to use: `--db` beats `$SEGBENCH_DB`, which beats the SQLite default.

    The default is a SQLite file in the data folder, so one reviewer needs no setup; a team points
    every client at the same PostgreSQL URL instead.
    """
    if cli_value:
        return cli_value
    env_value = os.environ.get(DB_ENV)
    if env_value:
        return env_value
    return f"sqlite:///{default_data_dir() / DB_FILENAME}"
