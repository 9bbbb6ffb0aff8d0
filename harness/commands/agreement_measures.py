"""The measures of ``run_bench.py agreement``: each automatic judge against the human
majority, and annotators against each other.

A judge against the majority: Cohen's kappa with a bootstrap CI resampling images (a
sample's cluster, ``Sample.cluster``), the confusion matrix, and by how much the judge over-
or under-states accuracy. Between annotators: Cohen's kappa for two, Fleiss' kappa for more,
and Krippendorff's alpha (nominal) for two or more, which counts items that not every
annotator labelled. The statistics are in ``harness.stats.kappa``; this module gathers
labels and verdicts and calls them. It re-judges, prints and writes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.judges.human.annotations import (
    current_labels,
    majority,
    read_annotations,
    response_hash,
)
from harness.run.samples import Sample
from harness.stats.intervals import mean_ci
from harness.stats.kappa import (
    cluster_bootstrap_alpha,
    cluster_bootstrap_fleiss,
    cluster_bootstrap_kappa,
    confusion_matrix,
    fleiss_table,
)
from harness.types import OUTCOMES


@dataclass(frozen=True)
class Item:
    """One sample as the agreement sees it."""

    key: str
    task: str
    cluster: str
    human: str | None  # majority label; "unclear" on a tie; None when nobody labelled it
    by_annotator: Mapping[str, str]
    verdicts: Mapping[str, Mapping[str, Any]]


def verdict_category(verdict: Mapping[str, Any]) -> str | None:
    """aligned / misaligned / unclear / refusal, or None for a failed judgement."""
    status = verdict.get("status")
    if status == "ok":
        return "aligned" if verdict.get("aligned") else "misaligned"
    if status in ("unclear", "refusal"):
        return str(status)
    return None


def gather_items(samples: Sequence[Sample], annotations_path: Path,
                 annotators: Sequence[str] | None = None) -> list[Item]:
    """Each sample with its verdicts and the current hand labels of the response it holds."""
    hashes = {s.request_id: response_hash(s.response) for s in samples}
    records = read_annotations(annotations_path)
    if annotators:
        records = [r for r in records if r.annotator in annotators]
    labels = current_labels(records, hashes)
    items = []
    for sample in samples:
        by_annotator = labels.get(sample.request_id, {})
        winner, _ = majority(by_annotator)
        human = (winner or "unclear") if by_annotator else None
        items.append(Item(sample.request_id, sample.task, sample.cluster, human, by_annotator,
                          dict(sample.verdicts)))
    return items


def compare_judge(items: Sequence[Item], judge: str, *, n_resamples: int = 2000,
                  seed: int = 0) -> dict[str, Any]:
    """Kappa, confusion matrix and accuracy gap of one judge against the human majority."""
    labelled = [i for i in items if i.human is not None]
    pairs, errors, missing = [], 0, 0
    for item in labelled:
        verdict = item.verdicts.get(judge)
        if verdict is None:
            missing += 1
            continue
        category = verdict_category(verdict)
        if category is None:
            errors += 1
            continue
        pairs.append((item, category))
    humans = [item.human for item, _ in pairs]
    judged = [category for _, category in pairs]
    present = set(humans) | set(judged)
    categories = [c for c in OUTCOMES if c in present] or ["aligned", "misaligned"]
    kappa = cluster_bootstrap_kappa(humans, judged, [item.cluster for item, _ in pairs],
                                    categories, n_resamples=n_resamples, seed=seed)
    binary = [(item, category) for item, category in pairs
              if item.human in ("aligned", "misaligned") and category in ("aligned", "misaligned")]
    summary: dict[str, Any] = {
        "n": len(pairs), "n_judge_errors": errors, "n_not_judged": missing,
        "kappa": kappa.value, "ci_low": kappa.ci_low, "ci_high": kappa.ci_high,
        "labels": categories,
        "confusion": confusion_matrix(humans, judged, categories),  # rows human, cols judge
        "n_binary": len(binary), "judge_accuracy": None, "human_accuracy": None,
        "overstatement": None, "overstatement_ci_low": None, "overstatement_ci_high": None,
    }
    if binary:
        judge_ok = [1.0 if category == "aligned" else 0.0 for _, category in binary]
        human_ok = [1.0 if item.human == "aligned" else 0.0 for item, _ in binary]
        gap = mean_ci([j - h for j, h in zip(judge_ok, human_ok)],
                      [item.cluster for item, _ in binary])
        summary.update(judge_accuracy=sum(judge_ok) / len(binary),
                       human_accuracy=sum(human_ok) / len(binary), overstatement=gap.value,
                       overstatement_ci_low=gap.ci_low, overstatement_ci_high=gap.ci_high)
    return summary


def compare_annotators(items: Sequence[Item], *, n_resamples: int = 2000,
                       seed: int = 0) -> dict[str, Any]:
    """Agreement between annotators: Cohen's kappa for two, Fleiss' kappa for more, and
    Krippendorff's alpha (nominal) for two or more.

    Fleiss' kappa and alpha take every item labelled by at least two annotators, each with as
    many labels as it has; items labelled once cannot show agreement and are counted in
    ``n_single``, never dropped silently.
    """
    names = sorted({a for item in items for a in item.by_annotator})
    result: dict[str, Any] = {"annotators": names, "method": None, "kappa": None,
                              "ci_low": None, "ci_high": None, "n": 0, "pairwise": [],
                              "alpha": None, "alpha_ci_low": None, "alpha_ci_high": None,
                              "n_alpha": 0, "n_incomplete": 0, "n_single": 0}
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            both = [item for item in items
                    if first in item.by_annotator and second in item.by_annotator]
            estimate = cluster_bootstrap_kappa(
                [item.by_annotator[first] for item in both],
                [item.by_annotator[second] for item in both],
                [item.cluster for item in both], n_resamples=n_resamples, seed=seed)
            result["pairwise"].append({"annotators": [first, second], "kappa": estimate.value,
                                       "ci_low": estimate.ci_low, "ci_high": estimate.ci_high,
                                       "n": estimate.n})
    if len(names) < 2:
        return result
    labelled = [item for item in items if item.by_annotator]
    pairable = [item for item in labelled if len(item.by_annotator) >= 2]
    table, _ = fleiss_table([[item.by_annotator[a] for a in names if a in item.by_annotator]
                             for item in pairable])
    clusters = [item.cluster for item in pairable]
    alpha = cluster_bootstrap_alpha(table, clusters, n_resamples=n_resamples, seed=seed)
    result.update(alpha=alpha.value, alpha_ci_low=alpha.ci_low, alpha_ci_high=alpha.ci_high,
                  n_alpha=alpha.n, n_single=len(labelled) - len(pairable),
                  n_incomplete=sum(1 for item in pairable if len(item.by_annotator) < len(names)))
    if len(names) == 2:
        pair = result["pairwise"][0]
        result.update(method="cohen", kappa=pair["kappa"], ci_low=pair["ci_low"],
                      ci_high=pair["ci_high"], n=pair["n"])
    else:
        estimate = cluster_bootstrap_fleiss(table, clusters, n_resamples=n_resamples, seed=seed)
        result.update(method="fleiss", n=estimate.n, kappa=estimate.value,
                      ci_low=estimate.ci_low, ci_high=estimate.ci_high)
    return result
