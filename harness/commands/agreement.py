"""``run_bench.py agreement RUN_DIR``: how far each automatic judge agrees with hand labels.

For every automatic judge in samples.jsonl it compares the verdicts with the human majority
(annotations.jsonl, the newest label of each annotator for the response they saw): Cohen's
kappa with a bootstrap CI resampling images, the confusion matrix, and by how much the
judge over- or under-states accuracy. Between annotators it gives Cohen's kappa for two and
Fleiss' kappa for more, and Krippendorff's alpha (nominal) for two or more, which counts
items that not every annotator labelled. The result is printed and stored in results.json under
``"agreement"`` (written atomically). The statistics are in ``harness.stats.kappa``; this module
only gathers labels, calls them and reports. It never re-judges anything.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.errors import BenchError
from harness.judges.human.annotations import (
    ANNOTATIONS_FILE,
    current_labels,
    majority,
    read_annotations,
    read_samples,
    response_hash,
)
from harness.safety import terminal_markup, umask_mode
from harness.stats.clusters import image_cluster
from harness.stats.intervals import mean_ci
from harness.stats.kappa import (
    cluster_bootstrap_alpha,
    cluster_bootstrap_fleiss,
    cluster_bootstrap_kappa,
    confusion_matrix,
    fleiss_table,
)
from harness.types import OUTCOMES

SCHEMA_VERSION = 1
HUMAN_JUDGE = "human"


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


def gather_items(samples: Sequence[Mapping[str, Any]], annotations_path: Path,
                 annotators: Sequence[str] | None = None) -> list[Item]:
    hashes = {str(s["request_id"]): response_hash(s.get("response")) for s in samples}
    records = read_annotations(annotations_path)
    if annotators:
        records = [r for r in records if r.annotator in annotators]
    labels = current_labels(records, hashes)
    items = []
    for sample in samples:
        key = str(sample["request_id"])
        by_annotator = labels.get(key, {})
        winner, _ = majority(by_annotator)
        human = (winner or "unclear") if by_annotator else None
        cluster = image_cluster(sample.get("image_ids"), sample.get("doc_id"),
                                sample.get("cluster_id"))
        items.append(Item(key, str(sample.get("task")), cluster, human, by_annotator,
                          dict(sample.get("verdicts") or {})))
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


def compute_agreement(run_dir: Path, judges: Sequence[str] | None = None,
                      annotators: Sequence[str] | None = None, *, n_resamples: int = 2000,
                      seed: int = 0) -> dict[str, Any]:
    samples = read_samples(run_dir)
    path = run_dir / ANNOTATIONS_FILE
    items = gather_items(samples, path, annotators)
    labelled = [i for i in items if i.human is not None]
    if not labelled:
        raise BenchError(f"no hand labels for this run's responses in {path}; "
                         f"label them first: run_bench.py annotate {run_dir}")
    found = sorted({j for item in items for j in item.verdicts} - {HUMAN_JUDGE})
    chosen = list(judges) if judges else found
    for judge in chosen:
        if judge not in found:
            from harness.errors import unknown
            raise unknown("judge in this run", judge, found,
                          f"Judge it first: run_bench.py score {run_dir} --judges {judge}")
    tasks = sorted({item.task for item in items})
    judge_results: dict[str, Any] = {}
    for judge in chosen:
        entry = {"all": compare_judge(items, judge, n_resamples=n_resamples, seed=seed)}
        if len(tasks) > 1:
            entry["tasks"] = {task: compare_judge([i for i in items if i.task == task], judge,
                                                  n_resamples=n_resamples, seed=seed)
                              for task in tasks}
        judge_results[judge] = entry
    return {
        "schema": SCHEMA_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "n_samples": len(items), "n_labelled": len(labelled),
        "n_ties": sum(1 for i in labelled if majority(i.by_annotator)[0] is None),
        "bootstrap": {"resamples": n_resamples, "seed": seed, "cluster": "image"},
        "gap_ci_method": "cluster-t",
        "judges": judge_results,
        "annotators": compare_annotators(items, n_resamples=n_resamples, seed=seed),
    }


def write_into_results(run_dir: Path, agreement: Mapping[str, Any]) -> Path:
    """Store ``agreement`` in results.json, replacing the file atomically."""
    path = run_dir / "results.json"
    if not path.exists():
        raise BenchError(f"{path} not found; run or score the run first")
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        raise BenchError(f"{path} is damaged (not JSON); re-run run_bench.py score {run_dir}") from None
    results["agreement"] = agreement
    handle, temp = tempfile.mkstemp(dir=run_dir, prefix=".results.", suffix=".tmp")
    try:
        os.chmod(temp, umask_mode())  # mkstemp's 0600 would outlive the rename
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(results, out, indent=2, ensure_ascii=False)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return path


def _num(value: float | None, percent: bool = False, signed: bool = False) -> str:
    if value is None:
        return "-"
    return f"{value * 100:{'+' if signed else ''}.0f}%" if percent else f"{value:.2f}"


def _ci(low: float | None, high: float | None, percent: bool = False, signed: bool = False) -> str:
    if low is None or high is None:
        return "-"
    return f"{_num(low, percent, signed)}..{_num(high, percent, signed)}"


def print_agreement(agreement: Mapping[str, Any]) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table

    console = Console()
    for raw_judge, entry in agreement["judges"].items():
        judge = terminal_markup(raw_judge)  # names from the run folder: no markup, no escapes
        table = Table(title=f"{judge} vs the human majority", box=box.SIMPLE_HEAVY,
                      caption="kappa CI: 95% bootstrap resampling images; gap CI: 95% cluster-robust "
                              "t over images. gap = judge acc - human acc on "
                              "items both graded aligned/misaligned (+ = judge overstates)")
        table.add_column("scope", no_wrap=True)
        for column in ("n", "kappa", "kappa CI", "judge acc", "human acc", "gap", "gap CI",
                       "err"):
            table.add_column(column, justify="right", no_wrap=column.endswith("CI"))
        for scope, s in [("all", entry["all"]), *sorted(entry.get("tasks", {}).items())]:
            table.add_row(terminal_markup(scope), str(s["n"]), _num(s["kappa"]), _ci(s["ci_low"], s["ci_high"]),
                          _num(s["judge_accuracy"], percent=True),
                          _num(s["human_accuracy"], percent=True),
                          _num(s["overstatement"], percent=True, signed=True),
                          _ci(s["overstatement_ci_low"], s["overstatement_ci_high"],
                              percent=True, signed=True),
                          str(s["n_judge_errors"]))
        console.print(table)
        s = entry["all"]
        matrix = Table(title=f"{judge}: confusion (rows human, columns judge)",
                       box=box.SIMPLE_HEAVY)
        matrix.add_column("human \\ judge")
        for label in s["labels"]:
            matrix.add_column(label, justify="right")
        for label, row in zip(s["labels"], s["confusion"]):
            matrix.add_row(label, *(str(n) for n in row))
        console.print(matrix)
    a = agreement["annotators"]
    names = terminal_markup(", ".join(a["annotators"]))
    if a["method"] is None:
        console.print(f"Annotators: {names or 'none'} "
                      "(inter-annotator agreement needs two or more)")
    else:
        name = "Cohen's" if a["method"] == "cohen" else "Fleiss'"
        console.print(f"Annotators {names}: {name} kappa "
                      f"{_num(a['kappa'])} (95% CI {_ci(a['ci_low'], a['ci_high'])}) over {a['n']} items")
        console.print(f"Krippendorff's alpha (nominal) {_num(a.get('alpha'))} (95% CI "
                      f"{_ci(a.get('alpha_ci_low'), a.get('alpha_ci_high'))}) over "
                      f"{a.get('n_alpha', 0)} items labelled at least twice "
                      f"({a.get('n_incomplete', 0)} not by everyone; {a.get('n_single', 0)} "
                      "labelled once, left out of kappa and alpha)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, help="run folder with samples.jsonl and annotations.jsonl")
    parser.add_argument("--judges", default=None,
                        help="comma-separated judges to compare (default: every automatic judge)")
    parser.add_argument("--annotators", default=None,
                        help="comma-separated annotators to count (default: everyone)")
    parser.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")


def run(args: argparse.Namespace) -> int:
    def split(value: str | None) -> list[str] | None:
        return [v.strip() for v in value.split(",") if v.strip()] if value else None

    if args.resamples < 100:
        raise BenchError("--resamples must be at least 100 for a meaningful interval")
    agreement = compute_agreement(Path(args.run_dir), split(args.judges), split(args.annotators),
                                  n_resamples=args.resamples, seed=args.seed)
    print_agreement(agreement)
    path = write_into_results(Path(args.run_dir), agreement)
    print(f"written to {path} under 'agreement'")
    return 0
