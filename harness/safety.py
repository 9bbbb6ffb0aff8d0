"""Guards for input from untrusted hands: task files, run folders, model output, API keys.

Task YAMLs, run folders and model cards are shared as freely as datasets, so everything they
hold is data: templates render in Jinja's immutable sandbox, YAML may not use aliases, files
they name must stay inside their own folder, numbers must be finite and in range, server URLs
must be http(s). Text leaving the harness (CSV, Markdown, the terminal) is escaped for its
reader. API keys and their scrubbing are ``harness.api_keys`` (re-exported here).

This module imports nothing from the stages; every stage may import it.
"""

from __future__ import annotations

import functools
import math
import os
import re
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# The key guards live in harness.api_keys; they are named here too, beside the others.
from harness.api_keys import MASK as MASK
from harness.api_keys import api_key_from_env as api_key_from_env
from harness.api_keys import register_secret as register_secret
from harness.api_keys import scrub as scrub
from harness.api_keys import scrub_all as scrub_all
from harness.errors import BenchError

# -- templates ------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def template_environment() -> Any:
    """Jinja's immutable sandbox with StrictUndefined: templates read values, never call code.

    The sandbox refuses private and internal attributes (``__globals__``, ``__class__``,
    ``mro``, ...) and the immutable variant also refuses methods that change a value
    (``list.append``, ``dict.update``), so a template can only read what it is given.
    """
    from jinja2 import StrictUndefined
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    return ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False,
                                         keep_trailing_newline=True)


def sandbox_violation(where: str, exc: Exception) -> BenchError:
    """The one-line error for a template that reached for something it may not use."""
    detail = " ".join(str(exc).split()) or exc.__class__.__name__
    return BenchError(f"{where}: template refused by the sandbox ({detail}); templates may "
                      "only read the values they are given")


# -- YAML -----------------------------------------------------------------------------------

#: Largest task YAML (or include) read, in bytes: task files are a few kilobytes.
MAX_YAML_BYTES = 1_000_000


def check_yaml_source(path: Path | str, text: str) -> None:
    """Refuse YAML aliases (``*name``): a few hundred bytes of them expand to gigabytes."""
    if "*" not in text:
        return
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        for token in yaml.scan(text, Loader=loader):
            if isinstance(token, yaml.AliasToken):
                line = token.start_mark.line + 1
                raise BenchError(f"{path}:{line}: YAML aliases (*{token.value}) are not allowed "
                                 "in task files and model cards; write the value out")
    except yaml.YAMLError:
        return  # the parser reports the syntax error with its line


def check_yaml_size(path: Path, size: int) -> None:
    if size > MAX_YAML_BYTES:
        raise BenchError(f"{path}: {size} bytes, more than the {MAX_YAML_BYTES} a task YAML may "
                         "have; is this the right file?")


# -- paths ----------------------------------------------------------------------------------


def inside(path: Path | str, folder: Path | str, what: str) -> Path:
    """``path`` resolved (symlinks followed), checked to lie inside ``folder`` (resolved too)."""
    resolved = Path(path).resolve()
    root = Path(folder).resolve()
    if resolved != root and root not in resolved.parents:
        raise BenchError(f"{what} {path} resolves to {resolved}, outside {root}; keep it "
                         "inside its folder")
    return resolved


# -- numbers --------------------------------------------------------------------------------


def as_int(where: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> int:
    """An integer (an integral float such as 5.0 too), within bounds, or a one-line error."""
    number: Any = value
    if isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            raise BenchError(f"{where}: must be an integer, got {value!r}") from None
    if isinstance(number, float) and math.isfinite(number) and number.is_integer():
        number = int(number)
    if isinstance(number, bool) or not isinstance(number, int):
        raise BenchError(f"{where}: must be an integer, got {value!r}")
    _check_range(where, number, minimum, maximum)
    return number


def as_float(where: str, value: Any, minimum: float | None = None,
             maximum: float | None = None, *, above: bool = False) -> float:
    """A finite number within bounds (``above``: strictly greater than ``minimum``)."""
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        raise BenchError(f"{where}: must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise BenchError(f"{where}: must be a finite number, got {value!r}")
    if above and minimum is not None and number <= minimum:
        raise BenchError(f"{where}: must be greater than {minimum:g}, got {value!r}")
    _check_range(where, number, minimum, maximum)
    return number


def _check_range(where: str, number: float, minimum: float | None, maximum: float | None) -> None:
    if minimum is not None and number < minimum:
        raise BenchError(f"{where}: must be at least {minimum:g}, got {number:g}")
    if maximum is not None and number > maximum:
        raise BenchError(f"{where}: must be at most {maximum:g}, got {number:g}")


#: Ranges of argument names that mean the same thing in every adapter and judge.
ARGUMENT_RANGES: Mapping[str, tuple[float | None, float | None]] = {
    "temperature": (0.0, None), "top_p": (0.0, 1.0), "top_k": (0, None),
    "max_new_tokens": (1, None), "batch_size": (1, None), "max_concurrency": (1, None),
    "max_retries": (0, None), "timeout_s": (0.0, None), "backoff_s": (0.0, None),
    "max_backoff_s": (0.0, None), "seed": (0, None), "tiny_seed": (0, None),
}


def check_argument(where: str, name: str, value: Any, kind: Any) -> Any:
    """``value`` checked against an adapter's annotation ``kind`` (int, float) and known range."""
    if value is None:
        return value
    low, high = ARGUMENT_RANGES.get(name, (None, None))
    if kind is int:
        return as_int(f"{where} {name}", value, None if low is None else int(low),
                      None if high is None else int(high))
    if kind is float:
        return as_float(f"{where} {name}", value, low, high, above=name == "top_p")
    return value


# -- servers --------------------------------------------------------------------------------


def check_base_url(url: str, who: str) -> None:
    """An http(s) URL with a host, or a one-line error (never a traceback from urllib)."""
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc or any(
            c.isspace() or ord(c) < 0x20 for c in url):
        raise BenchError(f"{who}: base_url '{terminal_text(url)}' is not an http(s) URL; write "
                         "e.g. base_url=http://localhost:8000/v1")


# -- output ---------------------------------------------------------------------------------

_CSV_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def csv_cell(value: Any) -> Any:
    """A cell a spreadsheet will not run: text starting with = + - @ tab or CR gets a ``'``."""
    if value is None or isinstance(value, bool | int | float):
        return value
    text = str(value)
    if text.startswith(_CSV_TRIGGERS) and not _NUMBER.fullmatch(text):
        text = "'" + text
    # A lone CR is not quoted by a writer whose line ends in LF, so it would end the row.
    return text.replace("\r\n", "\n").replace("\r", "\n")


def markdown_cell(text: str) -> str:
    """A table cell that cannot end the row, split the table or open an HTML tag."""
    return (text.replace("\\", "\\\\").replace("|", "\\|").replace("\r\n", " ")
            .replace("\r", " ").replace("\n", " ").replace("<", "&lt;"))


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def terminal_text(text: Any) -> str:
    """``text`` without control characters (escape sequences, bidi overrides), for a terminal."""
    return _CONTROL.sub("", str(text))


def terminal_markup(text: Any) -> str:
    """``terminal_text`` with rich markup escaped, for strings that rich parses."""
    from rich.markup import escape

    return escape(terminal_text(text))


# -- files ----------------------------------------------------------------------------------


def umask_mode(mode: int = 0o666) -> int:
    """``mode`` as the process umask lets a new file have it (what ``open()`` would give)."""
    current = os.umask(0)
    os.umask(current)
    return mode & ~current
