"""Reading JSON Lines files that the harness writes: one JSON object a line.

Append-only files (the leaderboard, hand labels, the response journal) can end in a line cut
short by a crash; files replaced atomically (``samples.jsonl``) cannot. Readers choose what a
damaged line means for their file; this module only finds them, with their line numbers.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class DamagedLine:
    """A line that is not a JSON object, with its 1-based number and why."""

    number: int
    reason: str
    text: str


def read_objects(path: str | os.PathLike[str]) -> tuple[list[tuple[int, dict[str, Any]]], list[DamagedLine]]:
    """``(line number, object)`` for every JSON-object line, and every damaged line.

    Blank lines are ignored; a missing file reads as empty.
    """
    path = Path(path)
    if not path.exists():
        return [], []
    objects: list[tuple[int, dict[str, Any]]] = []
    damaged: list[DamagedLine] = []
    with path.open(encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                damaged.append(DamagedLine(number, f"not valid JSON ({exc.msg})", line.rstrip("\n")))
                continue
            if not isinstance(value, dict):
                damaged.append(DamagedLine(number, "not a JSON object", line.rstrip("\n")))
                continue
            objects.append((number, value))
    return objects, damaged
