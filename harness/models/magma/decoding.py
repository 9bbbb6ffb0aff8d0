"""Batched generation and scoring for MAGMA, whose answers do not depend on the batch.

MAGMA's own loop (magma/sampling.py) feeds equal-length batches without an attention mask and
shares one random stream across the batch. Here prompts of different lengths are left-padded,
with an attention mask and position ids that start at 0 on each row's first real token, and a
key/value cache; each request draws from its own ``torch.Generator`` seeded by the request
(one uniform number per sampled token, see ``sampling``), so its text does not depend on the
other rows of its batch.

Decoding modes (``mode``), all giving the same tokens up to float rounding (tested on the CPU
in float32 within 1e-5 in log-probability):

- ``eager``: transformers' dynamic cache, one eager forward per step.
- ``static``: a static key/value cache sized for the batch (prompt + new tokens, rounded up)
  and explicit 4-D boolean attention masks, so every decode step has the same shapes.
- ``compiled``: ``static`` with the decode step's forward compiled by ``torch.compile``
  (mode ``reduce-overhead``: CUDA graphs on a GPU); the draw stays eager. If the compiler
  fails, it warns once and goes on uncompiled. ``auto`` is ``compiled`` on CUDA and
  ``static`` elsewhere.

In every mode the logits stay on the device: each step sends B uniform numbers there and
brings back B token ids and their log-probabilities.

Scoring continuations (log-likelihoods) is ``harness.models.magma.scoring``.

This module knows token ids and embeddings only: no tokenizer, no requests.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from harness.models.magma.modeling import output_cache
from harness.models.magma.sampling import (
    RowSettings,
    Sampler,
    draw_uniform,
    mask_unembedded,
    pick_tokens,
)
from harness.types import GenerationSettings

DecodeMode = Literal["auto", "eager", "static", "compiled"]
DECODE_MODES = ("auto", "eager", "static", "compiled")
#: Static caches are sized in multiples of this, so batches share compiled graphs.
CACHE_BUCKET = 64


@dataclass(frozen=True)
class GeneratedSequence:
    """What one row of a batch generated."""

    token_ids: tuple[int, ...]  # new tokens, the EOS that ended them excluded
    step_logprobs: tuple[float, ...]  # log p(token) under the model (masked, no temperature)
    stopped_by_eos: bool


def resolve_mode(mode: str, device: torch.device) -> str:
    if mode == "auto":
        return "compiled" if device.type == "cuda" else "static"
    return mode


def left_pad(prompts: Sequence[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stack (L_i, H) embeddings right-aligned. Returns (embeds, attention_mask, position_ids)."""
    longest = max(p.shape[0] for p in prompts)
    hidden = prompts[0].shape[-1]
    embeds = prompts[0].new_zeros((len(prompts), longest, hidden))
    mask = torch.zeros((len(prompts), longest), dtype=torch.long, device=prompts[0].device)
    for row, prompt in enumerate(prompts):
        embeds[row, longest - prompt.shape[0]:] = prompt
        mask[row, longest - prompt.shape[0]:] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    return embeds, mask, positions


# --------------------------------------------------------------------------- decoders


