"""The one error type for user mistakes.

A ``BenchError`` is something the user can fix (a misspelt task, a missing file, a bad
argument). The CLI prints it as a single line without a traceback. Bugs are not
``BenchError``s: they raise normally so that they can be found and fixed.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class BenchError(Exception):
    """A user-facing error: one line that says what is wrong and what to do about it."""


def did_you_mean(name: str, choices: Iterable[str], cutoff: float = 0.6) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest choice, or an empty string.

    ``cutoff`` is difflib's similarity floor; names that share a long stem (YAML keys such as
    ``doc_to_audio`` / ``doc_to_image``) need a higher one, or unrelated names are offered.
    """
    matches = difflib.get_close_matches(name, list(choices), n=1, cutoff=cutoff)
    return f" Did you mean '{matches[0]}'?" if matches else ""


def unknown(kind: str, name: str, choices: Iterable[str], hint: str = "") -> BenchError:
    """Build the error for an unknown registry name, with a close-match suggestion."""
    choices = sorted(choices)
    message = f"unknown {kind} '{name}'.{did_you_mean(name, choices)}"
    if hint:
        message += f" {hint}"
    return BenchError(message)
