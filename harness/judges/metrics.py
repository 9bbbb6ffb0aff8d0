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

import re
import string
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.errors import BenchError, did_you_mean
from harness.judges.aggregations import AGGREGATIONS, aggregate_stderr
from harness.stats.lm_eval_stderr import BOOTSTRAP_ITERS

#: metric -> (default aggregation, higher_is_better, output types it is computed for).
METRICS: dict[str, tuple[str, bool, tuple[str, ...]]] = {
    "acc": ("mean", True, ("multiple_choice",)),
    "acc_norm": ("mean", True, ("multiple_choice",)),
    "acc_bytes": ("mean", True, ("multiple_choice",)),
    "acc_mutual_info": ("mean", True, ("multiple_choice",)),
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
            gold, n = sample.gold, len(sample.choices)
            # With acc_mutual_info each choice is scored again after an empty context (lm-eval).
            lls, unconditional = (lls[:n], lls[n:]) if len(lls) == 2 * n else (lls, ())
            if self.name == "acc_mutual_info":
                return float(_argmax([c - u for c, u in zip(lls, unconditional, strict=True)]) == gold)
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


Pipeline = tuple[str, Callable[[str | None], str | None]]
#: Without a filter_list the one pipeline is ``none`` (the response as is), as in lm-eval.
NO_FILTER: tuple[Pipeline, ...] = (("none", lambda text: text),)


@dataclass(frozen=True)
class MetricScorer:
    """A task's lm-eval metrics bound to how its answers are read: the output type, every
    ``filter_list`` pipeline (each scores separately) and a ``process_results`` function
    (called with the document and lm-eval-shaped results; it replaces the built-in values)."""

    metrics: tuple[Metric, ...]
    output_type: str
    pipelines: tuple[Pipeline, ...] = NO_FILTER
    process_results: Callable[[Any, Any], Mapping[str, Any]] | None = None

    def per_filter(self, sample: Any) -> dict[str, dict[str, Any]]:
        """``{filter: {"filtered": answer, "values": {metric: value}}}`` of one sample: the
        answer after that pipeline (None unless generated) and each metric's value (None when
        unscorable), as lm-eval logs a sample per filter."""
        by_filter: dict[str, dict[str, Any]] = {}
        for filter_name, pipeline in self.pipelines or NO_FILTER:
            filtered = pipeline(sample.response) if self.output_type == "generate_until" else None
            custom = None
            if self.process_results is not None and sample.error is None and (
                    self.output_type == "generate_until" or sample.loglikelihoods):
                custom = self.process_results(dict(sample.doc),
                                              lm_eval_results(sample, self.output_type, filtered))
            by_filter[filter_name] = {"filtered": filtered, "values": {
                m.name: m.value(sample, self.output_type, filtered) if custom is None
                else custom.get(m.name) for m in self.metrics}}
        return by_filter

    def values(self, sample: Any) -> dict[str, dict[str, Any]]:
        """``{filter: {metric: value}}`` of one sample (a value is None when unscorable)."""
        return {name: row["values"] for name, row in self.per_filter(sample).items()}


class MetricTally:
    """A task's metrics over samples streaming by: of each sample only its per-metric values
    are kept (a number, or the pair a corpus metric such as f1 or bleu needs), in order."""

    def __init__(self, metrics: Sequence[Metric], output_type: str,
                 pipelines: Sequence[Pipeline] = (),
                 process_results: Callable[[Any, Any], Mapping[str, Any]] | None = None) -> None:
        self.scorer = MetricScorer(tuple(metrics), output_type, tuple(pipelines) or NO_FILTER,
                                   process_results)
        self.values: dict[str, list[Any]] = {
            f"{m.name},{name}": [] for name, _ in self.scorer.pipelines for m in metrics}
        self.n = 0

    def add(self, sample: Any) -> None:
        self.n += 1
        for filter_name, by_metric in self.scorer.values(sample).items():
            for name, value in by_metric.items():
                if value is not None:
                    self.values[f"{name},{filter_name}"].append(value)

    def results(self, bootstrap_iters: int = BOOTSTRAP_ITERS) -> dict[str, dict[str, Any]]:
        """``{"metric,filter": {value, stderr, higher_is_better, aggregation, n, n_unscored}}``;
        the stderr is lm-eval's (``harness.judges.aggregations.aggregate_stderr``: the bootstrap
        draws by position, so the samples came in document order, as lm-eval's)."""
        results: dict[str, dict[str, Any]] = {}
        for filter_name, _ in self.scorer.pipelines:
            for metric in self.scorer.metrics:
                kept = self.values[f"{metric.name},{filter_name}"]
                aggregation = metric.aggregation
                results[f"{metric.name},{filter_name}"] = {
                    "value": metric.aggregate(kept) if kept else None,
                    "stderr": aggregate_stderr(metric.name, aggregation, kept, bootstrap_iters),
                    "higher_is_better": metric.higher_is_better,
                    "aggregation": aggregation if isinstance(aggregation, str)
                    else f"!function {getattr(aggregation, '__name__', 'custom')}",
                    "n": len(kept), "n_unscored": self.n - len(kept),
                }
        return results


def score_metrics(metrics: Sequence[Metric], samples: Iterable[Any], output_type: str,
                  pipelines: Sequence[Pipeline],
                  process_results: Callable[[Any, Any], Mapping[str, Any]] | None = None,
                  bootstrap_iters: int = BOOTSTRAP_ITERS) -> dict[str, dict[str, Any]]:
    """The metrics of ``samples`` (a ``MetricTally`` over them), keyed ``metric,filter``.

    ``pipelines`` are (name, filter) pairs; each scores separately. Without a filter_list the
    one pipeline is ``none`` (the response as is), as in lm-eval. A task's ``process_results``
    (called with the document and lm-eval-shaped results) replaces the built-in per-sample values.
    """
    tally = MetricTally(metrics, output_type, pipelines, process_results)
    for sample in samples:
        tally.add(sample)
    return tally.results(bootstrap_iters)
