"""The ``compare`` sub-command: paired comparisons of runs, printed as a table or JSON.

The comparisons (items paired by task, doc_id and repeat; a permutation test and a
cluster-robust interval with the image as the unit; Holm over pairs of runs) are computed by
``harness.commands.compare_runs``; this module parses the flags, finds the run folders, and
says in plain words what each comparison shows. It never runs models or judges and writes
nothing.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, replace
from itertools import combinations

from harness.arguments import split_names
from harness.commands.compare_runs import (
    ALL_TASKS,
    Comparison,
    RunSamples,
    changed_documents,
    compare_all,
    load_run,
    resolve_run,
    shared_judges,
)
from harness.errors import BenchError, unknown
from harness.paths import DEFAULT_OUTPUT_DIR
from harness.safety import terminal_text
from harness.stats.intervals import RELIABLE_MIN_CLUSTERS

ALPHA = 0.05
__all__ = ["ALL_TASKS", "Comparison", "compare_all", "load_run", "resolve_run", "verdict",
           "add_arguments", "run"]


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
    wanted = split_names(args.judge)
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
