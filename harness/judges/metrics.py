"""lm-eval's metrics: a value per sample, then one aggregate over the task's samples.

A judge judges one answer (a verdict per sample); a metric may need the whole corpus (F1,
MCC, BLEU, perplexity), so metrics sit beside the judges rather than among them. Each metric
computes exactly what lm-evaluation-harness 0.4 computes for the same ``metric_list`` entry:
the per-sample values of ``ConfigurableTask.process_results`` and the aggregations of
``lm_eval.api.metrics``, options included (``exact_match``'s ``ignore_case``,
``ignore_punctuation``, ``ignore_numbers``, ``regexes_to_ignore``; ``aggregation`` and
``higher_is_better`` overrides; ``!function`` metrics and aggregations).

Results are keyed ``metric,filter`` as lm-eval keys them (``none`` without a filter_list).
Nothing here calls a model or reads a file.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.errors import BenchError, did_you_mean

#: metric -> (default aggregation, higher_is_better, output types it is computed for).
METRICS: dict[str, tuple[str, bool, tuple[str, ...]]] = {
    "acc": ("mean", True, ("multiple_choice",)),
    "acc_norm": ("mean", True, ("multiple_choice",)),
    "acc_bytes": ("mean", True, ("multiple_choice",)),
    "f1": ("f1", True, ("multiple_choice", "generate_until")),
    "mcc": ("matthews_corrcoef", True, ("multiple_choice", "generate_until")),
    "exact_match": ("mean", True, ("generate_until",)),
    "bleu": ("bleu", True, ("generate_until",)),
    "chrf": ("chrf", True, ("generate_until",)),
    "ter": ("ter", False, ("generate_until",)),
    "perplexity": ("perplexity", False, ("loglikelihood",)),
    "word_perplexity": ("weighted_perplexity", False, ("loglikelihood_rolling",)),
    "byte_perplexity": ("weighted_perplexity", False, ("loglikelihood_rolling",)),
    "bits_per_byte": ("bits_per_byte", False, ("loglikelihood_rolling",)),
}
#: What a metric_list entry may say beside ``metric`` (metric options pass to the metric).
ENTRY_KEYS = frozenset({"metric", "aggregation", "higher_is_better"})
EXACT_MATCH_OPTIONS = frozenset({"ignore_case", "ignore_punctuation", "ignore_numbers",
                                 "regexes_to_ignore"})
#: lm-eval options that change nothing here (stderr, hf-evaluate loading).
IGNORED_OPTIONS = frozenset({"hf_evaluate", "bootstrap_iters", "kwargs"})


# -- aggregations (lm_eval.api.metrics) ---------------------------------------------------------
def _mean(items: Sequence[float]) -> float:
    return sum(items) / len(items)


def _weighted_mean(items: Sequence[tuple[float, float]]) -> float:
    return sum(a for a, _ in items) / sum(b for _, b in items)


def _f1(items: Sequence[tuple[Any, Any]]) -> float:
    """sklearn's binary ``f1_score(golds, preds)`` (positive label 1)."""
    labels = {x for pair in items for x in pair}
    if not labels <= {0, 1}:
        raise BenchError(f"f1: lm-eval's f1 is binary, but the labels are {sorted(labels, key=str)}; "
                         "use acc or a !function aggregation")
    tp = sum(1 for g, p in items if g == 1 and p == 1)
    fp = sum(1 for g, p in items if g != 1 and p == 1)
    fn = sum(1 for g, p in items if g == 1 and p != 1)
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


