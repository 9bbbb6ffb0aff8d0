"""MAGMA's sampling filters, the original top-p filter included, on hand-made distributions."""

from __future__ import annotations

import math

import torch

from harness.models.magma import sampling
from harness.types import GenerationSettings


def _logits(probs: list[float]) -> torch.Tensor:
    return torch.tensor([math.log(p) for p in probs])


def test_original_top_p_filter_drops_runners_up_not_the_tail():
    # sorted: 0.08, 0.07, then 17 x 0.05. The mass before the 0.07 token (0.08) is below
    # 1 - 0.9, so MAGMA's filter drops it; the top token and the long tail stay.
    probs = [0.05] * 8 + [0.07] + [0.05] * 4 + [0.08] + [0.05] * 5
    filtered = sampling.original_top_p_filter(_logits(probs).unsqueeze(0), 0.9)[0]
    dropped = torch.isinf(filtered).nonzero().flatten().tolist()
    assert dropped == [8]
    assert torch.allclose(filtered[~torch.isinf(filtered)], _logits(probs)[[i for i in range(19) if i != 8]])


def test_original_top_p_filter_keeps_everything_when_the_top_token_dominates():
    logits = _logits([0.85, 0.06, 0.05, 0.04]).unsqueeze(0)
    assert torch.equal(sampling.original_top_p_filter(logits, 0.9), logits)


def test_nucleus_filter_keeps_the_smallest_set_reaching_p():
    logits = _logits([0.15, 0.5, 0.05, 0.3])
    kept = ~torch.isinf(sampling.nucleus_filter(logits, 0.75))
    assert kept.tolist() == [False, True, False, True]
    assert not torch.isinf(sampling.nucleus_filter(logits, 1.0)).any()


def test_top_k_filter():
    kept = ~torch.isinf(sampling.top_k_filter(_logits([0.1, 0.4, 0.2, 0.3]), 2))
    assert kept.tolist() == [False, True, False, True]


def test_samplers_draw_only_what_their_filters_keep():
    probs = [0.05] * 8 + [0.07] + [0.05] * 4 + [0.08] + [0.05] * 5
    settings = GenerationSettings(temperature=1.0, top_p=0.9)
    original = {sampling.choose_token(_logits(probs), settings, torch.Generator().manual_seed(s), "original")
                for s in range(300)}
    standard = {sampling.choose_token(_logits(probs), settings, torch.Generator().manual_seed(s), "standard")
                for s in range(300)}
    assert 8 not in original and 13 in original  # runner-up dropped, top kept
    assert 8 in standard  # nucleus 0.9 keeps the runner-up


def test_choose_token_is_reproducible_per_generator_and_greedy_at_zero_temperature():
    logits = torch.randn(50, generator=torch.Generator().manual_seed(0))
    sampled = GenerationSettings(temperature=0.7)
    draws = [sampling.choose_token(logits, sampled, torch.Generator().manual_seed(11)) for _ in range(3)]
    assert len(set(draws)) == 1
    many = {sampling.choose_token(logits, sampled, torch.Generator().manual_seed(s)) for s in range(40)}
    assert len(many) > 3
    greedy = GenerationSettings(temperature=0.0)
    assert sampling.choose_token(logits, greedy, torch.Generator()) == int(logits.argmax())


def test_unembedded_rows_are_never_chosen():
    logits = torch.zeros(10)
    logits[8] = 50.0  # an lm_head row with no input embedding (MAGMA's 50258..50399)
    masked = sampling.mask_unembedded(logits, vocab_rows=8)
    assert sampling.choose_token(masked, GenerationSettings(temperature=0.0), torch.Generator()) != 8
    assert all(sampling.choose_token(masked, GenerationSettings(), torch.Generator().manual_seed(s)) < 8
               for s in range(50))


def test_left_pad_positions_start_at_each_rows_first_token():
    embeds, mask, positions = sampling.left_pad([torch.ones(3, 2), torch.ones(1, 2)])
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert positions.tolist() == [[0, 1, 2], [0, 0, 0]]
    assert embeds[1, :2].abs().sum() == 0
