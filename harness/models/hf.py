"""The ``hf`` adapter: any transformers image-text-to-text model (LLaVA, Idefics, SmolVLM, ...).

Loads through ``AutoProcessor`` + ``AutoModelForImageTextToText``, renders each request with
the model's own chat template (images interleaved where the prompt puts them), batches with
left padding, and maps the task's ``GenerationSettings`` onto ``generate()``.

Batched generation and scoring, per-row seeds and batch splitting are
``harness.models.hf_common.TransformersModel``'s; this module renders and encodes a VLM's
prompts and finds the continuation's tokens when scoring. It must not know about tasks or
judges.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from harness.errors import BenchError
from harness.models.common import chat_messages, install_hint, missing_package, to_rgb
from harness.models.hf_common import TransformersModel, check_dtype, first_line, load_pretrained
from harness.models.hf_rows import Refused, one_line, refusing
from harness.registry import register_model
from harness.types import Request, TextPart


@register_model("hf")
class HFModel(TransformersModel):
    """A transformers VLM loaded from the hub or a local folder.

    Args:
        pretrained: Hub id (``llava-hf/llava-1.5-7b-hf``) or local folder.
        revision: Hub branch, tag or commit; pin a commit for reproducible runs.
        dtype: ``auto`` (the checkpoint's), ``float32``, ``float16`` or ``bfloat16``.
        device_map: Passed to accelerate (``auto`` spreads a large model over GPUs and CPU).
        device: Where to put the model when ``device_map`` is not set; default cuda if present.
        trust_remote_code: Allow the checkpoint's own Python code (only for repos you trust).
        attn_implementation: e.g. ``sdpa``, ``eager``, ``flash_attention_2``.
        use_chat_template: Render prompts with the processor's chat template; without one
            (or when False) the prompt text is used as is, with the image token per image.
        system_prompt: An optional system message placed before the prompt.
        processor_args: Extra keyword arguments for ``AutoProcessor.from_pretrained``.
        cache_dir: Where hub downloads go (default: the Hugging Face cache).
    """

    def __init__(self, pretrained: str, revision: str | None = None, dtype: str = "auto",
                 device_map: str | dict[str, Any] | None = None, device: str | None = None,
                 trust_remote_code: bool = False, attn_implementation: str | None = None,
                 use_chat_template: bool = True, system_prompt: str | None = None,
                 processor_args: Mapping[str, Any] | None = None,
                 cache_dir: str | None = None) -> None:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        check_dtype("hf", dtype)
        # A hub id is "name" or "owner/name"; anything else that names no folder is a typo'd
        # path, which transformers would report as a malformed repo id.
        if not Path(pretrained).expanduser().exists() and (
                pretrained.startswith((".", "/", "~")) or pretrained.count("/") > 1):
            raise BenchError(f"hf: no folder {pretrained}; pass --model-args pretrained= a "
                             "local model folder or a hub id (owner/name)")
        self.pretrained, self.revision, self.cache_dir = pretrained, revision, cache_dir
        self.system_prompt = system_prompt
        common: dict[str, Any] = {"revision": revision, "trust_remote_code": trust_remote_code,
                                  "cache_dir": cache_dir}
        try:
            self.processor = AutoProcessor.from_pretrained(pretrained, **common,
                                                           **dict(processor_args or {}))
            self.model = load_pretrained(AutoModelForImageTextToText, pretrained, common, dtype,
                                         device_map, device, attn_implementation)
        except (ImportError, OSError, ValueError) as exc:
            missing = missing_package(exc)
            if missing is not None:  # e.g. a processor that needs torchvision for its video half
                raise BenchError(f"hf: '{pretrained}' needs the package {missing}, which is not "
                                 f"installed; {install_hint(missing)}") from None
            if isinstance(exc, ImportError):
                raise BenchError(f"hf: '{pretrained}' needs a package that is not installed: "
                                 f"{one_line(exc)}") from None
            raise BenchError(f"hf: cannot load '{pretrained}': {first_line(exc)}. Check the hub id "
                             "or folder (and network access, or HF_HUB_OFFLINE=1 with a cached "
                             "copy)") from None
        tokenizer = getattr(self.processor, "tokenizer", self.processor)
        tokenizer.padding_side = "left"  # generation continues from the right end
        # Some repositories keep the template only in the tokenizer's config.
        self._use_tokenizer(tokenizer, getattr(self.processor, "chat_template", None)
                            or getattr(tokenizer, "chat_template", None), use_chat_template, "hf")
        self.image_token = str(getattr(self.processor, "image_token", "<image>"))
        # PaliGemma's processor splits prefix from suffix itself (the suffix attends causally,
        # the prefix bidirectionally): scoring must hand it the continuation as the suffix.
        self._suffix_scoring = "suffix" in inspect.signature(type(self.processor).__call__).parameters
        self._text_only_refusal = self._probe_text_only()
        self._tokenizer_adds_bos = self._probe_tokenizer_bos()
        self._bos_from_tokenizer: dict[tuple[bool, bool], bool] = {}
        self._identity = self._identify()

    # ----- prompts -------------------------------------------------------------------------

    def _render(self, request: Request) -> str:
        """The request as the model's prompt string, image placeholders where images stand."""
        if not self.use_chat_template:
            return "".join(p.text if isinstance(p, TextPart) else self.image_token
                           for p in request.parts)
        messages = chat_messages(request.parts, lambda _: {"type": "image"}, self.system_prompt,
                                 system_as_parts=True)
        return str(self.processor.apply_chat_template(messages, chat_template=self.chat_template,
                                                      add_generation_prompt=True, tokenize=False))

    def _probe_text_only(self) -> str | None:
        """Why the processor refuses a prompt without images (PaliGemma's does), or None."""
        try:
            self.processor(text=["probe"], return_tensors="pt")
        except (ValueError, TypeError) as exc:
            return f"{type(self.processor).__name__} needs an image in every prompt ({first_line(exc)})"
        return None

    def _probe_tokenizer_bos(self) -> bool:
        """Whether the tokenizer itself prepends BOS when asked to add special tokens."""
        bos = self.tokenizer.bos_token_id
        if bos is None:
            return False
        with_special = self.tokenizer("a", add_special_tokens=True).input_ids
        return bool(with_special) and with_special[0] == bos

    def _encode(self, texts: list[str], requests: Sequence[Request],
                suffixes: Sequence[str] | None = None) -> Any:
        """Tokenize a left-padded batch, each row with its request's images in order.

        Exactly one BOS per row: the rendered text, the processor (Mllama and PaliGemma insert
        it themselves) or the tokenizer adds it, and which one is detected on the first batch
        of each kind, never assumed.
        """
        images = [[to_rgb(p.image) for p in r.images] for r in requests]
        kwargs: dict[str, Any] = {"text": texts, "return_tensors": "pt", "padding": True,
                                  "add_special_tokens": False}
        if any(images):
            kwargs["images"] = images
        if suffixes is not None:
            kwargs["suffix"] = list(suffixes)
        inputs = refusing(self.processor, **kwargs)
        bos = self.tokenizer.bos_token_id
        kind = (bool(any(images)), bool(self.tokenizer.bos_token)
                and all(t.startswith(self.tokenizer.bos_token) for t in texts))
        if kind not in self._bos_from_tokenizer:
            rows = [[i for i, keep in zip(ids, mask) if keep] for ids, mask in
                    zip(inputs["input_ids"].tolist(), inputs["attention_mask"].tolist())]
            has_bos = bos is not None and all(bos in row for row in rows)
            self._bos_from_tokenizer[kind] = self._tokenizer_adds_bos and not has_bos
        if self._bos_from_tokenizer[kind]:
            inputs = refusing(self.processor, **{**kwargs, "add_special_tokens": True})
        inputs.pop("labels", None)  # PaliGemma's training labels: scoring reads the ids itself
        # Floating tensors (pixel values) follow the model's dtype; ids stay integers.
        return inputs.to(self.model.device, dtype=self.model.dtype)

    def _score_rows(self, rows: Sequence[tuple[Request, str]]) -> list[tuple[float, bool]]:
        """Each row's continuation log-probability and whether it is the greedy one."""
        requests = [r for r, _ in rows]
        contexts = [self._render(r) for r in requests]
        if self._suffix_scoring:
            inputs = self._encode(contexts, requests, suffixes=[c for _, c in rows])
            spans = self._suffix_spans(inputs)
        else:
            inputs = self._encode([ctx + cont for ctx, (_, cont) in zip(contexts, rows)], requests)
            spans = self._continuation_spans(inputs, contexts, requests)
        with torch.inference_mode():
            logits = refusing(self.model, **inputs).logits
        results = []
        for row, (start, end) in enumerate(spans):
            if end <= start:
                raise Refused(f"continuation {rows[row][1]!r} adds no tokens to the prompt")
            # Position p's logits predict token p + 1.
            row_lp = logits[row, start - 1:end - 1].float().log_softmax(-1)
            row_targets = inputs["input_ids"][row, start:end]
            total = row_lp.gather(-1, row_targets[:, None]).sum().item()
            greedy = bool((row_lp.argmax(-1) == row_targets).all().item())
            results.append((float(total), greedy))
        return results

    def _continuation_spans(self, inputs: Any, contexts: Sequence[str],
                            requests: Sequence[Request]) -> list[tuple[int, int]]:
        """Where each row's continuation lies: what the full encoding adds to the context's.

        The processor may put anything around the text (PaliGemma appends "\n", others an
        end token), so the continuation is what differs between the processor's encoding of
        the context alone and of context + continuation: after their common prefix, before
        their common suffix (which may not reach into that prefix).
        """
        context_ids: dict[str, list[int]] = {}
        spans = []
        for row, (context, request) in enumerate(zip(contexts, requests)):
            if request.request_id not in context_ids:
                alone = self._encode([context], [request])
                context_ids[request.request_id] = alone["input_ids"][0].tolist()
            ctx = context_ids[request.request_id]
            mask = inputs["attention_mask"][row].tolist()
            pad = mask.index(1) if 1 in mask else len(mask)
            full = inputs["input_ids"][row, pad:].tolist()
            prefix = 0
            while prefix < min(len(ctx), len(full)) and ctx[prefix] == full[prefix]:
                prefix += 1
            suffix = 0
            while (suffix < len(ctx) - prefix and suffix < len(full) - prefix
                   and ctx[-1 - suffix] == full[-1 - suffix]):
                suffix += 1
            spans.append((pad + prefix, pad + len(full) - suffix))
        return spans

    def _suffix_spans(self, inputs: Any) -> list[tuple[int, int]]:
        """The suffix tokens the processor marked (token type 1), less the end token it appends."""
        spans = []
        for types, ids in zip(inputs["token_type_ids"].tolist(), inputs["input_ids"].tolist()):
            marked = [i for i, kind in enumerate(types) if kind == 1]
            if not marked:
                raise Refused("the processor marked no suffix tokens")
            end = marked[-1] + 1
            if ids[end - 1] == self.tokenizer.eos_token_id:
                end -= 1
            spans.append((marked[0], end))
        return spans

    # ----- plumbing ------------------------------------------------------------------------

    def refusal(self, request: Request) -> str | None:
        if self._text_only_refusal and not request.images:
            return f"hf: {self._text_only_refusal}"
        return None

