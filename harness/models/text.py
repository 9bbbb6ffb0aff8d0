"""Text helpers shared by model adapters (no heavy imports)."""

from __future__ import annotations

from collections.abc import Sequence


def cut_at_stop(text: str, until: Sequence[str]) -> str:
    """Cut ``text`` before the first stop string found in it (the earliest position wins)."""
    cuts = [text.find(stop) for stop in until if stop and stop in text]
    return text[: min(cuts)] if cuts else text
