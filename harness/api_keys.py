"""API keys: read from the environment, and scrubbed from every text that may hold them.

A key is registered here when an adapter is built (``api_key_from_env``), and every text that
may hold one (error bodies, completions, exception messages, journal lines) goes through
``scrub`` before it is cut, stored or printed; ``scrub`` masks the key and its base64,
URL-encoded and escaped copies. This module imports nothing from the stages; every stage may
import it.
"""

from __future__ import annotations

import base64
import functools
import os
import re
import threading
import typing
import urllib.parse
from collections.abc import Iterable

from harness.errors import BenchError

_secrets: set[str] = set()
_secrets_lock = threading.Lock()
#: A key shorter than this is not scrubbed in encoded forms (their cores would be too short).
_MIN_ENCODED = 8
MASK = "***"


def api_key_from_env(variable: str, who: str) -> str:
    """The API key in ``$variable``, stripped and checked; registered for scrubbing.

    A key copied from a CRLF ``.env`` file ends in ``\\r``: that is stripped. A key that still
    holds whitespace or a control character cannot go into an HTTP header; the error says
    where, never what the key is.
    """
    raw = os.environ.get(variable) or ""
    key = raw.strip()
    if not key:
        raise BenchError(f"{who}: set the environment variable {variable} to the API key, "
                         "or pass api_key_env=null for a server without authentication")
    register_secret(raw)
    bad = next((i for i, c in enumerate(key) if not 0x21 <= ord(c) <= 0x7E), None)
    if bad is not None:
        raise BenchError(f"{who}: the API key in {variable} has a space, a control character or "
                         f"a non-ASCII character at position {bad + 1}; fix the variable")
    register_secret(key)
    return key


def register_secret(secret: str) -> None:
    """Scrub ``secret`` (and its encoded copies) from every text that passes ``scrub``."""
    if secret and secret.strip():
        with _secrets_lock:
            _secrets.add(secret)
            _variants.cache_clear()


def _base64_cores(secret: bytes) -> list[str]:
    """The base64 text that encodes ``secret`` at each of the three byte alignments.

    Only the 4-character groups made wholly of the secret's bytes are fixed, whatever
    surrounds it; those cores identify the secret inside any longer base64 text.
    """
    cores = []
    for offset in range(3):
        padded = b"\0" * offset + secret
        encoded = base64.b64encode(padded).decode("ascii")
        first = -(-offset // 3)  # the first group that starts inside the secret
        last = (offset + len(secret)) // 3  # groups before this end inside it
        if last > first:
            core = encoded[4 * first:4 * last]
            cores += [core, core.replace("+", "-").replace("/", "_")]
    return cores


@functools.lru_cache(maxsize=1)
def _variants() -> tuple[re.Pattern[str] | None, ...]:
    with _secrets_lock:
        secrets = sorted(_secrets, key=len, reverse=True)
    forms: set[str] = set()
    for secret in secrets:
        forms.add(secret)
        if len(secret.strip()) < _MIN_ENCODED:
            continue
        forms.update({secret.strip(), urllib.parse.quote(secret, safe=""),
                      urllib.parse.quote_plus(secret), secret.encode("unicode_escape").decode()})
        forms.update(_base64_cores(secret.encode()))
        forms.update(_base64_cores(secret.strip().encode()))
    forms.discard("")
    if not forms:
        return (None,)
    ordered = sorted(forms, key=len, reverse=True)
    return (re.compile("|".join(re.escape(f) for f in ordered)),)


@typing.overload
def scrub(text: str) -> str: ...
@typing.overload
def scrub(text: None) -> None: ...
def scrub(text: str | None) -> str | None:
    """``text`` with every registered secret, and its base64 / URL-encoded copies, masked."""
    if not text:
        return text
    (pattern,) = _variants()
    return text if pattern is None else pattern.sub(MASK, text)


def scrub_all(texts: Iterable[str | None]) -> list[str | None]:
    return [scrub(t) for t in texts]
