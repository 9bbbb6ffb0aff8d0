"""``run_bench.py agreement RUN_DIR``: how far each automatic judge agrees with hand labels.

For every automatic judge in samples.jsonl it compares the verdicts with the human majority
(annotations.jsonl, the newest label of each annotator for the response they saw), and the
annotators with each other (``harness.commands.agreement_measures``). The result is printed
and stored in results.json under ``"agreement"`` (written atomically through
``harness.run.folder``). It never re-judges anything.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.arguments import split_names
from harness.commands.agreement_measures import (
    compare_annotators,
    compare_judge,
    gather_items,
)
from harness.errors import BenchError, unknown
from harness.judges.human.annotations import majority
from harness.run.folder import RunFolder
from harness.safety import terminal_markup

SCHEMA_VERSION = 1
HUMAN_JUDGE = "human"


def compute_agreement(run_dir: Path, judges: Sequence[str] | None = None,
                      annotators: Sequence[str] | None = None, *, n_resamples: int = 2000,
                      seed: int = 0) -> dict[str, Any]:
    folder = RunFolder(Path(run_dir))
    path = folder.annotations
    items = gather_items(folder.read_samples(), path, annotators)
    labelled = [i for i in items if i.human is not None]
    if not labelled:
        raise BenchError(f"no hand labels for this run's responses in {path}; "
                         f"label them first: run_bench.py annotate {run_dir}")
    found = sorted({j for item in items for j in item.verdicts} - {HUMAN_JUDGE})
    chosen = list(judges) if judges else found
    for judge in chosen:
        if judge not in found:
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
    folder = RunFolder(Path(run_dir))
    folder.write_results(folder.read_results().with_changes(agreement=dict(agreement)))
    path = folder.results_file
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
        return split_names(value) or None

    if args.resamples < 100:
        raise BenchError("--resamples must be at least 100 for a meaningful interval")
    agreement = compute_agreement(Path(args.run_dir), split(args.judges), split(args.annotators),
                                  n_resamples=args.resamples, seed=args.seed)
    print_agreement(agreement)
    path = write_into_results(Path(args.run_dir), agreement)
    print(f"written to {path} under 'agreement'")
    return 0
