"""Paired comparisons of runs over the items they share: the computation ``compare`` prints.

Items pair by (task, doc_id, repeat). For each judge the runs share, an item counts when both
verdicts are scored (status ``ok``); refusals, unclear and failed verdicts are left out and
counted. Questions about one image are not independent, and one item is asked at several shot
counts, so the test treats the *image* as the unit (a sample's cluster, ``Sample.cluster``):
each image gives the mean of A - B over all its paired items (in every task of the row), and a
sign-flip permutation test runs on those per-image means (``harness.stats.paired``; McNemar's
test when each image has one item). The effect is the difference in accuracy (A - B) with a
cluster-robust t interval over images. With three or more runs every pair is compared and the
p-values are Holm-adjusted over the pairs, per judge and task.

This module reads run folders through ``harness.run.folder``; it runs no model or judge,
writes nothing and prints nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import combinations
from pathlib import Path

from harness.errors import BenchError, did_you_mean
from harness.run.folder import RunFolder, runs_dir
from harness.run.samples import Sample
from harness.stats.intervals import mean_ci
from harness.stats.paired import clustered_paired_test, holm

ALL_TASKS = "(all tasks)"
SampleKey = tuple[str, str, int]


@dataclass(frozen=True)
class RunSamples:
    """One run's samples by (task, doc_id, repeat)."""

    name: str
    path: Path
    samples: Mapping[SampleKey, Sample]


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
    runs = runs_dir(output_dir)
    if (runs / spec).is_dir():
        return runs / spec
    names = sorted(p.name for p in runs.iterdir() if p.is_dir()) if runs.is_dir() else []
    raise BenchError(f"no run folder '{spec}' (looked for it as a path and under {runs})."
                     f"{did_you_mean(spec, names)} Pass a run folder or a run name")


def load_run(folder: Path) -> RunSamples:
    """The samples of the run in ``folder``, by (task, doc_id, repeat); a damaged folder is an
    error naming what to do."""
    run = RunFolder(folder)
    path = run.samples_file
    samples: dict[SampleKey, Sample] = {}
    for sample in run.iter_samples():
        key = (sample.task, str(sample.doc_id), int(sample.repeat))
        if key in samples:
            raise BenchError(f"{path}: sample {key[0]}/{key[1]}/{key[2]} appears twice; the "
                             "run folder is damaged: rerun it")
        samples[key] = sample
    return RunSamples(folder.name, folder, samples)


def _aligned(sample: Sample, judge: str) -> bool | None:
    verdict = sample.verdicts.get(judge)
    if not isinstance(verdict, Mapping) or verdict.get("status") != "ok":
        return None
    aligned = verdict.get("aligned")
    return bool(aligned) if aligned is not None else None


# -- comparing ------------------------------------------------------------------------------

def shared_judges(*runs: RunSamples) -> list[str]:
    """The judges with verdicts in every one of ``runs``."""
    return sorted(set.intersection(*({j for s in run.samples.values() for j in s.verdicts}
                                     for run in runs)))


def changed_documents(run_a: RunSamples, run_b: RunSamples) -> list[SampleKey]:
    """Shared items whose document hash differs: the same id, but not the same question."""
    return [key for key in sorted(set(run_a.samples) & set(run_b.samples))
            if run_a.samples[key].doc_hash and run_b.samples[key].doc_hash
            and run_a.samples[key].doc_hash != run_b.samples[key].doc_hash]


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
        clusters.append(run_a.samples[key].cluster)
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
