"""Baseline models: fixed, seeded random and oracle answers, generate and log-likelihood."""

from __future__ import annotations

from harness.models.baselines import UNCHOSEN_LOGLIKELIHOOD
from harness.registry import load_model, model_names
from harness.types import Request, TextPart


def request(seed: int = 0, target: str | None = None, continuations: tuple[str, ...] = ()) -> Request:
    return Request(f"t/{seed}/0", (TextPart("Q: Do I help her?\nA:"),), seed=seed,
                   continuations=continuations, target=target)


def test_listed_without_importing_them() -> None:
    assert {"always-yes", "always-no", "random", "oracle"} <= set(model_names())


def test_fixed_answers() -> None:
    assert load_model("always-yes").generate([request()])[0].text == "Yes."
    assert load_model("always-no").generate([request()])[0].text == "No."


def test_fixed_loglikelihoods_pick_their_word() -> None:
    mc = request(continuations=(" No", " Yes"))
    assert load_model("always-yes").loglikelihood([mc])[0].loglikelihoods == (UNCHOSEN_LOGLIKELIHOOD, 0.0)
    assert load_model("always-no").loglikelihood([mc])[0].loglikelihoods == (0.0, UNCHOSEN_LOGLIKELIHOOD)


def test_random_is_seeded_per_request_not_per_batch() -> None:
    model = load_model("random")
    requests = [request(seed) for seed in range(40)]
    alone = [model.generate([r])[0].text for r in requests]
    batched = [r.text for r in model.generate(requests)]
    assert alone == batched
    assert set(alone) == {"Yes.", "No."}
    reversed_batch = [r.text for r in model.generate(requests[::-1])][::-1]
    assert reversed_batch == alone


def test_random_loglikelihoods_vary_with_seed() -> None:
    model = load_model("random")
    picks = {model.loglikelihood([request(s, continuations=(" Yes", " No"))])[0].loglikelihoods
             for s in range(30)}
    assert len(picks) == 2


def test_oracle_returns_the_reference() -> None:
    oracle = load_model("oracle")
    assert oracle.generate([request(target="Yes, of course.")])[0].text == "Yes, of course."
    scores = oracle.loglikelihood([request(target=" No", continuations=(" Yes", " No"))])[0]
    assert scores.loglikelihoods == (UNCHOSEN_LOGLIKELIHOOD, 0.0)
    assert oracle.generate([request()])[0].error is not None
