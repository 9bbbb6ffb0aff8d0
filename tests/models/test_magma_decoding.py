"""The fast decoding paths give the eager path's answers (magma-tiny, float32, CPU)."""

from __future__ import annotations

import pytest
import torch

from harness.models.magma import decoding, scoring
from harness.types import GenerationSettings


def _prompts(model, n: int) -> list[torch.Tensor]:
    """n prompts of different lengths: random 'image' rows then random token embeddings."""
    generator = torch.Generator().manual_seed(n)
    hidden = model.config.hidden_size
    prompts = []
    for i in range(n):
        ids = torch.randint(0, model.config.vocab_rows - 2, (3 + 5 * i,), generator=generator)
        image = 0.1 * torch.randn(4, hidden, generator=generator)
        prompts.append(torch.cat([image, model.embed_tokens(ids)]))
    return prompts


def _settings(n: int) -> list[GenerationSettings]:
    kinds = [GenerationSettings(max_new_tokens=12), GenerationSettings(max_new_tokens=7, temperature=0.0),
             GenerationSettings(max_new_tokens=12, temperature=1.0, top_p=0.8),
             GenerationSettings(max_new_tokens=10, temperature=0.9, top_k=20)]
    return [kinds[i % len(kinds)] for i in range(n)]


@pytest.mark.parametrize(("sampler", "batch"), [("original", 1), ("original", 8), ("original-2021", 8),
                                                ("standard", 1), ("standard", 8)])
def test_static_cache_gives_the_eager_tokens_and_logprobs(tiny_model, sampler, batch):
    model = tiny_model.model
    prompts, settings = _prompts(model, batch), _settings(batch)
    seeds = [7 + i for i in range(batch)]
    eager = decoding.generate_batch(model, prompts, settings, seeds, tiny_model.eos_id, sampler, mode="eager")
    fast = decoding.generate_batch(model, prompts, settings, seeds, tiny_model.eos_id, sampler, mode="static")
    assert [e.token_ids for e in eager] == [f.token_ids for f in fast]
    assert [e.stopped_by_eos for e in eager] == [f.stopped_by_eos for f in fast]
    assert sum(len(e.token_ids) for e in eager) >= 5 * batch  # the check is not vacuous
    for e, f in zip(eager, fast):
        assert f.step_logprobs == pytest.approx(e.step_logprobs, abs=1e-5)


def test_an_answer_does_not_depend_on_its_batch_in_any_mode(tiny_model):
    model = tiny_model.model
    prompts, settings, seeds = _prompts(model, 8), _settings(8), list(range(8))
    for mode in ("eager", "static"):
        batched = decoding.generate_batch(model, prompts, settings, seeds, tiny_model.eos_id, "original", mode=mode)
        for row in (2, 7):
            [alone] = decoding.generate_batch(model, prompts[row:row + 1], settings[row:row + 1], seeds[row:row + 1],
                                              tiny_model.eos_id, "original", mode=mode)
            assert alone.token_ids == batched[row].token_ids


@pytest.mark.parametrize("batch", [1, 8])
def test_scoring_choices_from_the_prompt_cache_matches_full_runs(tiny_model, batch):
    model = tiny_model.model
    prompts = _prompts(model, batch)
    generator = torch.Generator().manual_seed(3)
    choices = [[torch.randint(0, model.config.vocab_rows - 2, (n,), generator=generator).tolist()
                for n in (1, 3, 2 + row % 3)] for row in range(batch)]
    choices[0].append([])  # an empty continuation scores 0 and counts as greedy
    cached = scoring.score_choices(model, prompts, choices)
    for row in range(batch):
        full = scoring.score_batch(model, [prompts[row]] * len(choices[row]), choices[row])
        assert [g for _, g in cached[row]] == [g for _, g in full]
        assert [v for v, _ in cached[row]] == pytest.approx([v for v, _ in full], abs=1e-5)
    assert cached[0][-1] == (0.0, True)


