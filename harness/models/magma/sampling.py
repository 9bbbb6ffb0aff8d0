"""Batched sampling and scoring for MAGMA, independent of how requests are batched.

MAGMA's own loop (magma/sampling.py) feeds equal-length batches without an attention mask and
shares one random stream across the batch. Here:

- prompts of different lengths are left-padded, with an attention mask and position ids that
  start at 0 on each row's first real token, and a KV cache;
- each request draws from its own ``torch.Generator`` seeded by the request, one draw per step,
  so its text does not depend on the other rows of its batch;
- ``sampler="standard"`` is the usual temperature -> top-k -> nucleus top-p;
  ``sampler="original"`` reproduces MAGMA's: top-k, then its top-p filter (which drops the
  tokens whose *shifted* cumulative probability is below ``1 - p``, always keeping the first),
  both on raw logits, then softmax(logits / T);
- deviation from the original: logits of the ``lm_head`` rows that no token embeds
  (50258..50399 in MAGMA) are masked to -inf. The original could sample them and then crash
  looking them up in the 50258-row embedding.

This module knows token ids and embeddings only: no tokenizer, no requests.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

import torch

from harness.models.magma.modeling import output_cache
from harness.types import GenerationSettings

Sampler = Literal["standard", "original"]


@dataclass(frozen=True)
class GeneratedSequence:
    """What one row of a batch generated."""

    token_ids: tuple[int, ...]  # new tokens, the EOS that ended them excluded
    step_logprobs: tuple[float, ...]  # log p(token) under the model (masked, no temperature)
    stopped_by_eos: bool


def mask_unembedded(logits: torch.Tensor, vocab_rows: int) -> torch.Tensor:
    """Set the logits of ids >= ``vocab_rows`` (no input embedding) to -inf."""
    if logits.shape[-1] > vocab_rows:
        logits = logits.clone()
        logits[..., vocab_rows:] = float("-inf")
    return logits


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    if k <= 0 or k >= logits.shape[-1]:
        return logits
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))


def nucleus_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Keep the smallest set of most likely tokens whose probability reaches ``p``."""
    if p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
    cumulative = sorted_logits.softmax(-1).cumsum(-1)
    remove = cumulative - sorted_logits.softmax(-1) >= p  # mass before this token already >= p
    remove[..., 0] = False
    return logits.masked_fill(remove.scatter(-1, order, remove), float("-inf"))


def original_top_p_filter(logits: torch.Tensor, threshold: float) -> torch.Tensor:
    """MAGMA's ``top_p_filter``, faithfully: not nucleus sampling.

    Sorted descending, a token is removed when the cumulative probability *before* it is below
    ``1 - threshold``, except the most likely token. With threshold 0.9 this removes the second,
    third... most likely tokens while the mass above them is under 0.1.
    """
    sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
    cumulative = sorted_logits.softmax(-1).cumsum(-1)
    remove = cumulative < (1 - threshold)
    remove[..., 1:] = remove[..., :-1].clone()
    remove[..., 0] = False
    filtered = sorted_logits.masked_fill(remove, float("-inf"))
    return filtered.scatter(-1, order, filtered)


def choose_token(logits: torch.Tensor, settings: GenerationSettings, generator: torch.Generator,
                 sampler: Sampler = "standard") -> int:
    """One token id from a 1-D float32 CPU logits row (unembedded rows already masked)."""
    if settings.greedy:
        return int(torch.argmax(logits))
    if sampler == "original":
        logits = top_k_filter(logits, settings.top_k)
        if settings.top_p > 0:
            logits = original_top_p_filter(logits, settings.top_p)
        logits = logits / settings.temperature
    else:
        logits = nucleus_filter(top_k_filter(logits / settings.temperature, settings.top_k),
                                settings.top_p)
    probs = logits.softmax(-1)
    return int(torch.multinomial(probs, 1, generator=generator))


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


@torch.no_grad()
def generate_batch(model, prompts: Sequence[torch.Tensor], settings: Sequence[GenerationSettings],
                   seeds: Sequence[int], eos_id: int, sampler: Sampler = "standard",
                   should_stop: Callable[[int, list[int]], bool] | None = None) -> list[GeneratedSequence]:
    """Sample a continuation for each prompt embedding (L_i, H) in one padded batch.

    Args:
        model: a ``MagmaForCausalLM``.
        prompts: per request, its embedded prompt (text and image prefixes concatenated).
        settings: per request, how to sample; seeds: per request, its random seed.
        eos_id: generation of a row ends at this token (not included in the output).
        should_stop: optional check ``(row, tokens so far) -> bool`` for stop strings.
    """
    vocab_rows = model.config.vocab_rows
    generators = [torch.Generator().manual_seed(int(seed)) for seed in seeds]
    embeds, mask, positions = left_pad(prompts)
    out = model(embeds, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)
    cache = output_cache(out)
    tokens: list[list[int]] = [[] for _ in prompts]
    logprobs: list[list[float]] = [[] for _ in prompts]
    done = [s.max_new_tokens <= 0 for s in settings]
    by_eos = [False] * len(prompts)
    last_position = positions[:, -1:]
    while not all(done):
        step_logits = mask_unembedded(out.logits[:, -1, :].float().cpu(), vocab_rows)
        step_logp = step_logits.log_softmax(-1)
        next_ids = []
        for row, setting in enumerate(settings):
            if done[row]:
                next_ids.append(eos_id)  # finished rows keep the batch rectangular; ignored
                continue
            token = choose_token(step_logits[row], setting, generators[row], sampler)
            next_ids.append(token)
            if token == eos_id:
                done[row], by_eos[row] = True, True
                continue
            tokens[row].append(token)
            logprobs[row].append(float(step_logp[row, token]))
            if len(tokens[row]) >= setting.max_new_tokens or (should_stop and should_stop(row, tokens[row])):
                done[row] = True
        if all(done):
            break
        ids = torch.tensor(next_ids, dtype=torch.long).unsqueeze(1)
        mask = torch.cat([mask, mask.new_ones((len(prompts), 1))], dim=1)
        last_position = last_position + 1
        out = model(model.embed_tokens(ids), attention_mask=mask, position_ids=last_position,
                    cache=cache, use_cache=True)
        cache = output_cache(out)
    return [GeneratedSequence(tuple(t), tuple(lp), eos) for t, lp, eos in zip(tokens, logprobs, by_eos)]


@torch.no_grad()
def score_batch(model, prompts: Sequence[torch.Tensor], continuations: Sequence[Sequence[int]]
                ) -> list[tuple[float, bool]]:
    """log p(continuation | prompt) and whether it is the greedy continuation, per pair."""
    vocab_rows = model.config.vocab_rows
    device = prompts[0].device
    full = []
    for prompt, cont in zip(prompts, continuations):
        cont_ids = torch.tensor(list(cont), dtype=torch.long, device=device)
        full.append(torch.cat([prompt, model.embed_tokens(cont_ids).to(prompt.device)]) if len(cont) else prompt)
    embeds, mask, positions = left_pad(full)
    logits = model(embeds, attention_mask=mask, position_ids=positions).logits.float()
    results = []
    for row, cont in enumerate(continuations):
        n = len(cont)
        if n == 0:
            results.append((0.0, True))
            continue
        predicting = mask_unembedded(logits[row, -n - 1:-1].cpu(), vocab_rows)
        target = torch.tensor(list(cont), dtype=torch.long)
        logp = predicting.log_softmax(-1).gather(-1, target[:, None]).sum()
        greedy = bool((predicting.argmax(-1) == target).all())
        results.append((float(logp), greedy))
    return results
