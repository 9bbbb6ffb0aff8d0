"""MAGMA's next-token distributions, and one draw per row, computed on the model's device.

Three samplers, named by what they are:

- ``standard``: logits / T, then top-k, then nucleus top-p (the smallest set of most likely
  tokens whose probability reaches p), then softmax.
- ``original``: MAGMA's ``magma/sampling.py`` as it stands since Aleph-Alpha/magma commit
  26c69a4 ("fix top p sampling", 2022-07-21): top-k, then its top-p filter on the raw
  logits, then softmax(logits / T). Its filter walks the tokens from most to least likely and
  drops each one (except the first) while the probability mass *before* it is still under
  1 - p: with p = 0.9 it drops the few runners-up that make up the first 10% of the mass and
  keeps the whole tail, so it is close to plain sampling at temperature T.
- ``original-2021``: the same filter before that commit, with the comparison the other way
  round: a token (except the first) is dropped once the mass before it *exceeds* 1 - p. With
  p = 0.9 that keeps the smallest set whose mass passes 0.1, often one to a few tokens, so it
  is close to greedy. The MAGMA paper gives neither a date nor a commit, so which of the two
  produced its figures is unknown (docs/magma.md).

Every filter is computed on the row's logits sorted once in descending order (stable, so ties
keep the lower id first), and a token is drawn by inverse-CDF sampling on the filtered
distribution: with ``u`` uniform in [0, 1), the first token *in id order* whose cumulative
probability exceeds ``u`` times the total (id order, so that a rounding-level change of the
logits, which can swap two nearly equal tokens in sorted order, changes the draw only when
``u`` lies within that rounding of a boundary). The
caller draws each row's ``u`` from the request's own CPU ``torch.Generator``; only those B
numbers cross to the device, never the logits, and a row's draw does not depend on its batch.
Temperature 0 is greedy (the first token in sorted order, i.e. the argmax) and draws nothing.

Deviation from the original, kept here: the logits of ``lm_head`` rows that no token embeds
(50258..50399 in MAGMA) are -inf (``mask_unembedded``); the original could sample them and
then crash looking them up in the 50258-row embedding.

This module knows logits and token ids only: no model, tokenizer or requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import torch

from harness.types import GenerationSettings

Sampler = Literal["standard", "original", "original-2021"]
SAMPLERS: tuple[str, ...] = get_args(Sampler)


def mask_unembedded(logits: torch.Tensor, vocab_rows: int) -> torch.Tensor:
    """Set the logits of ids >= ``vocab_rows`` (no input embedding) to -inf."""
    if logits.shape[-1] > vocab_rows:
        logits = logits.clone()
        logits[..., vocab_rows:] = float("-inf")
    return logits


@dataclass(frozen=True)
class RowSettings:
    """Each row's sampling settings as (B,) tensors on the logits' device."""

    temperature: torch.Tensor  # float32; 1.0 on greedy rows (unused there)
    top_k: torch.Tensor  # int64; 0 = no top-k
    top_p: torch.Tensor  # float32
    greedy: torch.Tensor  # bool

    @classmethod
    def of(cls, settings: Sequence[GenerationSettings], top_p: float | None = None,
           device: torch.device | str = "cpu") -> RowSettings:
        """``top_p``, when given, replaces every request's own."""
        def tensor(values, dtype):
            return torch.tensor(values, dtype=dtype, device=device)

        return cls(
            temperature=tensor([s.temperature if not s.greedy else 1.0 for s in settings], torch.float32),
            top_k=tensor([max(0, int(s.top_k)) for s in settings], torch.int64),
            top_p=tensor([s.top_p if top_p is None else top_p for s in settings], torch.float32),
            greedy=tensor([bool(s.greedy) for s in settings], torch.bool),
        )

    def to(self, device: torch.device) -> RowSettings:
        if self.temperature.device == device:
            return self
        return RowSettings(*(t.to(device) for t in (self.temperature, self.top_k, self.top_p, self.greedy)))


def _shifted_cumsum(probs: torch.Tensor) -> torch.Tensor:
    """Per sorted position, the probability mass of the tokens before it."""
    cumulative = probs.cumsum(-1)
    return torch.cat([torch.zeros_like(cumulative[:, :1]), cumulative[:, :-1]], dim=-1)


