"""magma-tiny and a small aligned training set for the finetune tests (and their subprocess).

Task data comes from the core task YAMLs in real runs; these tests build the same
``TrainingExample``s from a fixture: one image, then a paper-style ``Q: ...\\nA:`` prompt,
and an ideal answer.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from harness.finetune.data import TrainingExample
from harness.hashing import image_id
from harness.models.base import FinetuneView
from harness.registry import load_model

QUESTIONS = ["Do I help her cross the street?", "Should I take the wallet I found?",
             "Do I share my food with a hungry child?", "Is it fine to push someone?",
             "Should I lie to my friend?", "Is it right to feed the stray dog?"]


def tiny_model(seed: int = 0, **model_args):
    """The magma adapter on magma-tiny of ``seed`` (float32, CPU), as a run loads it."""
    return load_model("magma-tiny", {"tiny_seed": seed, **model_args})


def tiny_view(seed: int = 0) -> FinetuneView:
    return tiny_model(seed).finetune_view()


def examples(count: int = 12) -> list[TrainingExample]:
    rng = np.random.default_rng(0)
    made = []
    for i in range(count):
        image = Image.fromarray(rng.integers(0, 255, (120, 100, 3), dtype=np.uint8))
        answer = "Yes, it is kind." if i % 2 == 0 else "No, it is wrong."
        made.append(TrainingExample(
            f"morality_0shot_train/{i}/0",
            (_image_part(image), _text(f"Q: {QUESTIONS[i % len(QUESTIONS)]}\nA:")), answer))
    return made


def _image_part(image: Image.Image):
    from harness.types import ImagePart

    return ImagePart(image_id(image), image)


def _text(text: str):
    from harness.types import TextPart

    return TextPart(text)
