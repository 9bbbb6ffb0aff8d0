"""The JSONL leaderboard: append rows safely, read them back tolerantly.

Several runs may append to one leaderboard at once: appends hold a file lock and write
whole lines with a single flushed write. A half-written line left by a crash is reported
with its line number and skipped, never crashed on.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from filelock import FileLock

from harness.errors import BenchError
from harness.jsonl import DamagedLine, read_objects

SCHEMA_VERSION = 1


def append_rows(path: str | os.PathLike[str], rows: Iterable[Mapping[str, Any]]) -> None:
    """Append ``rows`` to the leaderboard at ``path`` as one locked, flushed write."""
    path = Path(path)
    lines = "".join(json.dumps({"schema": SCHEMA_VERSION, **row}, ensure_ascii=False) + "\n"
                    for row in rows)
    if not lines:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock", timeout=60):
            # A crash may have left a last line without its newline: start on a fresh line.
            prefix = ""
            if path.exists() and path.stat().st_size > 0:
                with path.open("rb") as existing:
                    existing.seek(-1, os.SEEK_END)
                    if existing.read(1) != b"\n":
                        prefix = "\n"
            with path.open("a", encoding="utf-8") as handle:
                handle.write(prefix + lines)
                handle.flush()
                os.fsync(handle.fileno())
    except OSError as exc:
        raise BenchError(f"cannot write the leaderboard {path}: {exc.strerror}; "
                         "choose a writable --output-dir") from None


def read_rows_checked(
    path: str | os.PathLike[str],
) -> tuple[list[dict[str, Any]], list[DamagedLine]]:
    """Every valid row of the leaderboard, and every damaged line with its number.

    A line is damaged when it is not JSON (a write cut short by a crash) or not a JSON
    object. Blank lines are ignored.
    """
    objects, damaged = read_objects(path)
    return [row for _, row in objects], damaged


def read_rows(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """Every valid row of the leaderboard; damaged lines are warned about and skipped."""
    rows, damaged = read_rows_checked(path)
    for line in damaged:
        warnings.warn(f"{path}:{line.number}: damaged line skipped ({line.reason})", stacklevel=2)
    return rows
