"""Image ablations: what a prompt shows in place of an item's image, to see whether a model uses it.

- ``none``: the item's own image.
- ``blank``: a grey image of the same size: the model is shown an image, but nothing in it.
- ``shuffle``: the image of another item of the same split, drawn with a seed derived from
  (run seed, split, item id), so every task that asks the item (0, 1, 2 shots) shows the same
  one. Never the item's own image (nor a copy of it), and never an image of the item's
  ``scenario`` or of its ``contrast_id`` partner where the documents have those fields: such an
  image shows the same setting with the one deciding fact changed, so it would flip the right
  answer (an image-contrast test) instead of taking the image's information away.
- ``describe``: the text ``"Image: <image_description>."`` where the image stood, so that
  text-only models can take image tasks. An item with an image and no description is an error.

Every image of a prompt is ablated, the demonstrations' too, each by its own document. This
module changes what a prompt shows; it knows nothing of models, judges or scores.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.errors import BenchError, did_you_mean
from harness.hashing import derive_seed, image_id
from harness.types import Content, ImagePart, TextPart

ABLATIONS = ("none", "blank", "shuffle", "describe")
NO_ABLATION = "none"
#: The fill of a blank image: mid grey, no edge or colour for a model to read.
BLANK_GREY = (128, 128, 128)
#: Document fields whose images a shuffle never draws for an item with the same value.
SHUFFLE_EXCLUDED_FIELDS = ("scenario", "contrast_id")


def check_ablation(name: str | None) -> str:
    """``name`` if it is an ablation (None means ``none``), else a one-line BenchError."""
    if name is None:
        return NO_ABLATION
    if name not in ABLATIONS:
        raise BenchError(f"--image-ablation: unknown ablation '{name}'; choose one of "
                         f"{', '.join(ABLATIONS)}.{did_you_mean(str(name), ABLATIONS)}")
    return name


def variant_with_ablation(variant: str | None, ablation: str | None) -> str | None:
    """A leaderboard variant: the model's own (a finetune) plus ``+ablation=NAME``."""
    if not ablation or ablation == NO_ABLATION:
        return variant
    return f"{variant or ''}+ablation={ablation}"


def describe_text(doc: Mapping[str, Any], doc_id: str, where: str) -> str:
    description = doc.get("image_description")
    if not isinstance(description, str) or not description.strip():
        raise BenchError(f"{where}: --image-ablation describe needs an 'image_description' for "
                         f"every item with an image, and item {doc_id} has none; add "
                         "descriptions or choose another ablation")
    return f"Image: {description.strip().rstrip('.')}.\n"


class BlankImages:
    """Grey images, one per (mode, size), with their content ids computed once."""

    def __init__(self) -> None:
        self._made: dict[tuple[str, tuple[int, int]], ImagePart] = {}

    def like(self, part: ImagePart) -> ImagePart:
        from PIL import Image

        mode = "RGB" if part.image.mode not in ("L", "RGB") else part.image.mode
        width, height = part.image.size
        key = (mode, (width, height))
        if key not in self._made:
            fill: Any = BLANK_GREY if mode == "RGB" else BLANK_GREY[0]
            grey = Image.new(mode, part.image.size, fill)
            self._made[key] = ImagePart(image_id(grey), grey)
        return self._made[key]


@dataclass
class _PoolImage:
    part: ImagePart
    marks: set[tuple[str, str]] = field(default_factory=set)


class ShufflePool:
    """The distinct images of one split, each with the scenarios and contrasts it belongs to."""

    def __init__(self, entries: Sequence[tuple[Mapping[str, Any], Sequence[ImagePart]]]) -> None:
        self._images: dict[str, _PoolImage] = {}
        for doc, parts in entries:
            for part in parts:
                entry = self._images.setdefault(part.image_id, _PoolImage(part))
                entry.marks |= _marks(doc)

    def draw(self, doc: Mapping[str, Any], own: Sequence[ImagePart], seed: int,
             doc_id: str) -> list[ImagePart]:
        """As many other images as the item has, never its own nor its scenario's."""
        own_ids = {part.image_id for part in own}
        marks = _marks(doc)
        allowed = [self._images[ident].part for ident in sorted(self._images)
                   if ident not in own_ids and not (self._images[ident].marks & marks)]
        if len(allowed) < len(own):
            raise BenchError(f"--image-ablation shuffle: item {doc_id} has no other image to "
                             f"show ({len(allowed)} allowed, {len(own)} needed); the split needs "
                             "images of more than one scenario")
        return random.Random(seed).sample(allowed, len(own))


def _marks(doc: Mapping[str, Any]) -> set[tuple[str, str]]:
    return {(name, str(doc[name])) for name in SHUFFLE_EXCLUDED_FIELDS
            if doc.get(name) not in (None, "")}


def shuffle_seed(run_seed: int, split: str, doc_id: str) -> int:
    return derive_seed(run_seed, "image-ablation", "shuffle", split, doc_id)


def ablate(ablation: str, parts: Sequence[ImagePart], doc: Mapping[str, Any], doc_id: str, *,
           where: str, blanks: BlankImages, pool: ShufflePool | None,
           seed: int) -> list[Content]:
    """What the prompt shows in place of one document's ``parts``."""
    if ablation == NO_ABLATION or not parts:
        return list(parts)
    if ablation == "blank":
        return [blanks.like(part) for part in parts]
    if ablation == "describe":
        text = describe_text(doc, doc_id, where)
        return [TextPart(text) for _ in parts]
    if ablation == "shuffle":
        assert pool is not None
        return list(pool.draw(doc, parts, seed, doc_id))
    raise ValueError(f"unknown ablation {ablation!r}")
