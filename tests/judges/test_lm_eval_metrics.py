"""lm-eval's metrics, checked value for value against lm-eval's own functions."""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace

import pytest

from harness.errors import BenchError
from harness.judges.metrics import AGGREGATIONS, exact_match, parse_metric_list, score_metrics
from harness.tasks.yaml_io import FunctionRef

lm_metrics = pytest.importorskip("lm_eval.api.metrics")


def _sample(**fields):  # noqa: ANN202
    base = {"error": None, "loglikelihoods": None, "choices": (), "gold": None, "response": None,
            "target": "", "doc": {}}
    return SimpleNamespace(**{**base, **fields})


def _parse(entries, output_type="generate_until", process_results=False):  # noqa: ANN001, ANN202
    return parse_metric_list(entries, output_type, "t.yaml", ["reference"], {"acc": "loglikelihood"},
                             process_results)


@pytest.mark.parametrize("options", [
    {}, {"ignore_case": True}, {"ignore_punctuation": True}, {"ignore_numbers": True},
    {"regexes_to_ignore": [",", "\\$", "(?s).*#### ", "\\.$"], "ignore_case": True},
])
def test_exact_match_matches_lm_eval(options: dict) -> None:
    pairs = [("The answer is 42.", "the answer is 42"), ("$1,000", "1000"), ("#### 7", "7"),
             ("Hello, World!", "hello world"), ("abc123", "abc")]
    for prediction, reference in pairs:
        theirs = lm_metrics.exact_match_hf_evaluate(predictions=[prediction],
                                                    references=[reference], **options)
        assert exact_match(prediction, reference, **options) == theirs["exact_match"]


def test_corpus_aggregations_match_lm_eval() -> None:
    rng = random.Random(0)
    labels = [(rng.randint(0, 1), rng.randint(0, 1)) for _ in range(40)]
    multi = [(rng.randint(0, 3), rng.randint(0, 3)) for _ in range(40)]
    assert AGGREGATIONS["f1"](labels) == pytest.approx(lm_metrics.f1_score(labels))
    assert AGGREGATIONS["matthews_corrcoef"](multi) == pytest.approx(lm_metrics.matthews_corrcoef(multi))
    texts = [("the cat sat on the mat", "the cat sat on a mat"), ("a dog runs", "dogs run fast")]
    for name in ("bleu", "chrf", "ter"):
        assert AGGREGATIONS[name](texts) == pytest.approx(getattr(lm_metrics, name)(texts))
    weighted = [(-12.5, 7), (-30.0, 11)]
    assert AGGREGATIONS["weighted_perplexity"](weighted) == pytest.approx(
        lm_metrics.weighted_perplexity(weighted))
    assert AGGREGATIONS["bits_per_byte"](weighted) == pytest.approx(lm_metrics.bits_per_byte(weighted))


def test_acc_norm_divides_by_the_choices_length() -> None:
    _, metrics = _parse([{"metric": "acc"}, {"metric": "acc_norm"}], "multiple_choice")
    # Raw argmax picks the short choice; per character the long one is likelier.
    sample = _sample(loglikelihoods=(-4.0, -6.0), choices=("no", "certainly yes"), gold=1)
    scores = score_metrics(metrics, [sample], "multiple_choice", [])
    assert scores["acc,none"]["value"] == 0.0 and scores["acc_norm,none"]["value"] == 1.0


def test_every_filter_pipeline_scores_separately() -> None:
    _, metrics = _parse([{"metric": "exact_match"}])
    samples = [_sample(response="so 12 then #### 7", target="7")]
    pipelines = [("last", lambda t: t.split()[-1]), ("first-number", lambda t: t.split()[1])]
    scores = score_metrics(metrics, samples, "generate_until", pipelines)
    assert scores["exact_match,last"]["value"] == 1.0
    assert scores["exact_match,first-number"]["value"] == 0.0


def test_aggregation_and_higher_is_better_are_honoured(tmp_path: Path) -> None:
    (tmp_path / "fns.py").write_text("def biggest(values):\n    return max(values)\n\n"
                                     "def length_match(references, predictions):\n"
                                     "    return float(len(references[0]) == len(predictions[0]))\n")
    _, metrics = _parse([
        {"metric": "exact_match", "aggregation": FunctionRef("fns.biggest", str(tmp_path)),
         "higher_is_better": False},
        {"metric": FunctionRef("fns.length_match", str(tmp_path))}])
    samples = [_sample(response="abc", target="abd"), _sample(response="x", target="x")]
    scores = score_metrics(metrics, samples, "generate_until", [])
    assert scores["exact_match,none"]["value"] == 1.0  # max, not the mean 0.5
    assert scores["exact_match,none"]["higher_is_better"] is False
    assert scores["length_match,none"]["value"] == 1.0


def test_unknown_metric_names_the_file_and_the_entry() -> None:
    with pytest.raises(BenchError, match=r"t.yaml:metric_list\[1\]: unknown metric or judge "
                                         "'exact_mach'. Did you mean 'exact_match'"):
        _parse([{"metric": "reference"}, {"metric": "exact_mach"}])
    with pytest.raises(BenchError, match=r"metric_list\[0\].ignore_cas: unknown exact_match option"):
        _parse([{"metric": "exact_match", "ignore_cas": True}])
    with pytest.raises(BenchError, match="computed for loglikelihood_rolling tasks, not generate_until"):
        _parse([{"metric": "word_perplexity"}])


def test_judges_and_metrics_are_told_apart() -> None:
    judges, metrics = _parse([{"metric": "acc"}, {"metric": "acc_norm"}], "multiple_choice")
    assert judges == ["loglikelihood"] and [m.name for m in metrics] == ["acc", "acc_norm"]
    judges, metrics = _parse([{"metric": "reference"}])
    assert judges == ["reference"] and metrics == []
    # With process_results, any name is a metric it returns.
    assert [m.name for m in _parse([{"metric": "my_score"}], process_results=True)[1]] == ["my_score"]
