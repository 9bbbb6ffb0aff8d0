"""The ``compare`` sub-command: paired comparisons of runs over the items they share.

Items pair by (task, doc_id, repeat). For each judge the runs share, an item counts when both
verdicts are scored (status ``ok``); refusals, unclear and failed verdicts are left out and
counted. Questions about one image are not independent, and one item is asked at several shot
counts, so the test treats the *image* as the unit: each image gives the mean of A - B over
all its paired items (in every task of the row), and a sign-flip permutation test runs on
those per-image means (``harness.stats.paired``; McNemar's test when each image has one item).
The effect is the difference in accuracy (A - B) with a cluster-robust t interval over images.
With three or more runs every pair is compared and the p-values are Holm-adjusted over the
pairs, per judge and task.

This module only reads run folders; it never runs models or judges and writes nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from itertools import combinations
from pathlib import Path
from typing import Any

from harness.errors import BenchError, did_you_mean, unknown
from harness.run.report import read_sample_dicts
from harness.safety import terminal_text
from harness.stats.clusters import image_cluster
from harness.stats.intervals import RELIABLE_MIN_CLUSTERS, mean_ci
from harness.stats.paired import clustered_paired_test, holm

DEFAULT_OUTPUT_DIR = "output"  # the run command's default (harness.commands.cli)
ALL_TASKS = "(all tasks)"
ALPHA = 0.05
SampleKey = tuple[str, str, int]


@dataclass(frozen=True)
class RunSamples:
    """One run's samples by (task, doc_id, repeat)."""

    name: str
    path: Path
    samples: Mapping[SampleKey, Mapping[str, Any]]


@dataclass(frozen=True)
class Comparison:
    """Paired result of run A against run B under one judge, on one task or on all of them.

    ``p_value`` is the test's mid-p, ``p_exact`` its conservative p-value, ``min_p`` the
    smallest exact p-value these images allow; ``p_holm`` the Holm-adjusted p-value over every
    pair of runs compared (None with two runs). ``n_images`` counts each image once, however
    many tasks and shot counts ask about it.
    """

    run_a: str
    run_b: str
    judge: str
    task: str
    n_paired: int
    n_unscored: int
    accuracy_a: float | None
    accuracy_b: float | None
    difference: float | None
    ci_low: float | None
    ci_high: float | None
    ci_method: str
    only_a: int
    only_b: int
    method: str
    p_value: float
    p_exact: float
    min_p: float
    n_images: int
    n_images_differing: int
    p_holm: float | None = None


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


def _aligned(sample: Mapping[str, Any], judge: str) -> bool | None:
    verdict = (sample.get("verdicts") or {}).get(judge)
    if not isinstance(verdict, Mapping) or verdict.get("status") != "ok":
        return None
    aligned = verdict.get("aligned")
    return bool(aligned) if aligned is not None else None


# -- comparing ------------------------------------------------------------------------------

def shared_judges(*runs: RunSamples) -> list[str]:
    """The judges with verdicts in every one of ``runs``."""
    return sorted(set.intersection(*({j for s in run.samples.values()
                                       for j in (s.get("verdicts") or {})} for run in runs)))


def changed_documents(run_a: RunSamples, run_b: RunSamples) -> list[SampleKey]:
    """Shared items whose document hash differs: the same id, but not the same question."""
    return [key for key in sorted(set(run_a.samples) & set(run_b.samples))
            if run_a.samples[key].get("doc_hash") and run_b.samples[key].get("doc_hash")
            and run_a.samples[key]["doc_hash"] != run_b.samples[key]["doc_hash"]]


def compare_runs(run_a: RunSamples, run_b: RunSamples, judge: str, *,
                 n_permutations: int = 10_000, seed: int = 0) -> list[Comparison]:
    """One comparison per shared task, then one over all shared items (task ``ALL_TASKS``)."""
    keys = sorted(set(run_a.samples) & set(run_b.samples))
    if not keys:
        raise BenchError(f"runs {run_a.name} and {run_b.name} share no item (task, doc_id, "
                         "repeat); compare runs of the same tasks")
    tasks = sorted({key[0] for key in keys})
    groups = [(task, [k for k in keys if k[0] == task]) for task in tasks]
    if len(tasks) > 1:
        groups.append((ALL_TASKS, keys))
    return [_compare_keys(run_a, run_b, judge, task, group, n_permutations, seed)
            for task, group in groups]


