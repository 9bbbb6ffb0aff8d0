"""The ``magma`` model adapter: Requests in, Responses out, on an original MAGMA checkpoint.

Prompts are assembled as MAGMA does: each TextPart tokenised without BOS/EOS, each ImagePart
replaced by its image-prefix embeddings, all concatenated in order with no separators. Each
distinct image's prefix is computed once per adapter (i.e. per run), keyed by ``image_id``,
however many shots, tasks and repeats use it. Images are encoded one at a time so their
prefixes, like the sampled text, do not depend on what else is in the batch.

This module knows nothing of tasks, judges or reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from harness.errors import BenchError
from harness.hashing import stable_hash
from harness.identity import file_identity, folder_identity, hub_repo_identity
from harness.models.base import Model
from harness.models.common import cut_at_stop
from harness.models.magma import decoding, scoring
from harness.models.magma.checkpoint import load_magma
from harness.models.magma.hub import IMAGE_TOKEN, load_tokenizer, resolve_checkpoint
from harness.models.magma.preprocess import preprocess
from harness.models.magma.sampling import SAMPLERS, Sampler
from harness.registry import register_model
from harness.types import ImagePart, Request, Response, TextPart


@register_model("magma")
class MagmaModel(Model):
    """MAGMA v1 (or any checkpoint in its format), batched, on CPU or GPUs.

    Args:
        checkpoint: local ``model.pt``, ``hf://owner/repo/file``, or None for ``hub_repo``.
        tokenizer: a Hugging Face tokenizer folder; None downloads GPT-2's.
        tiny_seed: build (once, cached) and use the random-weight tiny twin of this seed.
        hub_repo / hub_file / mirrors: where the official checkpoint lives.
        dtype: float16 / bfloat16 / float32 / auto (float16 on GPUs, as MAGMA ran; float32 on
            the CPU). device_map: cpu, cuda, auto, balanced...
        batch_size: requests per forward pass.
        sampler: "standard" (temperature, top-k, nucleus), "original" (MAGMA's top-p filter
            since commit 26c69a4, 2022-07-21) or "original-2021" (its filter before that).
        top_p: if set, replaces every request's top_p (MAGMA's own generate used 0.9).
        decode: auto / eager / static / compiled (``decoding.DECODE_MODES``): how the
            decode loop runs; the answers are the same up to float rounding.
        num_heads / rotary_dim / image_size: sizes the checkpoint's shapes cannot tell.
        finetuned: the output folder of ``run_bench.py finetune``: its trained weights are
            loaded onto this base (refused if made for another), and ``variant`` names them.
    """

    identity_arg = "checkpoint"

    def __init__(self, checkpoint: str | None = None, tokenizer: str | None = None,
                 tiny_seed: int | None = None, hub_repo: str = "Aleph-Alpha/magma-research",
                 hub_file: str = "model.pt", mirrors: Sequence[str] = ("osanseviero/magma",),
                 dtype: str = "auto", device_map: Any = "auto", batch_size: int = 8,
                 sampler: str = "standard", top_p: float | None = None, num_heads: int | None = None,
                 rotary_dim: int | None = None, image_size: int | None = None,
                 finetuned: str | None = None, decode: str = "auto") -> None:
        if sampler not in SAMPLERS:
            raise BenchError(f"sampler must be one of {', '.join(SAMPLERS)}, not {sampler!r}")
        if decode not in decoding.DECODE_MODES:
            raise BenchError(f"decode must be one of {', '.join(decoding.DECODE_MODES)}, not {decode!r}")
        self.sampler: Sampler = sampler  # type: ignore[assignment]
        self.decode = decode
        self.batch_size = max(1, int(batch_size))
        self.preferred_batch_size = self.batch_size
        self.top_p = None if top_p is None else float(top_p)
        if tiny_seed is not None:
            from harness.models.magma.tiny import TINY_VERSION, ensure_tiny

            path, tokenizer_dir = ensure_tiny(int(tiny_seed))
            tokenizer = tokenizer or str(tokenizer_dir)
            self._weights_id: dict[str, Any] = {"tiny_seed": int(tiny_seed), "tiny_version": TINY_VERSION}
        else:
            if isinstance(mirrors, str):
                mirrors = tuple(m for m in mirrors.split(";") if m)
            path = resolve_checkpoint(checkpoint, hub_repo, hub_file, tuple(mirrors))
            self._weights_id = {}
        # By content (hashed once per file version, see harness.identity), never by name.
        self._weights_id["checkpoint"] = file_identity(path)
        self._weights_id["tokenizer"] = (folder_identity(tokenizer) if tokenizer
                                         else hub_repo_identity("gpt2"))
        overrides = {"n_head": num_heads, "rotary_dim": rotary_dim, "image_size": image_size}
        self.model = load_magma(path, dtype=dtype, device_map=device_map, overrides=overrides)
        if finetuned:
            from harness.models.magma.finetuned import apply_finetuned

            info = apply_finetuned(self.model, finetuned)
            self.variant = info.variant
            self._weights_id["finetuned"] = info.weights_sha256
        self.config = self.model.config
        self.tokenizer = load_tokenizer(tokenizer, self.config.vocab_rows)
        self.eos_id = int(self.tokenizer.eos_token_id)
        self.image_token_id = int(self.tokenizer.convert_tokens_to_ids(IMAGE_TOKEN))
        self._image_prefixes: dict[str, torch.Tensor] = {}
        #: How many image prefixes were computed (each distinct image once per run).
        self.image_prefix_computations = 0

    # ------------------------------------------------------------------ prompt assembly

    @property
    def device(self) -> torch.device:
        return self.model.word_embedding.weight.device

    def image_prefix(self, part: ImagePart) -> torch.Tensor:
        """The (tokens, hidden) prefix of one image, computed the first time its id is seen."""
        cached = self._image_prefixes.get(part.image_id)
        if cached is None:
            pixels = preprocess(part.image, self.config.image_size).unsqueeze(0)
            with torch.no_grad():
                cached = self.model.embed_images(pixels.to(self.device))[0].to(self.device)
            self._image_prefixes[part.image_id] = cached
            self.image_prefix_computations += 1
        return cached

    def text_ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def embed_prompt(self, request: Request) -> torch.Tensor:
        """The request's prompt as (length, hidden) embeddings, parts in order."""
        pieces = []
        for part in request.parts:
            if isinstance(part, TextPart):
                ids = self.text_ids(part.text)
                if ids:
                    with torch.no_grad():
                        pieces.append(self.model.embed_tokens(torch.tensor(ids, dtype=torch.long)))
            else:
                pieces.append(self.image_prefix(part))
        if not pieces:
            raise BenchError(f"request {request.request_id} has an empty prompt")
        return torch.cat(pieces)

    def _prepare(self, request: Request, extra_tokens: int) -> torch.Tensor:
        prompt = self.embed_prompt(request)
        if prompt.shape[0] + extra_tokens > self.config.max_positions:
            raise BenchError(f"prompt of {prompt.shape[0]} tokens plus {extra_tokens} more exceeds "
                             f"MAGMA's {self.config.max_positions} positions; use fewer shots")
        return prompt

    def finetune_view(self):  # -> harness.models.base.FinetuneView
        """What ``run_bench.py finetune`` trains: this model's modules, tokenizer, preprocessing."""
        from harness.models.magma.finetuned import magma_view

        size = self.config.image_size
        return magma_view(self.model, self.tokenizer, lambda image: preprocess(image, size))

    # ------------------------------------------------------------------ Model interface

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        responses: dict[int, Response] = {}
        prepared: list[tuple[int, torch.Tensor]] = []
        for index, request in enumerate(requests):
            try:
                prepared.append((index, self._prepare(request, request.generation.max_new_tokens)))
            except BenchError as exc:
                responses[index] = Response(request_id=request.request_id, error=str(exc))
        prepared.sort(key=lambda item: -item[1].shape[0])  # similar lengths pad less
        for start in range(0, len(prepared), self.batch_size):
            chunk = prepared[start:start + self.batch_size]
            batch = [requests[i] for i, _ in chunk]
            settings = [self._settings(r) for r in batch]
            stops = [s.until for s in settings]

            def should_stop(row: int, tokens: list[int], stops=stops) -> bool:
                return bool(stops[row]) and any(s in self._decode(tokens) for s in stops[row])

            outputs = decoding.generate_batch(
                self.model, [p for _, p in chunk], settings, [r.seed for r in batch], self.eos_id,
                sampler=self.sampler, should_stop=should_stop, mode=self.decode)
            for (index, _), request, output in zip(chunk, batch, outputs):
                text = cut_at_stop(self._decode(list(output.token_ids)), request.generation.until)
                responses[index] = Response(request_id=request.request_id, text=text)
        return [responses[i] for i in range(len(requests))]

    def loglikelihood(self, requests: Sequence[Request]) -> list[Response]:
        prepared: list[tuple[int, torch.Tensor, list[list[int]]]] = []
        errors: dict[int, str] = {}
        for index, request in enumerate(requests):
            if not request.continuations:
                errors[index] = "loglikelihood request has no continuations"
                continue
            conts = [self.text_ids(c) for c in request.continuations]
            try:
                prompt = self._prepare(request, max(len(c) for c in conts))
            except BenchError as exc:
                errors[index] = str(exc)
                continue
            prepared.append((index, prompt, conts))
        scored: dict[int, list[tuple[float, bool]]] = {}
        if self.decode == "eager":  # each (prompt, continuation) pair in full
            pairs = [(index, prompt, cont) for index, prompt, conts in prepared for cont in conts]
            for start in range(0, len(pairs), self.batch_size):
                chunk = pairs[start:start + self.batch_size]
                results = scoring.score_batch(self.model, [p for _, p, _ in chunk], [c for _, _, c in chunk])
                for (index, _, _), result in zip(chunk, results):
                    scored.setdefault(index, []).append(result)
        else:  # each prompt once, its continuations from its cache
            for start in range(0, len(prepared), self.batch_size):
                group = prepared[start:start + self.batch_size]
                per_prompt = scoring.score_choices(self.model, [p for _, p, _ in group],
                                                    [c for _, _, c in group])
                for (index, _, _), results in zip(group, per_prompt):
                    scored[index] = results
        out = []
        for index, request in enumerate(requests):
            if index in errors:
                out.append(Response(request_id=request.request_id, error=errors[index]))
            else:
                values = scored[index]
                out.append(Response(request_id=request.request_id,
                                    loglikelihoods=tuple(v for v, _ in values)))
        return out

    def identity(self) -> dict[str, Any]:
        return self._weights_id

    def fingerprint(self) -> str:
        return stable_hash({"base": super().fingerprint(), "config": self.config.to_dict()})

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "architecture": self.config.to_dict(),
                "dtype": str(self.model.word_embedding.weight.dtype).removeprefix("torch."),
                "sampler": self.sampler_label()}

    def sampler_label(self) -> str:
        """The sampler as leaderboard rows name it, e.g. ``original, top_p 0.9``."""
        return self.sampler if self.top_p is None else f"{self.sampler}, top_p {self.top_p:g}"

    # ------------------------------------------------------------------ helpers

    def _settings(self, request: Request):
        if self.top_p is None:
            return request.generation
        from dataclasses import replace

        return replace(request.generation, top_p=self.top_p)

    def _decode(self, token_ids: list[int]) -> str:
        kept = [t for t in token_ids if t != self.image_token_id]
        return self.tokenizer.decode(kept, skip_special_tokens=False)