def sorted_distribution(logits: torch.Tensor, rows: RowSettings, sampler: Sampler
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """The filtered next-token distribution of each row, in descending-logit order.

    Args:
        logits: (B, V) float32, unembedded rows already masked.
        rows: each row's settings; sampler: which of the three samplers.

    Returns:
        (probs, order): (B, V) probabilities in sorted order, and the token id at each place.
    """
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True, stable=True)
    rank = torch.arange(logits.shape[-1], device=logits.device)[None, :]
    k = rows.top_k[:, None]
    keep = (k <= 0) | (rank < k)
    neg_inf = torch.tensor(float("-inf"), device=logits.device, dtype=logits.dtype)
    top_p = rows.top_p[:, None]
    first = rank == 0
    if sampler == "standard":
        scaled = torch.where(keep, sorted_logits / rows.temperature[:, None], neg_inf)
        before = _shifted_cumsum(scaled.softmax(-1))
        keep = keep & ((before < top_p) | (top_p >= 1.0) | first)
        final = torch.where(keep, scaled, neg_inf)
    elif sampler in ("original", "original-2021"):
        raw = torch.where(keep, sorted_logits, neg_inf)
        before = _shifted_cumsum(raw.softmax(-1))
        if sampler == "original":
            remove = before < (1.0 - top_p)
        else:
            remove = before > (1.0 - top_p)
        remove = remove & ~first & (top_p > 0)
        final = torch.where(keep & ~remove, raw, neg_inf) / rows.temperature[:, None]
    else:
        raise ValueError(f"unknown sampler {sampler!r}")
    return final.softmax(-1), order


def inverse_cdf(probs: torch.Tensor, uniforms: torch.Tensor) -> torch.Tensor:
    """Per row, the first place whose cumulative probability exceeds ``u`` x the row's total.

    A place with probability 0 is never returned (rounding that lands past the end falls
    back to the last place with positive probability).
    """
    cdf = probs.cumsum(-1)
    target = (uniforms.to(cdf.dtype) * cdf[:, -1])[:, None]
    place = torch.searchsorted(cdf, target, right=True).clamp(max=probs.shape[-1] - 1)
    positive = probs > 0
    last_positive = probs.shape[-1] - 1 - positive.flip(-1).to(torch.int8).argmax(-1, keepdim=True)
    ok = positive.gather(-1, place)
    return torch.where(ok, place, last_positive).squeeze(-1)


def pick_tokens(logits: torch.Tensor, rows: RowSettings, uniforms: torch.Tensor, sampler: Sampler
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """One token per row, and its log-probability under the unfiltered model (no temperature).

    Args:
        logits: (B, V) float32 on any device, unembedded rows already masked.
        uniforms: (B,) draws in [0, 1) on the same device (ignored on greedy rows).

    Returns:
        (token ids (B,) int64, log p(token) (B,) float32), both on the logits' device.
    """
    rows, uniforms = rows.to(logits.device), uniforms.to(logits.device)  # a model split over devices
    sorted_probs, order = sorted_distribution(logits, rows, sampler)
    # Draw in token-id order, not sorted order: two nearly equal logits may swap places when
    # the logits move by a rounding error (another batch shape, another kernel), which in
    # sorted order would move every token between them to another interval of u.
    probs = torch.zeros_like(sorted_probs).scatter_(-1, order, sorted_probs)
    tokens = torch.where(rows.greedy, order[:, 0], inverse_cdf(probs, uniforms))
    logprobs = logits.log_softmax(-1).gather(-1, tokens[:, None]).squeeze(-1)
    return tokens, logprobs


def draw_uniform(generator: torch.Generator) -> float:
    """One uniform number in [0, 1) from a request's own CPU generator."""
    return float(torch.rand((), generator=generator, dtype=torch.float64))


def choose_token(logits: torch.Tensor, settings: GenerationSettings, generator: torch.Generator,
                 sampler: Sampler = "standard") -> int:
    """One token id from a 1-D logits row (unembedded rows already masked), on its device."""
    rows = RowSettings.of([settings], device=logits.device)
    u = torch.tensor([0.0 if settings.greedy else draw_uniform(generator)], device=logits.device)
    token, _ = pick_tokens(logits.float()[None, :], rows, u, sampler)
    return int(token[0])


def kept_tokens(logits: torch.Tensor, top_p: float, sampler: Sampler, temperature: float = 1.0,
                top_k: int = 0) -> torch.Tensor:
    """Which token ids a sampler can draw from one 1-D logits row (for docs and tests)."""
    rows = RowSettings.of([GenerationSettings(temperature=temperature, top_k=top_k, top_p=top_p)],
                          device=logits.device)
    probs, order = sorted_distribution(logits.float()[None, :], rows, sampler)
    return order[0][probs[0] > 0]
