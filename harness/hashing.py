"""Stable hashes and seed derivation.

Every random choice in a run takes a seed derived from (run seed, names, item id, repeat),
so results never depend on batch size, process count or dict order.
"""

from __future__ import annotations

import hashlib
import io
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL.Image import Image


def stable_hash(value: Any, length: int = 16) -> str:
    """Hex digest of a JSON-serialisable value, independent of dict order."""
    blob = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


class ListHash:
    """``stable_hash`` of a list, or of ``{key: list, **fixed}``, fed one item at a time.

    For a run too large to hold its items at once: ``ListHash().add(a).add(b).hexdigest()``
    equals ``stable_hash([a, b])``; with ``key="docs", fixed={"config": c}`` it equals
    ``stable_hash({"config": c, "docs": [a, b]})``. Items must be strings.
    """

    def __init__(self, key: str | None = None, fixed: dict[str, Any] | None = None) -> None:
        self._digest = hashlib.sha256()
        self._first = True
        self._tail = "]"
        if key is None:
            self._digest.update(b"[")
            return
        # sort_keys order: the fixed keys before and after the list's key.
        whole = {**(fixed or {}), key: []}
        encoded = json.dumps(whole, sort_keys=True, ensure_ascii=False, default=str)
        head, _, tail = encoded.partition(json.dumps(key) + ": []")
        self._digest.update((head + json.dumps(key) + ": [").encode())
        self._tail = "]" + tail

    def add(self, item: str) -> ListHash:
        text = json.dumps(item, ensure_ascii=False)
        self._digest.update(((", " if not self._first else "") + text).encode())
        self._first = False
        return self

    def hexdigest(self, length: int = 16) -> str:
        digest = self._digest.copy()
        digest.update(self._tail.encode())
        return digest.hexdigest()[:length]


def derive_seed(*parts: Any) -> int:
    """A 31-bit seed from any sequence of JSON-serialisable parts."""
    digest = hashlib.sha256(json.dumps(parts, default=str).encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def image_id(image: Image) -> str:
    """Content id of an image: a hash of its mode, size and raw pixels."""
    buffer = io.BytesIO()
    buffer.write(f"{image.mode}:{image.size}".encode())
    buffer.write(image.tobytes())
    return "img-" + hashlib.sha256(buffer.getvalue()).hexdigest()[:16]
