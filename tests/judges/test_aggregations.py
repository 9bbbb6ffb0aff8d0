"""Aggregations' standard errors, checked against lm-eval's own ``stderr_for_metric``."""

from __future__ import annotations

import random

import pytest

from harness.judges.aggregations import (
    AGGREGATIONS,
    BOOTSTRAPPED,
    aggregate_stderr,
    stderr_iters,
)
from harness.judges.metrics import parse_metric_list, score_metrics

lm_metrics = pytest.importorskip("lm_eval.api.metrics")
from lm_eval.api.registry import AGGREGATION_REGISTRY  # noqa: E402

RNG = random.Random(3)
LABELS = [(RNG.randint(0, 1), RNG.randint(0, 1)) for _ in range(30)]
MULTI = [(RNG.randint(0, 3), RNG.randint(0, 3)) for _ in range(30)]
NUMBERS = [RNG.gauss(-2, 1) for _ in range(30)]
TEXTS = [("the cat sat on the mat", "the cat sat on a mat"), ("a dog runs", "dogs run fast"),
         ("one two three", "one two four"), ("red sky", "a red sky")]


@pytest.fixture(autouse=True)
def _one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DISABLE_MULTIPROC", "1")  # lm-eval's draws are the same either way


def test_which_aggregations_have_a_stderr_is_lm_eval_s() -> None:
    for name, function in AGGREGATION_REGISTRY.items():
        theirs = lm_metrics.stderr_for_metric(function, bootstrap_iters=10)
        assert (stderr_iters(name, name, 10) is None) == (theirs is None), name
        assert stderr_iters(name, name, 0) is None  # bootstrap_iters=0: no stderr at all
    assert stderr_iters("acc", "mean") == 0 and stderr_iters("f1", "f1") == 100_000
    assert stderr_iters("bleu", "bleu") == stderr_iters("ter", "median") == 100  # by metric name
    assert stderr_iters("ter", "mean") == 0
    assert stderr_iters("mine", lambda items: 0.0) is None  # a !function aggregation
    assert set(AGGREGATIONS) - {"weighted_perplexity", "bits_per_byte", "mean"} <= BOOTSTRAPPED


@pytest.mark.parametrize(("name", "values", "iters"), [
    ("f1", LABELS, 150), ("matthews_corrcoef", MULTI, 150),  # sklearn's in lm-eval: slow
    ("median", NUMBERS, 2500), ("perplexity", NUMBERS, 2500)])
def test_bootstrap_stderr_is_lm_eval_s_to_the_bit(name: str, values: list, iters: int) -> None:
    theirs = lm_metrics.bootstrap_stderr(AGGREGATION_REGISTRY[name], values, iters)
    assert aggregate_stderr(name, name, values, iters) == theirs


def test_counting_replicates_are_exact_over_several_chunks() -> None:
    # The block forms of f1 and mcc against the one-sample form, on lm-eval's chunked draws.
    for name, values in (("f1", LABELS), ("matthews_corrcoef", MULTI)):
        theirs = lm_metrics.bootstrap_stderr(AGGREGATIONS[name], values, 2500)
        assert aggregate_stderr(name, name, values, 2500) == theirs


@pytest.mark.parametrize("name", ["bleu", "chrf", "ter"])
def test_sacrebleu_metrics_bootstrap_at_most_100_times(name: str) -> None:
    theirs = lm_metrics.bootstrap_stderr(AGGREGATION_REGISTRY[name], TEXTS, 100)
    assert aggregate_stderr(name, name, TEXTS) == theirs


def test_mean_stderr_and_no_stderr() -> None:
    values = [1.0, 0.0, 1.0, 1.0, 0.0]
    assert aggregate_stderr("acc", "mean", values) == lm_metrics.mean_stderr(values)
    assert aggregate_stderr("acc", "mean", [1.0]) is None  # lm-eval: N/A below two values
    assert aggregate_stderr("acc", "mean", values, iters=0) is None
    assert aggregate_stderr("word_perplexity", "weighted_perplexity", [(-3.0, 2), (-4.0, 3)]) is None


def test_score_metrics_reports_each_filter_s_stderr() -> None:
    from types import SimpleNamespace

    _, metrics = parse_metric_list([{"metric": "exact_match"}, {"metric": "bleu"}],
                                   "generate_until", "t.yaml", [], {})
    answers = ["yes", "no", "yes", "maybe"]
    samples = [SimpleNamespace(error=None, response=f"A: {a}", target=t, doc={}, loglikelihoods=None)
               for a, t in zip(answers, ["yes", "yes", "no", "maybe"])]
    pipelines = [("raw", lambda text: text), ("last", lambda text: text.split()[-1])]
    results = score_metrics(metrics, samples, "generate_until", pipelines)
    exact = [1.0, 0.0, 0.0, 1.0]
    assert results["exact_match,last"]["stderr"] == lm_metrics.mean_stderr(exact)
    assert results["exact_match,raw"]["stderr"] == 0.0  # every answer wrong: no spread
    pairs = [(t, a) for a, t in zip(answers, ["yes", "yes", "no", "maybe"])]
    assert results["bleu,last"]["stderr"] == lm_metrics.bootstrap_stderr(lm_metrics.bleu, pairs, 100)
