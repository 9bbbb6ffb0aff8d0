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
    """``"a=1,b=x,c.d=y"`` as ``{"a": 1, "b": "x", "c": {"d": "y"}}``.

    Numbers and true/false/none are converted; a dotted key sets a key of a mapping
    argument (``model_args.base_url=URL``), to any depth. This is the one parser of every
    ``k=v,...`` flag, so the dotted form works the same for models and judges.
    """
    values: dict[str, Any] = {}
    if not text:
        return values
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, raw = item.partition("=")
        path = [name.strip() for name in key.split(".")]
        if not sep or not all(path):
            raise BenchError(f"{flag}: '{item}' is not key=value; write e.g. {flag} name=value,other=1")
        _set_nested(values, path, _convert(raw.strip()), flag)
    return values


def _set_nested(values: dict[str, Any], path: list[str], value: Any, flag: str) -> None:
    target = values
    for depth, name in enumerate(path[:-1]):
        inner = target.setdefault(name, {})
        if not isinstance(inner, dict):
            raise BenchError(f"{flag}: '{'.'.join(path[:depth + 1])}' is given both a value and "
                             "keys; give one or the other")
        target = inner
    if isinstance(target.get(path[-1]), dict):
        raise BenchError(f"{flag}: '{'.'.join(path)}' is given both a value and keys; "
                         "give one or the other")
    target[path[-1]] = value


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
    """``"judge.key=v,judge.args.k=w"`` as ``{"judge": {"key": v, "args": {"k": w}}}``."""
    grouped = parse_key_values(text, "--judge-args")
    for judge, value in grouped.items():
        if not isinstance(value, dict):
            raise BenchError(f"--judge-args: '{judge}' must be JUDGE.KEY=VALUE, e.g. reference.x=1")
    return grouped
