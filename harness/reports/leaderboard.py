"""The JSONL leaderboard: append rows safely, read them back tolerantly.

Several runs may append to one leaderboard at once: appends hold a file lock and write
whole lines with a single flushed write. A half-written line left by a crash is reported
with its line number and skipped, never crashed on.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable, Mapping
from typing import Any

from harness.files import DamagedLine, append_jsonl_locked, read_jsonl

SCHEMA_VERSION = 1


def append_rows(path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]]) -> None:
    """Append ``rows`` to the leaderboard at ``path`` as one locked, flushed write."""
    append_jsonl_locked(path, ({"schema": SCHEMA_VERSION, **row} for row in rows), timeout=60)


def read_rows_checked(
    path: str | os.PathLike[str],
) -> tuple[list[dict[str, Any]], list[DamagedLine]]:
    """Every valid row of the leaderboard, and every damaged line with its number.

    A line is damaged when it is not JSON (a write cut short by a crash) or not a JSON
    object. Blank lines are ignored.
    """
    objects, damaged = read_jsonl(path)
    return [row for _, row in objects], damaged


def read_rows(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every valid row of the leaderboard; damaged lines are warned about and skipped."""
    rows, damaged = read_rows_checked(path)
    for line in damaged:
        warnings.warn(f"{path}:{line.number}: damaged line skipped ({line.reason})", stacklevel=2)
    return rows