def test_a_greedy_choice_is_recognised_from_the_cache(tiny_model):
    model = tiny_model.model
    [prompt] = _prompts(model, 1)
    greedy = GenerationSettings(max_new_tokens=4, temperature=0.0)
    [out] = decoding.generate_batch(model, [prompt], [greedy], [0], tiny_model.eos_id, mode="static")
    other = [(out.token_ids[0] + 1) % (model.config.vocab_rows - 2), *out.token_ids[1:]]
    [[(logp, is_greedy), (other_logp, other_greedy)]] = scoring.score_choices(
        model, [prompt], [[list(out.token_ids), other]])
    assert is_greedy and not other_greedy
    assert logp == pytest.approx(sum(out.step_logprobs), abs=1e-5) and other_logp < logp


def test_adapter_modes_agree(tiny_model, make_image, monkeypatch):
    from harness.types import Request, TextPart

    requests = [Request(f"m/{i}/0", (make_image(i), TextPart("Q: Is it kind?" + " Why?" * i + " A:")),
                        seed=i, continuations=(" Yes", " No, it is not")) for i in range(3)]
    assert tiny_model.decode == "auto"  # static on the CPU
    fast_texts, fast_scores = tiny_model.generate(requests), tiny_model.loglikelihood(requests)
    monkeypatch.setattr(tiny_model, "decode", "eager")
    assert [r.text for r in tiny_model.generate(requests)] == [r.text for r in fast_texts]
    for e, f in zip(tiny_model.loglikelihood(requests), fast_scores):
        # (Response.is_greedy is gone, issue 10; decoding's greediness is tested above)
        assert f.loglikelihoods == pytest.approx(e.loglikelihoods, abs=1e-5)


def test_the_compiled_step_compiles_once_per_batch_size(tiny_model, monkeypatch):
    """Prompts of many lengths share one graph per batch size (a graph per length would hit
    dynamo's recompile limit after 8 and fall back to eager, and re-record CUDA graphs each time)."""
    graphs = []

    def counting_backend(graph_module, example_inputs):
        graphs.append(len(example_inputs))
        return graph_module.forward

    torch._dynamo.reset()
    monkeypatch.setattr(decoding, "_COMPILED",
                        torch.compile(decoding._decode_step, backend=counting_backend, dynamic=False))
    model = tiny_model.model
    prompts = _prompts(model, 5)  # lengths 7, 12, 17, 22, 27
    settings = [GenerationSettings(max_new_tokens=4)] * 5
    for row in range(5):
        decoding.generate_batch(model, prompts[row:row + 1], settings[:1], [row], -1, "original", mode="compiled")
    assert len(graphs) == 1
    decoding.generate_batch(model, prompts[:2], settings[:2], [0, 1], -1, "original", mode="compiled")
    assert len(graphs) == 2
    torch._dynamo.reset()


def test_a_compiler_failure_falls_back_to_the_uncompiled_step_with_one_warning(tiny_model, monkeypatch):
    """Inductor failed on an H200 (torch 2.11): the run must go on, uncompiled, not crash."""
    calls = []

    def failing_backend(graph_module, example_inputs):
        calls.append(1)
        raise RuntimeError("codegen failed")

    torch._dynamo.reset()
    monkeypatch.setattr(decoding, "_COMPILED",
                        torch.compile(decoding._decode_step, backend=failing_backend, dynamic=False))
    model = tiny_model.model
    prompts, settings, seeds = _prompts(model, 2), _settings(2), [3, 4]
    with pytest.warns(UserWarning, match="decoding uncompiled"):
        compiled = decoding.generate_batch(model, prompts, settings, seeds, tiny_model.eos_id, "original",
                                           mode="compiled")
    static = decoding.generate_batch(model, prompts, settings, seeds, tiny_model.eos_id, "original", mode="static")
    assert calls == [1] and decoding._COMPILED is decoding._decode_step
    assert [c.token_ids for c in compiled] == [s.token_ids for s in static]
    torch._dynamo.reset()


def test_a_bug_in_the_model_is_not_taken_for_a_compiler_failure():
    from torch._inductor.exc import InductorError

    assert decoding._is_compiler_failure(InductorError(TypeError("list indices"), None))  # the H200's
    assert not decoding._is_compiler_failure(RuntimeError("shape mismatch"))