class EagerDecoder:
    """Dynamic cache, eager forward passes."""

    def __init__(self, model, rows: RowSettings, sampler: Sampler) -> None:
        self.model, self.rows, self.sampler = model, rows, sampler
        self.vocab_rows = model.config.vocab_rows

    def prefill(self, embeds: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        out = self.model(embeds, attention_mask=mask, position_ids=positions, use_cache=True,
                         logits_to_keep=1)
        self.cache, self.mask, self.position = output_cache(out), mask, positions[:, -1:]
        return mask_unembedded(out.logits[:, -1, :].float(), self.vocab_rows)

    def pick(self, logits: torch.Tensor, uniforms: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return pick_tokens(logits, self.rows, uniforms, self.sampler)

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        self.mask = torch.cat([self.mask, self.mask.new_ones((self.mask.shape[0], 1))], dim=1)
        self.position = self.position + 1
        out = self.model(self.model.embed_tokens(tokens[:, None]), attention_mask=self.mask,
                         position_ids=self.position, cache=self.cache, use_cache=True)
        self.cache = output_cache(out)
        return mask_unembedded(out.logits[:, -1, :].float(), self.vocab_rows)

    def step_and_pick(self, tokens: torch.Tensor, uniforms: torch.Tensor
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.pick(self.step(tokens), uniforms)


class StaticDecoder(EagerDecoder):
    """A static cache and fixed-shape masks; the decode step optionally compiled."""

    def __init__(self, model, rows: RowSettings, sampler: Sampler, max_tokens: int,
                 compiled: bool) -> None:
        super().__init__(model, rows, sampler)
        from transformers import StaticCache

        self.length = -(-max_tokens // CACHE_BUCKET) * CACHE_BUCKET
        # One cache per (batch, length), reused: a compiled step is specialised to its cache's
        # tensors, so a fresh cache per batch would recompile (or re-record CUDA graphs).
        caches = model.__dict__.setdefault("_static_caches", {})
        key = (len(rows.greedy), self.length)
        if key not in caches:
            caches[key] = StaticCache(config=model.lm.config, max_cache_len=self.length)
        self.cache = caches[key]
        self.cache.reset()
        self._forward = _compiled_step if compiled else _decode_step

    def prefill(self, embeds: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        batch, prompt_length = mask.shape
        device = embeds.device
        self.filled = torch.zeros((batch, self.length), dtype=torch.bool, device=device)
        self.filled[:, :prompt_length] = mask.bool()
        slots = torch.arange(self.length, device=device)
        causal = slots[None, :] <= torch.arange(prompt_length, device=device)[:, None]
        own = slots[None, :] == torch.arange(prompt_length, device=device)[:, None]
        # a padding position attends to itself only, so no softmax row is empty
        prefill_mask = (self.filled[:, None, :] & causal[None]) | own[None]
        out = self.model(embeds, attention_mask=prefill_mask[:, None], position_ids=positions,
                         cache=self.cache, use_cache=True, logits_to_keep=1)
        # contiguous (1, 1) strides whatever the prompt length: a slice keeps the prompt's
        # stride, and the compiled step guards on strides, so each length would recompile
        self.next_slot = prompt_length
        self.position = positions[:, -1:].clone(memory_format=torch.contiguous_format)
        return mask_unembedded(out.logits[:, -1, :].float(), self.vocab_rows)

    def _advance(self) -> None:
        self.filled[:, self.next_slot] = True
        self.next_slot += 1
        self.position += 1

    def step(self, tokens: torch.Tensor) -> torch.Tensor:
        self._advance()
        return self._forward(self.model, tokens, self.position, self.filled, self.cache)


def _decode_step(model, tokens, position, filled, cache):
    """One forward of the new tokens against the static cache: the masked last logits."""
    out = model(model.embed_tokens(tokens[:, None]), attention_mask=filled[:, None, None, :],
                position_ids=position, cache=cache, use_cache=True)
    return mask_unembedded(out.logits[:, -1, :].float(), model.config.vocab_rows)


def _compiled_step(*args):
    """``_decode_step`` through ``torch.compile`` (CUDA graphs on a GPU).

    Only the forward is compiled. The draw stays eager: it is a few small kernels, and Inductor
    (torch 2.11 on an H200) failed to generate code for its cumulative sum over the vocabulary
    at batch 8.

    If this torch build cannot compile it, the run goes on uncompiled (the same answers up to
    float rounding, slower) after one warning, rather than failing every batch.
    """
    global _COMPILED
    if _COMPILED is None:
        _COMPILED = torch.compile(_decode_step, mode="reduce-overhead", dynamic=False)
    try:
        return _COMPILED(*args)
    except Exception as exc:
        if not _is_compiler_failure(exc):
            raise
        warnings.warn(f"torch.compile failed on the MAGMA decode step ({type(exc).__name__}); "
                      "decoding uncompiled from now on (decode=static avoids this)", stacklevel=2)
        _COMPILED = _decode_step
        return _decode_step(*args)


def _is_compiler_failure(exc: BaseException) -> bool:
    """Raised by dynamo or Inductor themselves (not by the model's own code)."""
    return type(exc).__module__.startswith(("torch._dynamo", "torch._inductor"))


_COMPILED: Callable | None = None


# --------------------------------------------------------------------------- generation


@torch.no_grad()
def generate_batch(model, prompts: Sequence[torch.Tensor], settings: Sequence[GenerationSettings],
                   seeds: Sequence[int], eos_id: int, sampler: Sampler = "standard",
                   should_stop: Callable[[int, list[int]], bool] | None = None,
                   mode: str = "eager") -> list[GeneratedSequence]:
    """Sample a continuation for each prompt embedding (L_i, H) in one padded batch.

    Args:
        model: a ``MagmaForCausalLM``.
        prompts: per request, its embedded prompt (text and image prefixes concatenated).
        settings: per request, how to sample; seeds: per request, its random seed.
        eos_id: generation of a row ends at this token (not included in the output).
        should_stop: optional check ``(row, tokens so far) -> bool`` for stop strings.
        mode: one of ``DECODE_MODES`` (see the module docstring).
    """
    device = prompts[0].device
    generators = [torch.Generator().manual_seed(int(seed)) for seed in seeds]
    rows = RowSettings.of(settings, device=device)
    embeds, mask, positions = left_pad(prompts)
    mode = resolve_mode(mode, device)
    decoder: EagerDecoder
    if mode == "eager":
        decoder = EagerDecoder(model, rows, sampler)
    else:
        longest_answer = max(s.max_new_tokens for s in settings)
        decoder = StaticDecoder(model, rows, sampler, mask.shape[1] + longest_answer,
                                compiled=(mode == "compiled"))
    tokens: list[list[int]] = [[] for _ in prompts]
    logprobs: list[list[float]] = [[] for _ in prompts]
    done = [s.max_new_tokens <= 0 for s in settings]
    by_eos = [False] * len(prompts)
    if all(done):
        return [GeneratedSequence((), (), False) for _ in prompts]
    logits = decoder.prefill(embeds, mask, positions)
    chosen, chosen_logp = decoder.pick(logits, _uniforms(settings, generators, done, device))
    while True:
        chosen_ids, chosen_lp = chosen.tolist(), chosen_logp.tolist()
        next_ids = []
        for row, setting in enumerate(settings):
            if done[row]:
                next_ids.append(eos_id)  # finished rows keep the batch rectangular; ignored
                continue
            token = int(chosen_ids[row])
            next_ids.append(token)
            if token == eos_id:
                done[row], by_eos[row] = True, True
                continue
            tokens[row].append(token)
            logprobs[row].append(float(chosen_lp[row]))
            if len(tokens[row]) >= setting.max_new_tokens or (should_stop and should_stop(row, tokens[row])):
                done[row] = True
        if all(done):
            break
        ids = torch.tensor(next_ids, dtype=torch.long).to(device, non_blocking=True)
        chosen, chosen_logp = decoder.step_and_pick(ids, _uniforms(settings, generators, done, device))
    return [GeneratedSequence(tuple(t), tuple(lp), eos) for t, lp, eos in zip(tokens, logprobs, by_eos)]


def _uniforms(settings: Sequence[GenerationSettings], generators: Sequence[torch.Generator],
              done: Sequence[bool], device: torch.device) -> torch.Tensor:
    """One draw per row that samples this step; finished and greedy rows draw nothing."""
    values = [0.0 if done[row] or settings[row].greedy else draw_uniform(generators[row])
              for row in range(len(settings))]
    return torch.tensor(values, dtype=torch.float32).to(device, non_blocking=True)
