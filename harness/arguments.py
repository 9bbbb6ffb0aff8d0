"""The shapes of value every command-line flag shares: name lists and ``key=value`` lists.

Commands parse flags with these, and the API accepts the same strings, so ``--tasks a,b`` and
``evaluate(tasks="a,b")`` mean one thing. No command or stage lives here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from harness.errors import BenchError


def split_names(value: str | Iterable[str] | None) -> list[str]:
    """``"a,b"``, ``["a", "b"]`` or ``["a,b", "c"]`` (a repeated flag) as a clean list of names."""
    if value is None:
        return []
    values = [value] if isinstance(value, str) else list(value)
    return [name.strip() for item in values if item for name in item.split(",") if name.strip()]


def parse_key_values(text: str | None, flag: str) -> dict[str, Any]:
    """``"a=1,b=x"`` as ``{"a": 1, "b": "x"}`` (numbers and true/false/none converted)."""
    values: dict[str, Any] = {}
    if not text:
        return values
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise BenchError(f"{flag}: '{item}' is not key=value; write e.g. {flag} name=value,other=1")
        values[key.strip()] = _convert(raw.strip())
    return values


def _convert(raw: str) -> Any:
    lowered = raw.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("none", "null"):
        return None
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw


def parse_judge_args(text: str | None) -> dict[str, dict[str, Any]]:
    """``"judge.key=v,other.key=w"`` as ``{"judge": {"key": v}, "other": {"key": w}}``."""
    grouped: dict[str, dict[str, Any]] = {}
    for key, value in parse_key_values(text, "--judge-args").items():
        judge, dot, name = key.partition(".")
        if not dot or not name:
            raise BenchError(f"--judge-args: '{key}' must be JUDGE.KEY=VALUE, e.g. reference.x=1")
        grouped.setdefault(judge, {})[name] = value
    return grouped