def _mcc(items: Sequence[tuple[Any, Any]]) -> float:
    """sklearn's ``matthews_corrcoef(golds, preds)`` (multi-class form)."""
    labels = sorted({x for pair in items for x in pair}, key=str)
    index = {label: i for i, label in enumerate(labels)}
    k = len(labels)
    confusion = [[0] * k for _ in range(k)]
    for gold, pred in items:
        confusion[index[gold]][index[pred]] += 1
    t = [sum(row) for row in confusion]               # true occurrences per class
    p = [sum(confusion[r][c] for r in range(k)) for c in range(k)]  # predictions per class
    c, s = sum(confusion[i][i] for i in range(k)), len(items)
    cov_ytyp = c * s - sum(p[i] * t[i] for i in range(k))
    cov_ypyp = s * s - sum(x * x for x in p)
    cov_ytyt = s * s - sum(x * x for x in t)
    if cov_ypyp * cov_ytyt == 0:
        return 0.0
    return cov_ytyp / math.sqrt(cov_ytyt * cov_ypyp)


def _sacre(items: Sequence[tuple[Any, Any]]) -> tuple[list[list[str]], list[str]]:
    """lm-eval's ``_sacreformat``: references transposed to sacrebleu's streams."""
    refs = [r if isinstance(r, list | tuple) else [r] for r, _ in items]
    preds = [p[0] if isinstance(p, list | tuple) else p for _, p in items]
    return [list(stream) for stream in zip(*refs)], preds


def _sacrebleu() -> Any:
    try:
        import sacrebleu
    except ImportError:
        raise BenchError("bleu / chrf / ter need sacrebleu: pip install sacrebleu") from None
    return sacrebleu


