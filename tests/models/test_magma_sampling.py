"""MAGMA's three samplers on hand-made distributions, and the inverse-CDF draw."""

from __future__ import annotations

import math

import pytest
import torch

from harness.models.magma import sampling
from harness.models.magma.decoding import left_pad
from harness.types import GenerationSettings


def _logits(probs: list[float]) -> torch.Tensor:
    return torch.tensor([math.log(p) for p in probs])


def _kept(probs: list[float], sampler: str, top_p: float = 0.9, **kwargs) -> list[int]:
    return sorted(sampling.kept_tokens(_logits(probs), top_p, sampler, **kwargs).tolist())  # type: ignore[arg-type]


# sorted: 0.08 (id 13), 0.07 (id 8), then 17 x 0.05
RUNNERS_UP = [0.05] * 8 + [0.07] + [0.05] * 4 + [0.08] + [0.05] * 5


def test_original_filter_drops_runners_up_not_the_tail():
    # The mass before the 0.07 token (0.08) is under 1 - 0.9, so today's filter drops it; the
    # next ones have 0.15 and more before them and stay, as does the top token.
    assert _kept(RUNNERS_UP, "original") == [i for i in range(19) if i != 8]


def test_original_2021_filter_keeps_the_head_only():
    # Before commit 26c69a4 the comparison was the other way round: a token goes once the mass
    # before it exceeds 0.1. Here 0.08 + 0.07 = 0.15 > 0.1, so the third token goes.
    assert _kept(RUNNERS_UP, "original-2021") == [8, 13]
    # one token holding over 10% of the mass is all that is left: greedy in effect
    assert _kept([0.85, 0.06, 0.05, 0.04], "original-2021") == [0]


def test_original_filter_keeps_everything_when_the_top_token_dominates():
    assert _kept([0.85, 0.06, 0.05, 0.04], "original") == [0, 1, 2, 3]


def test_top_p_zero_turns_the_original_filters_off():
    assert _kept(RUNNERS_UP, "original", top_p=0.0) == list(range(19))
    assert _kept(RUNNERS_UP, "original-2021", top_p=0.0) == list(range(19))


def test_nucleus_keeps_the_smallest_set_reaching_p():
    assert _kept([0.15, 0.5, 0.05, 0.3], "standard", top_p=0.75) == [1, 3]
    assert _kept([0.15, 0.5, 0.05, 0.3], "standard", top_p=1.0) == [0, 1, 2, 3]


def test_top_k_keeps_the_k_most_likely():
    for sampler in sampling.SAMPLERS:  # top_p off: 1 for nucleus, 0 for MAGMA's filters
        top_p = 1.0 if sampler == "standard" else 0.0
        assert _kept([0.1, 0.4, 0.2, 0.3], sampler, top_p=top_p, top_k=2) == [1, 3]
    # MAGMA's 2021 filter at top_p 1 is not off: nothing may come before a kept token
    assert _kept([0.1, 0.4, 0.2, 0.3], "original-2021", top_p=1.0) == [1]


def test_samplers_draw_only_what_their_filters_keep():
    settings = GenerationSettings(temperature=1.0, top_p=0.9)

    def draws(sampler):
        return {sampling.choose_token(_logits(RUNNERS_UP), settings, torch.Generator().manual_seed(s), sampler)
                for s in range(300)}

    original, before_fix, standard = draws("original"), draws("original-2021"), draws("standard")
    assert 8 not in original and 13 in original and len(original) == 18
    assert before_fix == {8, 13}
    assert 8 in standard and len(standard) > 10


def test_inverse_cdf_draws_follow_the_distribution():
    probs = torch.tensor([[0.5, 0.0, 0.3, 0.2]])
    counts = torch.zeros(4)
    for i in range(1000):  # u at the midpoints of 1000 equal steps of [0, 1)
        counts[sampling.inverse_cdf(probs, torch.tensor([(i + 0.5) / 1000]))] += 1
    assert counts.tolist() == [500, 0, 300, 200]
    # a draw that rounds past the end falls back to the last token with positive probability
    assert sampling.inverse_cdf(torch.tensor([[0.7, 0.3, 0.0]]), torch.tensor([1.0])).item() == 1


def test_a_rounding_level_change_that_swaps_two_tokens_does_not_move_the_draws():
    # Tokens 3 and 7 nearly tie; a change of 1e-6 (another batch shape, another kernel) swaps
    # their sorted order. Drawing in sorted order would then give another token for every u
    # in the two tokens' span; drawing in id order, for none of 200 evenly spread u.
    logits = torch.randn(12, generator=torch.Generator().manual_seed(1))
    logits[3], logits[7] = 1.0, 1.0 + 1e-6
    moved = logits.clone()
    moved[3] += 2e-6
    settings = [GenerationSettings(temperature=1.0)]
    uniforms = torch.tensor([(i + 0.5) / 200 for i in range(200)])
    rows = sampling.RowSettings.of(settings * 200)
    for sampler in ("standard", "original"):  # (at top_p 1 original-2021 keeps only the top token)
        before, _ = sampling.pick_tokens(logits.expand(200, -1), rows, uniforms, sampler)
        after, _ = sampling.pick_tokens(moved.expand(200, -1), rows, uniforms, sampler)
        assert torch.equal(before, after) and {3, 7} <= set(before.tolist())


def test_temperature_applies_after_the_original_filter_and_before_nucleus():
    logits = _logits([0.6, 0.3, 0.1])
    rows = sampling.RowSettings.of([GenerationSettings(temperature=0.5, top_p=0.9)])
    probs, order = sampling.sorted_distribution(logits[None], rows, "original")
    expected = torch.softmax(logits / 0.5, -1)
    assert torch.allclose(probs[0], expected[order[0]], atol=1e-6)
    # standard: at T 0.5 the top two hold over 0.9 of the mass, so nucleus 0.9 drops the third
    probs, _ = sampling.sorted_distribution(logits[None], rows, "standard")
    assert probs[0, 2] == 0 and probs[0, :2].sum() == pytest.approx(1.0)


def test_rows_of_a_batch_are_independent_of_each_other():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(3, 40, generator=generator)
    settings = [GenerationSettings(temperature=0.7, top_p=0.9), GenerationSettings(temperature=0.0),
                GenerationSettings(temperature=1.3, top_k=5)]
    uniforms = torch.tensor([0.3, 0.9, 0.71])
    for sampler in sampling.SAMPLERS:
        tokens, logp = sampling.pick_tokens(logits, sampling.RowSettings.of(settings), uniforms, sampler)
        for row in range(3):
            alone, alone_logp = sampling.pick_tokens(logits[row:row + 1], sampling.RowSettings.of(settings[row:row + 1]),
                                                     uniforms[row:row + 1], sampler)
            assert tokens[row] == alone[0] and logp[row] == alone_logp[0]
        assert tokens[1] == logits[1].argmax()  # greedy row
        assert logp[0] == pytest.approx(float(logits[0].log_softmax(-1)[tokens[0]]))


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
    for sampler in sampling.SAMPLERS:
        assert all(sampling.choose_token(masked, GenerationSettings(top_p=0.9), torch.Generator().manual_seed(s),
                                         sampler) < 8 for s in range(50))


def test_left_pad_positions_start_at_each_rows_first_token():
    embeds, mask, positions = left_pad([torch.ones(3, 2), torch.ones(1, 2)])
    assert mask.tolist() == [[1, 1, 1], [0, 0, 1]]
    assert positions.tolist() == [[0, 1, 2], [0, 0, 0]]
    assert embeds[1, :2].abs().sum() == 0
