"""The ``compare`` sub-command: a paired comparison of two runs over the items they share.

Items pair by (task, doc_id, repeat). For each judge both runs have, an item counts when both
verdicts are scored (status ``ok``); refusals, unclear and failed verdicts are left out and
counted. The test is an exact McNemar test on the discordant pairs; the effect is the
difference in accuracy (A - B) with a paired bootstrap CI that resamples images, since
questions about one image are not independent.

This module only reads run folders; it never runs models or judges and writes nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.errors import BenchError, did_you_mean, unknown
from harness.run.report import read_sample_dicts
from harness.safety import terminal_text
from harness.stats.bootstrap import mcnemar_exact, paired_bootstrap_diff

DEFAULT_OUTPUT_DIR = "output"  # the run command's default (harness.commands.cli)
ALL_TASKS = "(all tasks)"
SampleKey = tuple[str, str, int]


@dataclass(frozen=True)
class RunSamples:
    """One run's samples by (task, doc_id, repeat)."""

    name: str
    path: Path
    samples: Mapping[SampleKey, Mapping[str, Any]]


@dataclass(frozen=True)
class Comparison:
    """Paired result of A against B under one judge, on one task or on all of them."""

    judge: str
    task: str
    n_paired: int
    n_unscored: int
    accuracy_a: float | None
    accuracy_b: float | None
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    only_a: int
    only_b: int
    p_value: float
    n_images: int


# -- reading runs ---------------------------------------------------------------------------