AGGREGATIONS: dict[str, Callable[[Sequence[Any]], float]] = {
    "mean": _mean,
    "median": lambda items: sorted(items)[len(items) // 2],
    "perplexity": lambda items: math.exp(-_mean(items)),
    "weighted_perplexity": lambda items: math.exp(-_weighted_mean(items)),
    "bits_per_byte": lambda items: -_weighted_mean(items) / math.log(2),
    "f1": _f1,
    "matthews_corrcoef": _mcc,
    "bleu": lambda items: _sacrebleu().corpus_bleu(_sacre(items)[1], _sacre(items)[0]).score,
    "chrf": lambda items: _sacrebleu().corpus_chrf(_sacre(items)[1], _sacre(items)[0]).score,
    "ter": lambda items: _sacrebleu().corpus_ter(_sacre(items)[1], _sacre(items)[0]).score,
}


# -- per-sample values --------------------------------------------------------------------------
def exact_match(prediction: str, reference: str, *, ignore_case: bool = False,
                ignore_punctuation: bool = False, ignore_numbers: bool = False,
                regexes_to_ignore: Sequence[str] | None = None) -> float:
    """lm-eval's ``exact_match_hf_evaluate`` for one pair (1.0 or 0.0)."""
    for pattern in regexes_to_ignore or ():
        prediction, reference = re.sub(pattern, "", prediction), re.sub(pattern, "", reference)
    if ignore_case:
        prediction, reference = prediction.lower(), reference.lower()
    if ignore_punctuation:
        table = str.maketrans("", "", string.punctuation)
        prediction, reference = prediction.translate(table), reference.translate(table)
    if ignore_numbers:
        table = str.maketrans("", "", string.digits)
        prediction, reference = prediction.translate(table), reference.translate(table)
    return float(prediction == reference)


def _argmax(values: Sequence[float]) -> int:
    return max(range(len(values)), key=lambda i: (values[i], -i))


@dataclass(frozen=True)
class Metric:
    """One ``metric_list`` entry, checked: how to score a sample and how to aggregate."""

    name: str
    aggregation: str | Callable[[Sequence[Any]], float]
    higher_is_better: bool
    options: Mapping[str, Any] = field(default_factory=dict)
    function: Callable[..., Any] | None = None  # a ``!function`` metric

    def value(self, sample: Any, output_type: str, filtered: str | None) -> Any:
        """This metric's per-sample value (lm-eval's ``process_results``); None if unscorable."""
        if sample.error is not None:
            return None
        if output_type == "multiple_choice":
            lls = sample.loglikelihoods
            if not lls:
                return None
            gold = sample.gold
            if self.name == "acc":
                return float(_argmax(lls) == gold)
            if self.name == "acc_norm":
                return float(_argmax([ll / len(c) for ll, c in zip(lls, sample.choices)]) == gold)
            if self.name == "acc_bytes":
                return float(_argmax([ll / len(c.encode("utf-8"))
                                      for ll, c in zip(lls, sample.choices)]) == gold)
            return (gold, _argmax(lls))  # f1, mcc and passthrough functions
        if output_type == "loglikelihood_rolling":
            if not sample.loglikelihoods:
                return None
            ll = sample.loglikelihoods[0]
            if self.name == "word_perplexity":
                return (ll, len(re.split(r"\s+", sample.target)))
            return (ll, len(sample.target.encode("utf-8")))
        if output_type == "loglikelihood":
            return sample.loglikelihoods[0] if sample.loglikelihoods else None
        prediction = filtered if filtered is not None else sample.response
        if prediction is None:
            return None
        if self.name == "exact_match":
            return exact_match(prediction, sample.target, **self.options)
        if self.function is not None:
            try:
                result = self.function(references=[sample.target], predictions=[prediction],
                                       **self.options)
            except TypeError:
                result = self.function([sample.target, prediction])
            return result[self.name] if isinstance(result, Mapping) and self.name in result else result
        return (sample.target, prediction)

    def aggregate(self, values: Sequence[Any]) -> float:
        function = (self.aggregation if callable(self.aggregation)
                    else AGGREGATIONS[self.aggregation])
        return float(function(list(values)))


def parse_metric_list(entries: Sequence[Mapping[str, Any]], output_type: str, where: str,
                      judges: Sequence[str], judge_aliases: Mapping[str, str],
                      process_results: bool = False) -> tuple[list[str], list[Metric]]:
    """Split a task's ``metric_list`` into judge names and lm-eval metrics.

    Args:
        entries: the YAML's ``metric_list``.
        output_type: the task's output type (a metric computed for none of its types is an error).
        where: ``file`` for messages (``file:metric_list``).
        judges: the names the judge registry knows.
        judge_aliases: lm-eval metric names that also stand for a judge (``acc`` -> loglikelihood).
        process_results: the task has a ``process_results`` function, which may return metrics
            of any name (aggregated by their entry's ``aggregation``, else the mean).
    """
    from harness.tasks.yaml_io import FunctionRef

    judge_names: list[str] = []
    metrics: list[Metric] = []
    for number, entry in enumerate(entries):
        at = f"{where}:metric_list[{number}]"
        raw_name = entry.get("metric")
        aggregation: Any = entry.get("aggregation")
        if isinstance(aggregation, FunctionRef):
            aggregation = aggregation.load(f"{at}.aggregation")
        elif aggregation is not None and aggregation not in AGGREGATIONS:
            raise BenchError(f"{at}.aggregation: unknown aggregation '{aggregation}'."
                             f"{did_you_mean(str(aggregation), AGGREGATIONS)}")
        options = {k: v for k, v in entry.items() if k not in ENTRY_KEYS and k not in IGNORED_OPTIONS}
        if isinstance(raw_name, FunctionRef):
            function = raw_name.load(f"{at}.metric")
            metrics.append(Metric(getattr(function, "__name__", raw_name.spec.rpartition(".")[2]),
                                  aggregation or "mean", bool(entry.get("higher_is_better", True)),
                                  options, function))
            continue
        name = str(raw_name)
        if name in METRICS:
            default_aggregation, higher, types = METRICS[name]
            if output_type not in types and not process_results:
                raise BenchError(f"{at}: metric '{name}' is computed for {' / '.join(types)} tasks, "
                                 f"not {output_type}")
            if name == "exact_match":
                unknown_options = set(options) - EXACT_MATCH_OPTIONS
                if unknown_options:
                    option = sorted(unknown_options)[0]
                    raise BenchError(f"{at}.{option}: unknown exact_match option."
                                     f"{did_you_mean(option, EXACT_MATCH_OPTIONS)}")
            metrics.append(Metric(name, aggregation or default_aggregation,
                                  bool(entry.get("higher_is_better", higher)), options))
            if name in judge_aliases:
                judge_names.append(judge_aliases[name])
        elif name in judges or name in judge_aliases.values():
            judge_names.append(name)
        elif process_results:
            metrics.append(Metric(name, aggregation or "mean",
                                  bool(entry.get("higher_is_better", True)), options))
        else:
            known = sorted({*METRICS, *judges})
            raise BenchError(f"{at}: unknown metric or judge '{name}'.{did_you_mean(name, known)} "
                             f"Metrics: {', '.join(sorted(METRICS))}; judges: see --list-judges")
    return judge_names, metrics


def lm_eval_results(sample: Any, output_type: str, filtered: str | None) -> Any:
    """A sample's model output in the shape lm-eval hands ``process_results``.

    ``is_greedy`` is not kept in the run folder, so it is always False here.
    """
    if output_type == "generate_until":
        return [filtered if filtered is not None else sample.response]
    if output_type == "loglikelihood_rolling":
        return (sample.loglikelihoods[0],)
    return [(ll, False) for ll in sample.loglikelihoods]


class MetricTally:
    """A task's lm-eval metrics with samples streaming by: ``{"metric,filter": {value,
    higher_is_better, aggregation, n, n_unscored}}``. Of each sample only its per-metric
    values are kept (a number, or the pair a corpus metric such as f1 or bleu needs).

    ``pipelines`` are (name, filter) pairs; each scores separately. Without a filter_list the
    one pipeline is ``none`` (the response as is), as in lm-eval. A task's ``process_results``
    (called with the document and lm-eval-shaped results) replaces the built-in per-sample values.
    """

    def __init__(self, metrics: Sequence[Metric], output_type: str,
                 pipelines: Sequence[tuple[str, Callable[[str | None], str | None]]],
                 process_results: Callable[[Any, Any], Mapping[str, Any]] | None = None) -> None:
        self.metrics, self.output_type, self.process_results = metrics, output_type, process_results
        self.pipelines = list(pipelines) or [("none", lambda text: text)]
        self.values: list[list[list[Any]]] = [[[] for _ in metrics] for _ in self.pipelines]
        self.n = 0

    def add(self, sample: Any) -> None:
        self.n += 1
        output_type = self.output_type
        for (_, pipeline), values in zip(self.pipelines, self.values):
            filtered = pipeline(sample.response) if output_type == "generate_until" else None
            custom = None
            if self.process_results is not None and not (
                    sample.error is not None or (output_type != "generate_until"
                                                 and not sample.loglikelihoods)):
                custom = self.process_results(dict(sample.doc),
                                              lm_eval_results(sample, output_type, filtered))
            for metric, kept in zip(self.metrics, values):
                value = (metric.value(sample, output_type, filtered) if custom is None
                         else custom.get(metric.name))
                if value is not None:
                    kept.append(value)

    def results(self) -> dict[str, dict[str, Any]]:
        results: dict[str, dict[str, Any]] = {}
        for (filter_name, _), values in zip(self.pipelines, self.values):
            for metric, kept in zip(self.metrics, values):
                aggregation = metric.aggregation
                results[f"{metric.name},{filter_name}"] = {
                    "value": metric.aggregate(kept) if kept else None,
                    "higher_is_better": metric.higher_is_better,
                    "aggregation": aggregation if isinstance(aggregation, str)
                    else f"!function {getattr(aggregation, '__name__', 'custom')}",
                    "n": len(kept), "n_unscored": self.n - len(kept),
                }
        return results


def score_metrics(metrics: Sequence[Metric], samples: Iterable[Any], output_type: str,
                  pipelines: Sequence[tuple[str, Callable[[str | None], str | None]]],
                  process_results: Callable[[Any, Any], Mapping[str, Any]] | None = None
                  ) -> dict[str, dict[str, Any]]:
    """:class:`MetricTally`'s results over ``samples``."""
    tally = MetricTally(metrics, output_type, pipelines, process_results)
    for sample in samples:
        tally.add(sample)
    return tally.results()