def _compare_keys(run_a: RunSamples, run_b: RunSamples, judge: str, task: str,
                  keys: Sequence[SampleKey], n_permutations: int, seed: int) -> Comparison:
    a_outcomes: list[bool] = []
    b_outcomes: list[bool] = []
    clusters: list[str] = []
    for key in keys:
        a, b = _aligned(run_a.samples[key], judge), _aligned(run_b.samples[key], judge)
        if a is None or b is None:
            continue
        a_outcomes.append(a)
        b_outcomes.append(b)
        sample = run_a.samples[key]
        clusters.append(image_cluster(sample.get("image_ids"), sample.get("doc_id"),
                                      sample.get("cluster_id")))
    test = clustered_paired_test(a_outcomes, b_outcomes, clusters,
                                 n_permutations=n_permutations, seed=seed)
    diff = mean_ci([float(a) - float(b) for a, b in zip(a_outcomes, b_outcomes)], clusters)
    n = len(a_outcomes)
    return Comparison(
        run_a=run_a.name, run_b=run_b.name, judge=judge, task=task, n_paired=n,
        n_unscored=len(keys) - n,
        accuracy_a=sum(a_outcomes) / n if n else None,
        accuracy_b=sum(b_outcomes) / n if n else None,
        difference=diff.value, ci_low=diff.ci_low, ci_high=diff.ci_high, ci_method=diff.method,
        only_a=test.only_a, only_b=test.only_b, method=test.method, p_value=test.p_value,
        p_exact=test.p_exact, min_p=test.min_p, n_images=test.n_clusters,
        n_images_differing=test.n_clusters_differing)


def compare_all(runs: Sequence[RunSamples], judges: Sequence[str], *,
                n_permutations: int = 10_000, seed: int = 0) -> list[Comparison]:
    """Every pair of ``runs`` under every judge; with three or more runs, the p-values of each
    (judge, task) are Holm-adjusted over the pairs."""
    comparisons = [c for first, second in combinations(runs, 2) for judge in judges
                   for c in compare_runs(first, second, judge, n_permutations=n_permutations,
                                         seed=seed)]
    if len(runs) < 3:
        return comparisons
    families: dict[tuple[str, str], list[int]] = {}
    for index, c in enumerate(comparisons):
        families.setdefault((c.judge, c.task), []).append(index)
    adjusted = list(comparisons)
    for members in families.values():
        for index, p in zip(members, holm([comparisons[i].p_value for i in members])):
            adjusted[index] = replace(comparisons[index], p_holm=p)
    return adjusted


def _points(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:+.1f}"


def verdict(comparison: Comparison, name_a: str, name_b: str, alpha: float = ALPHA) -> str:
    """A plain-words reading of one comparison."""
    c = comparison
    if c.n_paired == 0:
        return (f"judge {c.judge}: no item was scored in both runs "
                f"({c.n_unscored} refused, unclear or failed); nothing to compare")
    p = c.p_value if c.p_holm is None else c.p_holm
    effect = (f"A - B = {_points(c.difference)} points (95% CI {_points(c.ci_low)} to "
              f"{_points(c.ci_high)}); {c.method} p = {c.p_value:.3g} (mid-p; exact "
              f"{c.p_exact:.3g}) on {c.n_images} images ({c.n_images_differing} differ; "
              f"{c.n_paired} paired items, {c.only_a + c.only_b} discordant)")
    if c.p_holm is not None:
        effect += f"; Holm-adjusted over every pair of runs: p = {c.p_holm:.3g}"
    if p < alpha:
        better, worse = (name_a, name_b) if (c.difference or 0.0) > 0 else (name_b, name_a)
        text = f"judge {c.judge}: {better} is significantly more aligned than {worse} at 95%: "
    else:
        text = f"judge {c.judge}: no significant difference at 95%: "
    text += effect
    if c.min_p / 2 >= alpha and c.n_images_differing:
        text += (f"; with {c.n_images_differing} images that differ no result can reach "
                 f"p < {alpha:g}: compare on more images")
    elif c.n_images < RELIABLE_MIN_CLUSTERS:
        text += f"; fewer than {RELIABLE_MIN_CLUSTERS} images: the interval is unreliable"
    ci_excludes_zero = c.ci_low is not None and c.ci_high is not None and (
        c.ci_low > 0 or c.ci_high < 0)
    if ci_excludes_zero != (p < alpha):
        text += "; the interval and the test disagree, so read it as borderline"
    return text


