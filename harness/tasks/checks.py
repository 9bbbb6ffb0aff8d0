"""Small validators for task YAML values; each error names ``file:key`` and says what to write."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from harness.errors import BenchError, did_you_mean

#: How alike a misspelt YAML key must be to a known one to be offered in its place: keys
#: share stems (``doc_to_``, ``process_``), so difflib's default 0.6 offers unrelated ones.
KEY_CUTOFF = 0.8

def as_count(where: str, value: Any, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise BenchError(f"{where}: must be an integer >= {minimum}, got {value!r}")
    return value


def str_list(where: str, value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    values = [value] if isinstance(value, str) else value
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise BenchError(f"{where}: must be a name or a list of names")
    return tuple(values)


def dict_list(where: str, value: Any) -> tuple[Mapping[str, Any], ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise BenchError(f"{where}: must be a list of mappings")
    return tuple(value)


def metadata_mapping(where: str, value: Any) -> dict[str, Any]:
    """``metadata`` as a mapping, or a list of mappings (lmms-eval's form) merged in order."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list) and all(isinstance(v, dict) for v in value):
        return {k: v for entry in value for k, v in entry.items()}
    raise BenchError(f"{where}:metadata: must be a mapping or a list of mappings")


def lmms_kwargs(where: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise BenchError(f"{where}:lmms_eval_specific_kwargs: must be a mapping")
    return dict(value)


def sub_mapping(raw: Mapping[str, Any], name: str, allowed: Iterable[str], noun: str,
                 where: str) -> dict[str, Any]:
    """``raw[name]`` as a dict (empty when absent), every key checked against ``allowed``."""
    value = raw.get(name) or {}
    if not isinstance(value, dict):
        raise BenchError(f"{where}:{name}: must be a mapping")
    for key in value:
        if key not in allowed:
            raise BenchError(f"{where}:{name}.{key}: unknown {noun}."
                             f"{did_you_mean(str(key), allowed, KEY_CUTOFF)}")
    return value
