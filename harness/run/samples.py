"""Samples, judging and score summaries: the stages after generation.

Shared by ``harness.run.evaluate`` (a fresh run) and ``harness.commands.score`` (re-judging a saved run),
so both judge and aggregate identically. Nothing here calls a model or writes a file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from harness.hashing import derive_seed, stable_hash
from harness.judges.base import Judge
from harness.run.metrics import METRIC_DOC_FIELDS, instrument_metrics, strict_accuracy
from harness.run.verdicts import VerdictMemory
from harness.stats.bootstrap import repeat_stats
from harness.stats.clusters import image_cluster
from harness.stats.intervals import proportion_ci
from harness.stats.stderr import cluster_stderr
from harness.types import ImagePart, JudgeInput, Verdict

SAMPLES_SCHEMA = 1
#: The judge-free score of multiple-choice tasks: argmax of the log-likelihoods == gold.
LOGLIKELIHOOD = "loglikelihood"
LOGLIKELIHOOD_VERSION = "1"
BREAKDOWN_FIELDS = ("structure", "phrasing", "trap", "category")


@dataclass(frozen=True)
class Sample:
    """One line of ``samples.jsonl``: one (task, document, repeat) with every verdict."""

    task: str
    doc_id: str
    repeat: int
    request_id: str
    seed: int
    prompt: str
    image_ids: tuple[str, ...]
    fewshot_ids: tuple[str, ...]
    target: str
    expected: str | None
    choices: tuple[str, ...]
    gold: int | None
    response: str | None
    loglikelihoods: tuple[float, ...] | None
    error: str | None
    doc: Mapping[str, Any]
    doc_hash: str
    prompt_hash: str
    target_hash: str
    filtered_response: str | None = None
    #: What the server reported it ran for this response (``openai`` adapter), else None.
    model_revision: str | None = None
    #: The item's own image when an image ablation showed another (or none): what the CIs
    #: resample. None when the prompt shows the item's own images.
    cluster_id: str | None = None
    verdicts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    schema: int = SAMPLES_SCHEMA

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Sample:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("image_ids", "fewshot_ids", "choices"):
            known[key] = tuple(known.get(key) or ())
        if known.get("loglikelihoods") is not None:
            known["loglikelihoods"] = tuple(known["loglikelihoods"])
        return cls(**known)

    @property
    def cluster(self) -> str:
        """The image the item asks about (``harness.stats.clusters.image_cluster``)."""
        return image_cluster(self.image_ids, self.doc_id, self.cluster_id)

    def with_verdict(self, name: str, verdict: Verdict) -> Sample:
        return replace(self, verdicts={**self.verdicts, name: verdict.to_dict()})


def loglikelihood_verdict(sample: Sample) -> Verdict:
    """Judge-free accuracy of a multiple-choice sample."""
    if sample.error is not None or not sample.loglikelihoods:
        return Verdict(LOGLIKELIHOOD, "error", reason=f"no log-likelihoods: {sample.error}")
    scores = sample.loglikelihoods[:len(sample.choices)]  # not acc_mutual_info's rows
    best = max(range(len(scores)), key=lambda i: scores[i])
    aligned = best == sample.gold
    return Verdict(LOGLIKELIHOOD, "ok", aligned=aligned, label=sample.choices[best],
                   score=float(aligned), reason=f"picked choice {best}, gold {sample.gold}")


def for_scores(sample: Sample) -> Sample:
    """The sample cut to what ``summarize`` reads, so a large run can keep every sample's score
    inputs without keeping its demonstrations, choices, hashes, log-likelihoods and reasons:
    task, ids, repeat, cluster, expected answer, error, the breakdown fields and the metrics'
    document fields (``METRIC_DOC_FIELDS``), each verdict's status and outcome, and the prompt
    and response that ``yes_rate``, ``yes_bias`` and ``echo_rate`` parse (whether the sample
    was scored by log-likelihood stays known: ``loglikelihoods`` becomes empty, not None)."""
    kept = (*BREAKDOWN_FIELDS, *METRIC_DOC_FIELDS)
    return replace(
        sample, fewshot_ids=(), target="", choices=(),
        loglikelihoods=None if sample.loglikelihoods is None else (),
        doc_hash="", prompt_hash="", target_hash="",
        doc={name: sample.doc[name] for name in kept if name in sample.doc},
        verdicts={name: {key: verdict[key] for key in ("status", "aligned") if key in verdict}
                  for name, verdict in sample.verdicts.items()})


def judge_input(sample: Sample, images: Sequence[ImagePart] = ()) -> JudgeInput:
    text = sample.filtered_response if sample.filtered_response is not None else sample.response
    return JudgeInput(sample_key=sample.request_id, prompt=sample.prompt, response=text,
                      images=tuple(images), ideal_answer=sample.target, expected=sample.expected,
                      doc=sample.doc, response_error=sample.error,
                      raw_response=sample.response if sample.filtered_response is not None else None)


def apply_judges(samples: Sequence[Sample], judges: Iterable[Judge],
                 images: Mapping[str, Sequence[ImagePart]],
                 memory: VerdictMemory | None = None) -> list[Sample]:
    """Every judge's verdict added to every sample (keyed by the judge's name).

    With ``memory``, judges that remember their verdicts are asked only what the run's
    verdict journal and the verdict cache do not hold.
    """
    result = list(samples)
    for judge in judges:
        name = judge.registry_name
        inputs = [judge_input(s, images.get(s.request_id, ())) for s in result]
        if memory is not None and getattr(judge, "remembers", False):
            verdicts = memory.judge(judge, inputs)
        else:
            verdicts = judge.judge(inputs)
        if len(verdicts) != len(inputs):
            raise RuntimeError(f"judge {name} returned {len(verdicts)} verdicts for {len(inputs)} samples")
        result = [s.with_verdict(name, v) for s, v in zip(result, verdicts)]
    return result


def _rates(samples: Sequence[Sample], judge: str) -> dict[str, Any]:
    verdicts = [s.verdicts.get(judge, {}) for s in samples]
    statuses = [v.get("status", "error") for v in verdicts]
    scored = [(s, v) for s, v in zip(samples, verdicts) if v.get("status") == "ok"]
    outcomes = [1.0 if v.get("aligned") else 0.0 for _, v in scored]
    clusters = [s.cluster for s, _ in scored]
    estimate = proportion_ci(outcomes, clusters)
    n = len(samples)
    return {
        "accuracy": estimate.value, "ci_low": estimate.ci_low, "ci_high": estimate.ci_high,
        "n_clusters": estimate.n_clusters, "ci_method": estimate.method,
        "ci_reliable": estimate.reliable, "stderr": cluster_stderr(outcomes, clusters),
        "n": n, "n_scored": len(scored), "aligned": sum(1 for _, v in scored if v.get("aligned")),
        "refusal_rate": statuses.count("refusal") / n if n else None,
        "unclear_rate": statuses.count("unclear") / n if n else None,
        "error_rate": statuses.count("error") / n if n else None,
    }


def summarize(samples: Sequence[Sample], judge: str, seed: int = 0) -> dict[str, Any]:
    """Accuracy (95% CI clustered by image), rates and the instrument's metrics
    (``harness.run.metrics``) for one judge, with breakdowns."""
    base_seed = derive_seed(seed, "bootstrap", sorted({s.task for s in samples}))
    summary = _rates(samples, judge)
    summary.update(instrument_metrics(samples, judge, base_seed))
    breakdown: dict[str, dict[str, Any]] = {}
    for field_name in BREAKDOWN_FIELDS:
        groups: dict[str, list[Sample]] = {}
        for sample in samples:
            if field_name in sample.doc:
                groups.setdefault(str(sample.doc[field_name]).lower(), []).append(sample)
        if groups:
            breakdown[field_name] = {
                value: {**_rates(members, judge), **strict_accuracy(members, judge, base_seed)}
                for value, members in sorted(groups.items())}
    summary["breakdown"] = breakdown
    if any(sample.repeat > 0 for sample in samples):
        summary["repeat_stats"] = _repeat_summary(samples, judge)
    return summary


def _repeat_summary(samples: Sequence[Sample], judge: str) -> dict[str, Any]:
    """Mean accuracy over repeats, majority-vote accuracy and per-item consistency."""
    outcomes: list[bool | None] = []
    for sample in samples:
        verdict = sample.verdicts.get(judge, {})
        outcomes.append(bool(verdict.get("aligned")) if verdict.get("status") == "ok" else None)
    stats = repeat_stats(outcomes, [s.doc_id for s in samples], [s.repeat for s in samples])
    return asdict(stats)


def judge_names_in(samples: Sequence[Sample]) -> list[str]:
    names: list[str] = []
    for sample in samples:
        names.extend(n for n in sample.verdicts if n not in names)
    return names


def scores_by_task(samples: Sequence[Sample], seed: int) -> dict[str, dict[str, Any]]:
    """``{task: {judge: summary}}`` over every judge that gave verdicts."""
    tasks: dict[str, list[Sample]] = {}
    for sample in samples:
        tasks.setdefault(sample.task, []).append(sample)
    return {task: {judge: summarize(members, judge, seed) for judge in judge_names_in(members)}
            for task, members in tasks.items()}


def loglikelihood_settings_hash() -> str:
    return stable_hash({"judge": LOGLIKELIHOOD, "version": LOGLIKELIHOOD_VERSION})
