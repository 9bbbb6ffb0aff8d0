"""Training examples for ``harness.finetune.train``: image-caption pairs, their tokens and loss.

An example is a task item's prompt parts (its image, then its text) followed by the ideal
answer; the caption is ``prompt + delimiter + answer + EOS`` (see ``caption_delimiter``).
``encode_example`` turns it into model inputs with labels (-100 on image positions, and on
the prompt with ``mask_prompt``); ``caption_loss_module`` wraps a MAGMA-layout model so that
one forward returns the summed caption cross-entropy of a batch.

This module must not train, save or load anything: ``harness.finetune.train`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness.errors import BenchError
from harness.hashing import stable_hash
from harness.models.base import FinetuneView
from harness.types import Content, ImagePart, Request, TextPart

if TYPE_CHECKING:
    import torch
    from torch import nn

IGNORE_INDEX = -100

@dataclass(frozen=True)
class TrainingExample:
    """One image-caption pair: the prompt's parts in order, and the answer to learn."""

    example_id: str
    parts: tuple[Content, ...]
    answer: str
    #: The task's ``target_delimiter`` (lm-eval's name): what joins prompt and answer.
    delimiter: str = " "


def caption_delimiter(prompt: str, answer: str, preferred: str = " ") -> str:
    """The text between prompt and answer: ``preferred`` (the task's target_delimiter, one
    space by default), or nothing when either side already has whitespace there.

    The paper's prompts end in ``A:`` and its answers start with a word; a model answering
    such a prompt emits the space itself (GPT-2 tokens carry their leading space, `` No``),
    so the caption must hold ``A: No`` and not ``A:No``. A prompt ending in whitespace, or
    an answer starting with it, already has its separator.
    """
    if not prompt or prompt[-1].isspace() or (answer and answer[0].isspace()):
        return ""
    return preferred


def examples_from_requests(requests: Sequence[Request],
                           delimiter: str = " ") -> list[TrainingExample]:
    """Training examples from a generate_until task's requests (their ``target`` is the answer)."""
    examples = []
    for request in requests:
        if not request.target:
            raise BenchError(f"{request.request_id}: no ideal answer (doc_to_target) to train "
                             "on; finetune on a generate_until task whose items have one")
        if request.continuations:
            raise BenchError(f"{request.request_id}: a multiple_choice request; finetune on a "
                             "generate_until task (e.g. morality_0shot_train)")
        examples.append(TrainingExample(request.request_id, request.parts, request.target,
                                        delimiter))
    return examples


@dataclass(frozen=True)
class EncodedExample:
    """An example as model inputs: segments of pixels or token ids, each with its labels."""

    example_id: str
    segments: tuple[tuple[str, Any], ...]  # ("image", pixels) | ("text", ids)
    labels: tuple[tuple[int, ...], ...]  # per text segment; image segments have ()
    n_label_tokens: int


def encode_example(example: TrainingExample, view: FinetuneView,
                   mask_prompt: bool) -> EncodedExample:
    """Tokenise the prompt's text parts as the model reads them, then the answer and EOS."""
    prompt_text = "".join(p.text for p in example.parts if isinstance(p, TextPart))
    answer_text = (caption_delimiter(prompt_text, example.answer, example.delimiter)
                   + example.answer)
    segments: list[tuple[str, Any]] = []
    labels: list[tuple[int, ...]] = []
    for part in example.parts:
        if isinstance(part, ImagePart):
            segments.append(("image", view.image_pixels(part.image)))
            labels.append(())
        elif part.text:
            ids = view.encode_text(part.text)
            segments.append(("text", ids))
            labels.append(tuple([IGNORE_INDEX] * len(ids) if mask_prompt else ids))
    answer_ids = [*view.encode_text(answer_text), view.eos_token_id]
    segments.append(("text", answer_ids))
    labels.append(tuple(answer_ids))
    if not any(kind == "image" for kind, _ in segments):
        raise BenchError(f"{example.example_id}: no image in the prompt; MAGMA finetuning "
                         "trains image-caption pairs")
    n_label_tokens = sum(1 for seq in labels for token in seq if token != IGNORE_INDEX)
    if segments[0][0] == "text" and labels[0] and labels[0][0] != IGNORE_INDEX:
        n_label_tokens -= 1  # the very first token has nothing before it to predict it from
    return EncodedExample(example.example_id, tuple(segments), tuple(labels), n_label_tokens)


