"""magma-tiny and a small aligned training set for the finetune tests (and their subprocess).

Task data comes from the core task YAMLs in real runs; these tests build the same
``TrainingExample``s from a fixture: one image, then a paper-style ``Q: ...\\nA:`` prompt,
and an ideal answer.
"""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from harness.finetune import FinetuneView, TrainingExample
from harness.hashing import image_id
from harness.models.magma.checkpoint import load_magma, load_tokenizer
from harness.models.magma.finetuned import magma_view
from harness.models.magma.tiny import ensure_tiny

QUESTIONS = ["Do I help her cross the street?", "Should I take the wallet I found?",
             "Do I share my food with a hungry child?", "Is it fine to push someone?",
             "Should I lie to my friend?", "Is it right to feed the stray dog?"]


def pixels_for(size: int):
    try:
        from harness.models.magma.preprocess import preprocess
    except ImportError:  # until the MAGMA adapter's preprocessing lands: resize + CLIP norm
        mean = torch.tensor((0.48145466, 0.4578275, 0.40821073)).view(3, 1, 1)
        std = torch.tensor((0.26862954, 0.26130258, 0.27577711)).view(3, 1, 1)

        def preprocess(image: Image.Image, size: int = size) -> torch.Tensor:
            array = np.asarray(image.convert("RGB").resize((size, size), Image.BICUBIC),
                               dtype=np.float32) / 255.0
            return (torch.from_numpy(array).permute(2, 0, 1) - mean) / std

    return lambda image: preprocess(image, size)


def tiny_view(seed: int = 0) -> FinetuneView:
    """magma-tiny of ``seed``, loaded as the adapter loads it (float32 on the CPU)."""
    checkpoint, tokenizer_dir = ensure_tiny(seed)
    model = load_magma(checkpoint, dtype="float32", device_map="cpu")
    tokenizer = load_tokenizer(str(tokenizer_dir), model.config.vocab_rows)
    return magma_view(model, tokenizer, pixels_for(model.config.image_size))


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
