"""The magma adapter on magma-tiny: batch independence, image cache, scoring, stops."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from harness.models.magma import decoding, scoring
from harness.types import GenerationSettings, Request, TextPart


def _requests(make_image, greedy_every: int = 3) -> list[Request]:
    images = [make_image(0), make_image(1, (64, 200))]
    requests = []
    for i in range(7):
        parts = [images[i % 2], TextPart("Q: Do I help her?" + " Please." * (i % 3) + " A:")]
        if i % 2:  # few-shot style: a second image and more text, so lengths differ
            parts = [images[1 - i % 2], TextPart(" Q: Is it kind? A: Yes.")] + parts
        temperature = 0.0 if i % greedy_every == 0 else 0.7
        requests.append(Request(f"t/{i}/0", tuple(parts), GenerationSettings(temperature=temperature), seed=100 + i))
    return requests


def test_batched_generation_matches_one_by_one(tiny_model, make_image):
    requests = _requests(make_image)
    batched = tiny_model.generate(requests)
    single = [tiny_model.generate([r])[0] for r in requests]
    reordered = tiny_model.generate(list(reversed(requests)))[::-1]
    assert [r.text for r in batched] == [r.text for r in single] == [r.text for r in reordered]
    assert all(r.error is None and r.text for r in batched)
    assert len({r.text for r in batched}) > 3  # the check is not vacuous: answers differ


def test_seed_changes_a_sampled_answer(tiny_model, make_image):
    request = _requests(make_image)[1]
    texts = {tiny_model.generate([replace(request, seed=s)])[0].text for s in range(4)}
    assert len(texts) > 1


def test_each_image_prefix_is_computed_once(tiny_model, make_image, monkeypatch):
    calls = []
    original = tiny_model.model.embed_images
    monkeypatch.setattr(tiny_model.model, "embed_images", lambda pixels: calls.append(1) or original(pixels))
    monkeypatch.setattr(tiny_model, "_image_prefixes", {})
    before = tiny_model.image_prefix_computations
    fresh = [make_image(50), make_image(51)]
    requests = [Request(f"t/{i}/{rep}", (fresh[i % 2], TextPart(" A:"), fresh[0]), seed=rep)
                for i in range(4) for rep in range(3)]
    tiny_model.generate(requests)
    tiny_model.loglikelihood([replace(r, continuations=(" yes", " no")) for r in requests[:2]])
    assert len(calls) == 2 and tiny_model.image_prefix_computations - before == 2


def test_loglikelihood_agrees_with_generation_logits(tiny_model, make_image):
    request = _requests(make_image)[1]
    prompt = tiny_model.embed_prompt(request)
    greedy = GenerationSettings(max_new_tokens=6, temperature=0.0)
    [out] = decoding.generate_batch(tiny_model.model, [prompt], [greedy], [0], tiny_model.eos_id)
    [(logp, is_greedy)] = scoring.score_batch(tiny_model.model, [prompt], [list(out.token_ids)])
    assert is_greedy and len(out.token_ids) == 6
    assert logp == pytest.approx(sum(out.step_logprobs), abs=1e-4)
    # a non-greedy continuation scores lower than the greedy one of the same length
    other = [t for t in range(tiny_model.config.vocab_rows) if t != out.token_ids[0]][:1] + list(out.token_ids[1:])
    [(other_logp, other_greedy)] = scoring.score_batch(tiny_model.model, [prompt], [other])
    assert not other_greedy and other_logp < logp


def test_loglikelihood_responses_do_not_depend_on_batch(tiny_model, make_image):
    requests = [replace(r, continuations=(" Yes.", " No, never.")) for r in _requests(make_image)[:4]]
    batched = tiny_model.loglikelihood(requests)
    single = [tiny_model.loglikelihood([r])[0] for r in requests]
    for b, s in zip(batched, single):
        assert b.loglikelihoods == pytest.approx(s.loglikelihoods, abs=1e-4)
        assert len(b.loglikelihoods) == 2 and all(v < 0 for v in b.loglikelihoods)


def test_eos_ends_the_answer_and_unembedded_rows_are_masked(tiny_model, make_image):
    request = _requests(make_image)[2]
    bias = tiny_model.model.lm.lm_head.bias
    saved = bias.detach().clone()
    try:
        with torch.no_grad():
            bias[tiny_model.config.vocab_rows + 5] = 1e4  # a row no token embeds: must never come out
        assert tiny_model.generate([request])[0].text  # no crash, still text
        with torch.no_grad():
            bias[tiny_model.eos_id] = 1e5
        assert tiny_model.generate([request])[0].text == ""
    finally:
        with torch.no_grad():
            bias.copy_(saved)


def test_stop_strings_and_overlong_prompts(tiny_model, make_image):
    request = _requests(make_image)[0]
    full = tiny_model.generate([request])[0].text
    stop = full[3:5]
    cut = tiny_model.generate([replace(request, generation=replace(request.generation, until=(stop,)))])[0].text
    assert cut == full[: full.index(stop)]
    long = Request("t/long/0", (TextPart("word " * 600),))
    [response] = tiny_model.generate([long])
    assert response.text is None and "positions" in response.error


def test_original_sampler_and_top_p_override(tiny_files, make_image):
    from harness.registry import load_model

    original = load_model("magma-tiny", {"sampler": "original", "top_p": 0.9})
    requests = _requests(make_image, greedy_every=100)
    assert [r.text for r in original.generate(requests)] == [original.generate([r])[0].text for r in requests]
    standard = load_model("magma-tiny", {"sampler": "standard", "top_p": None})
    assert original.fingerprint() != standard.fingerprint()
    # The cards use MAGMA's sampling loop (today's filter) unless told otherwise.
    assert original.fingerprint() == load_model("magma-tiny").fingerprint()
    assert original.describe()["sampler"] == "original, top_p 0.9"
    assert standard.describe()["sampler"] == "standard"
    before_fix = load_model("magma-tiny", {"sampler": "original-2021"})
    assert before_fix.fingerprint() != original.fingerprint()
    assert [r.text for r in before_fix.generate(requests)] != [r.text for r in original.generate(requests)]


def test_unknown_decode_mode_is_a_user_error(tiny_files):
    from harness.errors import BenchError
    from harness.registry import load_model

    with pytest.raises(BenchError, match="compiled"):
        load_model("magma-tiny", {"decode": "fast"})