# -- the sub-command ------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("runs", metavar="RUN", nargs="+",
                        help="two or more run folders, or run names under <output-dir>/runs; "
                        "with three or more every pair is compared (Holm-adjusted)")
    parser.add_argument("--judge", "--judges", action="append", metavar="J",
                        help="compare under these judges only (default: every shared judge)")
    parser.add_argument("--output-dir", "--output_dir", "--output-path", "--output_path",
                        dest="output_dir", default=DEFAULT_OUTPUT_DIR,
                        help="where run names are looked up (default: %(default)s)")
    parser.add_argument("--n-permutations", "--n-resamples", dest="n_permutations", type=int,
                        default=10_000, help="random sign patterns when there are too many "
                        "images to enumerate them all (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of those random patterns")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    if args.n_permutations < 1:
        raise BenchError("--n-permutations must be at least 1")
    if len(args.runs) < 2:
        raise BenchError("compare needs at least two runs: run_bench.py compare RUN_A RUN_B "
                         "[RUN_C ...]")
    runs = [load_run(resolve_run(spec, args.output_dir)) for spec in args.runs]
    names = [r.name for r in runs]
    if len(set(names)) < len(names):
        runs = [replace(r, name=str(r.path)) for r in runs]
    common = shared_judges(*runs)
    wanted = [n.strip() for value in args.judge or () for n in value.split(",") if n.strip()]
    for name in wanted:
        if name not in common:
            raise unknown("judge", name, common,
                          f"Judges with verdicts in every run: {', '.join(common) or 'none'}.")
    judges = wanted or common
    if not judges:
        raise BenchError(f"runs {', '.join(r.name for r in runs)} have no judge in common; "
                         "re-judge one with `run_bench.py score` using the other's judges")
    comparisons = compare_all(runs, judges, n_permutations=args.n_permutations, seed=args.seed)
    for first, second in combinations(runs, 2):
        changed = changed_documents(first, second)
        if changed:
            print(f"warning: {len(changed)} shared items differ in their document or images "
                  f"between {first.name} and {second.name} (first: "
                  f"{'/'.join(map(str, changed[0]))}); the runs used different data",
                  file=sys.stderr)
    overall = [c for c in comparisons if c.task == ALL_TASKS or not any(
        (o.run_a, o.run_b, o.judge, o.task) == (c.run_a, c.run_b, c.judge, ALL_TASKS)
        for o in comparisons)]
    two = len(runs) == 2
    sentences = [verdict(c, "A" if two else c.run_a, "B" if two else c.run_b)
                 if two else f"{c.run_a} vs {c.run_b}, " + verdict(c, c.run_a, c.run_b)
                 for c in overall]
    if args.json:
        print(json.dumps({"runs": [str(r.path) for r in runs],
                          "run_a": str(runs[0].path), "run_b": str(runs[1].path),
                          "p_adjustment": None if two else "holm",
                          "comparisons": [asdict(c) for c in comparisons],
                          "verdicts": sentences}, indent=2))
        return 0
    _print_table(comparisons, runs, sentences)
    return 0


def _print_table(comparisons: Sequence[Comparison], runs: Sequence[RunSamples],
                 sentences: Sequence[str]) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.1f}%"

    two = len(runs) == 2
    title = (f"A = {runs[0].name}   B = {runs[1].name}" if two else
             f"every pair of {len(runs)} runs; p Holm-adjusted over the "
             f"{len(runs) * (len(runs) - 1) // 2} pairs")
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 180)
    table = Table(title=Text(terminal_text(title)), title_justify="left",
                  caption=Text("p: mid-p of a sign-flip permutation test on per-image mean "
                               "differences (McNemar with one item per image); images: each "
                               "counted once over tasks and shots; CI: cluster-robust t"))
    columns = ([] if two else ["A", "B"]) + [
        "judge", "task", "pairs", "images", "acc A", "acc B", "A - B [95% CI]", "only A",
        "only B", "p", *([] if two else ["Holm p"]), "unscored"]
    for column in columns:
        table.add_column(column)
    for c in comparisons:
        cells = ([] if two else [c.run_a, c.run_b]) + [
            c.judge, c.task, str(c.n_paired),
            str(c.n_images) + ("" if c.n_images >= RELIABLE_MIN_CLUSTERS else " unreliable"),
            pct(c.accuracy_a), pct(c.accuracy_b),
            f"{_points(c.difference)} [{_points(c.ci_low)}, {_points(c.ci_high)}]",
            str(c.only_a), str(c.only_b), f"{c.p_value:.3g}",
            *([] if two else [f"{c.p_holm:.3g}" if c.p_holm is not None else "-"]),
            str(c.n_unscored)]
        table.add_row(*(Text(terminal_text(x)) for x in cells))
    console.print(table)
    for sentence in sentences:
        console.print(Text(terminal_text(sentence)))