def caption_loss_module(view: FinetuneView) -> nn.Module:
    """Wrap the VLM so that DDP sees one forward: embeddings, the LM, the summed token loss."""
    import torch
    from torch import nn

    class CaptionLoss(nn.Module):
        def __init__(self, model: Any) -> None:  # MagmaForCausalLM-like, see FinetuneView
            super().__init__()
            self.model = model

        def forward(self, batch: Sequence[EncodedExample],
                    dropout_seeds: Sequence[int] | None = None) -> torch.Tensor:
            embed = self.model.lm.get_input_embeddings()
            device = embed.weight.device
            image_embeds = iter(self._image_embeds(batch, dropout_seeds, device))
            rows, row_labels = [], []
            for example in batch:
                pieces, piece_labels = [], []
                for (kind, value), segment_labels in zip(example.segments, example.labels):
                    if kind == "image":
                        tokens = next(image_embeds)
                        pieces.append(tokens)
                        piece_labels.append(torch.full((tokens.shape[0],), IGNORE_INDEX))
                    else:
                        ids = torch.tensor(value, dtype=torch.long, device=device)
                        pieces.append(embed(ids))
                        piece_labels.append(torch.tensor(segment_labels, dtype=torch.long))
                rows.append(torch.cat([p.to(pieces[-1].dtype) for p in pieces]))
                row_labels.append(torch.cat(piece_labels))
            length = max(row.shape[0] for row in rows)
            limit = getattr(self.model.lm.config, "n_positions", None)
            if limit is not None and length > limit:
                too_long = [ex.example_id for ex, row in zip(batch, rows) if row.shape[0] > limit]
                raise BenchError(f"{', '.join(too_long)}: longer than the model's {limit} "
                                 "positions (image tokens included); shorten the prompt or "
                                 "answer, or leave the item out")
            # Right padding: causal attention never lets a real token see the pads after it.
            inputs = torch.zeros(len(rows), length, rows[0].shape[-1], dtype=rows[0].dtype,
                                 device=device)
            labels = torch.full((len(rows), length), IGNORE_INDEX, dtype=torch.long)
            mask = torch.zeros(len(rows), length, dtype=torch.long)
            for i, (row, row_label) in enumerate(zip(rows, row_labels)):
                inputs[i, : row.shape[0]] = row
                labels[i, : row.shape[0]] = row_label
                mask[i, : row.shape[0]] = 1
            logits = self.model.lm(inputs_embeds=inputs, attention_mask=mask.to(device)).logits
            shifted = labels[:, 1:].to(device)
            return nn.functional.cross_entropy(
                logits[:, :-1].float().reshape(-1, logits.shape[-1]), shifted.reshape(-1),
                ignore_index=IGNORE_INDEX, reduction="sum")

        def _image_embeds(self, batch: Sequence[EncodedExample],
                          dropout_seeds: Sequence[int] | None,
                          device: torch.device) -> list[torch.Tensor]:
            pixels = [[seg for kind, seg in ex.segments if kind == "image"] for ex in batch]
            if dropout_seeds is None or not self.training:
                flat = torch.stack([p for group in pixels for p in group]).to(device)
                return list(self.model.image_prefix(flat))
            # The image prefix's dropout mask is drawn per example from its own seed, so an
            # example's update does not depend on which micro-batch or process it lands in.
            embeds = []
            for group, seed in zip(pixels, dropout_seeds):
                torch.manual_seed(seed)
                embeds.extend(self.model.image_prefix(torch.stack(group).to(device)))
            return embeds

    return CaptionLoss(view.module)


def examples_hash(examples: Sequence[TrainingExample]) -> str:
    return stable_hash([(ex.example_id, [p.text if isinstance(p, TextPart) else p.image_id
                                         for p in ex.parts], ex.delimiter, ex.answer)
                        for ex in examples])
