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