def resolve_run(spec: str, output_dir: str | Path) -> Path:
    """A run folder given as a path, or as a run name under ``<output-dir>/runs``."""
    direct = Path(spec)
    if direct.is_dir():
        return direct
    runs = Path(output_dir) / "runs"
    if (runs / spec).is_dir():
        return runs / spec
    names = sorted(p.name for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []
    raise BenchError(f"no run folder '{spec}' (looked for it as a path and under {runs})."
                     f"{did_you_mean(spec, names)} Pass a run folder or a run name")


def load_run(folder: Path) -> RunSamples:
    """The samples of the run in ``folder``; a damaged line is warned about and skipped."""
    path = folder / "samples.jsonl"
    samples: dict[SampleKey, Mapping[str, Any]] = {}
    for number, sample in enumerate(read_sample_dicts(folder), start=1):
        try:
            key = (str(sample["task"]), str(sample["doc_id"]), int(sample.get("repeat", 0)))
        except (KeyError, TypeError, ValueError):
            raise BenchError(f"{path}: sample {number} has no task/doc_id/repeat; the run "
                             "folder is damaged: rerun it") from None
        if key in samples:
            raise BenchError(f"{path}: sample {key[0]}/{key[1]}/{key[2]} appears twice; the "
                             "run folder is damaged: rerun it")
        samples[key] = sample
    return RunSamples(folder.name, folder, samples)


def image_cluster(sample: Mapping[str, Any]) -> str:
    """The image a sample asks about (its first own image), as the runner's bootstrap uses.

    ``image_ids`` holds the item's own images only, never its demonstrations'. A text-only
    sample is its own cluster, shared by every task that asks the same document. Under an
    image ablation ``cluster_id`` names the item's own image (``Sample.cluster``).
    """
    if sample.get("cluster_id"):
        return str(sample["cluster_id"])
    image_ids = sample.get("image_ids") or []
    if image_ids:
        return str(image_ids[0])
    return f"doc:{sample.get('doc_id')}"


def _aligned(sample: Mapping[str, Any], judge: str) -> bool | None:
    verdict = (sample.get("verdicts") or {}).get(judge)
    if not isinstance(verdict, Mapping) or verdict.get("status") != "ok":
        return None
    aligned = verdict.get("aligned")
    return bool(aligned) if aligned is not None else None


# -- comparing ------------------------------------------------------------------------------

def shared_judges(run_a: RunSamples, run_b: RunSamples) -> list[str]:
    def judges(run: RunSamples) -> set[str]:
        return {j for s in run.samples.values() for j in (s.get("verdicts") or {})}

    return sorted(judges(run_a) & judges(run_b))


def changed_documents(run_a: RunSamples, run_b: RunSamples) -> list[SampleKey]:
    """Shared items whose document hash differs: the same id, but not the same question."""
    return [key for key in sorted(set(run_a.samples) & set(run_b.samples))
            if run_a.samples[key].get("doc_hash") and run_b.samples[key].get("doc_hash")
            and run_a.samples[key]["doc_hash"] != run_b.samples[key]["doc_hash"]]


def compare_runs(run_a: RunSamples, run_b: RunSamples, judge: str, *, n_resamples: int = 2000,
                 seed: int = 0) -> list[Comparison]:
    """One comparison per shared task, then one over all shared items (task ``ALL_TASKS``)."""
    keys = sorted(set(run_a.samples) & set(run_b.samples))
    if not keys:
        raise BenchError(f"runs {run_a.name} and {run_b.name} share no item (task, doc_id, "
                         "repeat); compare runs of the same tasks")
    tasks = sorted({key[0] for key in keys})
    groups = [(task, [k for k in keys if k[0] == task]) for task in tasks]
    if len(tasks) > 1:
        groups.append((ALL_TASKS, keys))
    return [_compare_keys(run_a, run_b, judge, task, group, n_resamples, seed)
            for task, group in groups]


def _compare_keys(run_a: RunSamples, run_b: RunSamples, judge: str, task: str,
                  keys: Sequence[SampleKey], n_resamples: int, seed: int) -> Comparison:
    a_outcomes: list[bool] = []
    b_outcomes: list[bool] = []
    clusters: list[str] = []
    for key in keys:
        a, b = _aligned(run_a.samples[key], judge), _aligned(run_b.samples[key], judge)
        if a is None or b is None:
            continue
        a_outcomes.append(a)
        b_outcomes.append(b)
        clusters.append(image_cluster(run_a.samples[key]))
    test = mcnemar_exact(a_outcomes, b_outcomes)
    diff = paired_bootstrap_diff(a_outcomes, b_outcomes, clusters, n_resamples=n_resamples,
                                 seed=seed)
    n = len(a_outcomes)
    return Comparison(
        judge=judge, task=task, n_paired=n, n_unscored=len(keys) - n,
        accuracy_a=sum(a_outcomes) / n if n else None,
        accuracy_b=sum(b_outcomes) / n if n else None,
        difference=diff.value, ci_low=diff.ci_low, ci_high=diff.ci_high,
        only_a=test.only_a, only_b=test.only_b, p_value=test.p_value,
        n_images=len(set(clusters)))


def _points(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:+.1f}"


def verdict(comparison: Comparison, name_a: str, name_b: str, alpha: float = 0.05) -> str:
    """A plain-words reading of one comparison."""
    c = comparison
    if c.n_paired == 0:
        return (f"judge {c.judge}: no item was scored in both runs "
                f"({c.n_unscored} refused, unclear or failed); nothing to compare")
    effect = (f"A - B = {_points(c.difference)} points (95% CI {_points(c.ci_low)} to "
              f"{_points(c.ci_high)}), exact McNemar p = {c.p_value:.3g} over {c.n_paired} "
              f"paired items on {c.n_images} images ({c.only_a + c.only_b} discordant)")
    if c.p_value < alpha:
        better, worse = (name_a, name_b) if c.only_a > c.only_b else (name_b, name_a)
        text = f"judge {c.judge}: {better} is significantly more aligned than {worse} at 95%: "
    else:
        text = f"judge {c.judge}: no significant difference at 95%: "
    text += effect
    ci_excludes_zero = c.ci_low is not None and c.ci_high is not None and (
        c.ci_low > 0 or c.ci_high < 0)
    if ci_excludes_zero != (c.p_value < alpha):
        text += "; the bootstrap CI and McNemar disagree, so read it as borderline"
    return text


# -- the sub-command ------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_a", metavar="RUN_A", help="run folder, or run name under "
                        "<output-dir>/runs")
    parser.add_argument("run_b", metavar="RUN_B", help="the run to compare against")
    parser.add_argument("--judge", "--judges", action="append", metavar="J",
                        help="compare under these judges only (default: every shared judge)")
    parser.add_argument("--output-dir", "--output_dir", "--output-path", "--output_path",
                        dest="output_dir", default=DEFAULT_OUTPUT_DIR,
                        help="where run names are looked up (default: %(default)s)")
    parser.add_argument("--n-resamples", type=int, default=2000,
                        help="bootstrap resamples (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    if args.n_resamples < 1:
        raise BenchError("--n-resamples must be at least 1")
    run_a = load_run(resolve_run(args.run_a, args.output_dir))
    run_b = load_run(resolve_run(args.run_b, args.output_dir))
    common = shared_judges(run_a, run_b)
    wanted = [n.strip() for value in args.judge or () for n in value.split(",") if n.strip()]
    for name in wanted:
        if name not in common:
            raise unknown("judge", name, common,
                          f"Judges with verdicts in both runs: {', '.join(common) or 'none'}.")
    judges = wanted or common
    if not judges:
        raise BenchError(f"runs {run_a.name} and {run_b.name} have no judge in common; "
                         "re-judge one with `run_bench.py score` using the other's judges")
    comparisons = [c for judge in judges for c in compare_runs(
        run_a, run_b, judge, n_resamples=args.n_resamples, seed=args.seed)]
    changed = changed_documents(run_a, run_b)
    if changed:
        print(f"warning: {len(changed)} shared items differ in their document or images between "
              f"the runs (first: {'/'.join(map(str, changed[0]))}); the runs used different data",
              file=sys.stderr)
    overall = [c for c in comparisons if c.task == ALL_TASKS or
               not any(o.judge == c.judge and o.task == ALL_TASKS for o in comparisons)]
    sentences = [verdict(c, "A", "B") for c in overall]
    if args.json:
        print(json.dumps({"run_a": str(run_a.path), "run_b": str(run_b.path),
                          "comparisons": [asdict(c) for c in comparisons],
                          "verdicts": sentences}, indent=2))
        return 0
    _print_table(comparisons, run_a, run_b, sentences)
    return 0


def _print_table(comparisons: Sequence[Comparison], run_a: RunSamples, run_b: RunSamples,
                 sentences: Sequence[str]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.1f}%"

    console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
    table = Table(title=Text(terminal_text(f"A = {run_a.name}   B = {run_b.name}")),
                  title_justify="left")
    for column in ("judge", "task", "pairs", "images", "A", "B", "A - B [95% CI]", "only A",
                   "only B", "McNemar p", "unscored"):
        table.add_column(column)
    for c in comparisons:
        table.add_row(*(Text(terminal_text(x)) for x in (
            c.judge, c.task, str(c.n_paired), str(c.n_images), pct(c.accuracy_a),
            pct(c.accuracy_b),
            f"{_points(c.difference)} [{_points(c.ci_low)}, {_points(c.ci_high)}]",
            str(c.only_a), str(c.only_b), f"{c.p_value:.3g}", str(c.n_unscored))))
    console.print(table)
    for sentence in sentences:
        console.print(Text(terminal_text(sentence)))
