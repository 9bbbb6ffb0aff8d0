"""A task's scores, tallied as its samples stream by: no sample is held.

What the scores read of a sample is counted as it goes by (``ScoreTally.add``): per image
(the cluster every interval resamples), the items, the polar items and their yes answers, the
prompts with shots and their echoes, the trap items; per judge and image, the scored and the
aligned verdicts; per polarity pair and image-contrast pair, its members' images and how many
are aligned; per breakdown value, the same per-image counts; per item, its repeats' outcomes.
The summary of each judge (``summary``) computes from those counts exactly what the same
intervals (``harness.stats.intervals``) compute over the samples themselves: clusters enter
in name order, and every count is an integer, so no sum depends on the order samples came in.

The metrics' meanings are ``harness.run.metrics``'; nothing here calls a model or writes a file.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import numpy as np

from harness.run.metrics import answer_polarity, echoes_a_shot, shot_answers
from harness.stats.bootstrap import RepeatTally
from harness.stats.intervals import Interval, mean_ci_of_totals, proportion_ci_of_totals
from harness.stats.stderr import cluster_stderr_of_totals

if TYPE_CHECKING:
    from harness.run.samples import Sample

#: The document fields a run's scores break down by.
BREAKDOWN_FIELDS = ("structure", "phrasing", "trap", "category")
#: The pairs whose members must both be aligned: (metric, document field).
PAIRS = (("pair_consistency", "pair_id"), ("image_reliance", "contrast_id"))
#: Per image, whatever the judge: items, polar items, yes answers, right answers yes,
#: prompts with shots, echoes, trap items.
ITEMS, POLAR, SAID_YES, EXPECTED_YES, SHOTS, ECHOES, TRAPS = range(7)
#: Per image and judge: scored verdicts, aligned verdicts, aligned trap items.
SCORED, ALIGNED, ALIGNED_TRAPS = range(3)
STATUSES = ("refusal", "unclear", "error")


def _add(counts: dict[str, list[int]], cluster: str, width: int, *values: tuple[int, int]) -> None:
    """Add ``(column, amount)`` pairs to ``cluster``'s row."""
    row = counts.get(cluster)
    if row is None:
        row = counts[cluster] = [0] * width
    for column, amount in values:
        row[column] += amount


def _interval(totals: Mapping[str, int], sizes: Mapping[str, int], share: bool = True) -> Interval:
    """The interval over the clusters with a size, in name order (as ``cluster_codes`` sorts)."""
    names = sorted(name for name, size in sizes.items() if size)
    total = np.array([totals.get(name, 0) for name in names], dtype=float)
    size = np.array([sizes[name] for name in names], dtype=float)
    return (proportion_ci_of_totals if share else mean_ci_of_totals)(total, size)


def _estimate(name: str, estimate: Interval) -> dict[str, Any]:
    return {name: estimate.value, f"{name}_ci_low": estimate.ci_low,
            f"{name}_ci_high": estimate.ci_high, f"{name}_n": estimate.n,
            f"{name}_n_clusters": estimate.n_clusters}


def _absent(name: str) -> dict[str, Any]:
    return {name: None, f"{name}_ci_low": None, f"{name}_ci_high": None, f"{name}_n": None,
            f"{name}_n_clusters": None}


def _column(rows: Mapping[str, list[int]], column: int) -> dict[str, int]:
    return {name: row[column] for name, row in rows.items()}


class _Group:
    """Samples counted together (a task, or one breakdown value): per image and judge."""

    def __init__(self) -> None:
        self.n = 0
        self.items: dict[str, int] = {}
        #: judge -> Counter of verdict statuses given (a sample without one is an error).
        self.statuses: dict[str, Counter[str]] = {}
        #: judge -> image -> [scored, aligned, aligned traps].
        self.verdicts: dict[str, dict[str, list[int]]] = {}

    def add(self, cluster: str, verdicts: Mapping[str, Mapping[str, Any]], trap: bool) -> None:
        self.n += 1
        self.items[cluster] = self.items.get(cluster, 0) + 1
        for judge, verdict in verdicts.items():
            status = verdict.get("status", "error")
            self.statuses.setdefault(judge, Counter())[status] += 1
            aligned = int(status == "ok" and bool(verdict.get("aligned")))
            _add(self.verdicts.setdefault(judge, {}), cluster, 3, (SCORED, int(status == "ok")),
                 (ALIGNED, aligned), (ALIGNED_TRAPS, aligned * trap))

    def rates(self, judge: str) -> dict[str, Any]:
        """Scored accuracy, its interval and the status rates (``summarize``'s first keys)."""
        rows = self.verdicts.get(judge, {})
        scored, aligned = _column(rows, SCORED), _column(rows, ALIGNED)
        estimate = _interval(aligned, scored)
        names = sorted(name for name, size in scored.items() if size)
        stderr = cluster_stderr_of_totals(np.array([aligned[c] for c in names], dtype=float),
                                          np.array([scored[c] for c in names], dtype=float))
        statuses = self.statuses.get(judge, Counter())
        # A sample without this judge's verdict counts as an error, as ``_rates`` read it.
        errors = statuses["error"] + self.n - sum(statuses.values())
        counts = {"refusal": statuses["refusal"], "unclear": statuses["unclear"], "error": errors}
        n = self.n
        return {
            "accuracy": estimate.value, "ci_low": estimate.ci_low, "ci_high": estimate.ci_high,
            "n_clusters": estimate.n_clusters, "ci_method": estimate.method,
            "ci_reliable": estimate.reliable, "stderr": stderr,
            "n": n, "n_scored": sum(scored.values()), "aligned": sum(aligned.values()),
            **{f"{status}_rate": counts[status] / n if n else None for status in STATUSES},
        }

    def strict(self, judge: str) -> dict[str, Any]:
        """Aligned over every sample (a missing, refused or unclear verdict is not aligned)."""
        aligned = _column(self.verdicts.get(judge, {}), ALIGNED)
        return _estimate("strict_accuracy", _interval(aligned, self.items))


class ScoreTally:
    """One task's score inputs, counted sample by sample; ``summary`` per judge."""

    def __init__(self) -> None:
        self.task = _Group()
        #: image -> [items, polar, said yes, expected yes, shots, echoes, traps].
        self.images: dict[str, list[int]] = {}
        self.has_field = dict.fromkeys(("trap", *(field for _, field in PAIRS)), False)
        #: field -> (value, repeat) -> [members, images...]; judge -> field -> key -> aligned.
        self.pairs: dict[str, dict[tuple[str, int], list[Any]]] = {f: {} for _, f in PAIRS}
        self.pairs_aligned: dict[str, dict[str, Counter[tuple[str, int]]]] = {}
        self.breakdown: dict[str, dict[str, _Group]] = {field: {} for field in BREAKDOWN_FIELDS}
        self.repeats: dict[str, RepeatTally] = {}
        self.repeated = False

    @property
    def judges(self) -> list[str]:
        """Every judge that gave a verdict, in the order they first did."""
        return list(self.task.statuses)

    def add(self, sample: Sample) -> None:
        doc, cluster, verdicts = sample.doc, sample.cluster, sample.verdicts
        trap = str(doc.get("trap")).lower() == "true"
        polar = sample.expected in ("yes", "no")
        with_shots = sample.loglikelihoods is None and bool(shot_answers(sample.prompt))
        _add(self.images, cluster, 7, (ITEMS, 1), (POLAR, polar), (TRAPS, trap),
             (SAID_YES, polar and answer_polarity(sample) == "yes"),
             (EXPECTED_YES, sample.expected == "yes"), (SHOTS, with_shots),
             (ECHOES, with_shots and echoes_a_shot(sample.response, sample.prompt)))
        self.task.add(cluster, verdicts, trap)
        for field in self.has_field:
            self.has_field[field] = self.has_field[field] or field in doc
        for _, field in PAIRS:
            value = doc.get(field)
            if value is None or value == "":
                continue
            key = (str(value), sample.repeat)
            self.pairs[field].setdefault(key, [0]).append(cluster)
            self.pairs[field][key][0] += 1
            for judge, verdict in verdicts.items():
                if verdict.get("status") == "ok" and verdict.get("aligned"):
                    self.pairs_aligned.setdefault(judge, {}).setdefault(field, Counter())[key] += 1
        for field, groups in self.breakdown.items():
            if field in doc:
                groups.setdefault(str(doc[field]).lower(), _Group()).add(cluster, verdicts, trap)
        self.repeated = self.repeated or sample.repeat > 0
        for judge in self.task.statuses:
            verdict = verdicts.get(judge, {})
            self.repeats.setdefault(judge, RepeatTally()).add(
                bool(verdict.get("aligned")) if verdict.get("status") == "ok" else None,
                sample.doc_id, sample.repeat)

    def _both_right(self, name: str, field: str, judge: str) -> dict[str, Any]:
        if not self.has_field[field]:
            return _absent(name)
        aligned = self.pairs_aligned.get(judge, {}).get(field, Counter())
        totals: dict[str, int] = {}
        sizes: dict[str, int] = {}
        for key, (members, *images) in self.pairs[field].items():
            if members != 2:
                continue  # a partner cut off by --limit, or a malformed group: nothing to pair
            cluster = "|".join(sorted(set(images)))
            sizes[cluster] = sizes.get(cluster, 0) + 1
            totals[cluster] = totals.get(cluster, 0) + (aligned[key] == 2)
        return _estimate(name, _interval(totals, sizes))

    def summary(self, judge: str) -> dict[str, Any]:
        """``harness.run.samples.summarize``'s summary of this task for ``judge``."""
        images, rows = self.images, self.task.verdicts.get(judge, {})
        polar = _column(images, POLAR)
        said_yes = _column(images, SAID_YES)
        bias = {name: said_yes[name] - row[EXPECTED_YES] for name, row in images.items()}
        summary = {**self.task.rates(judge), **self.task.strict(judge),
                   **self._both_right(*PAIRS[0], judge),
                   **_estimate("yes_rate", _interval(said_yes, polar)),
                   **_estimate("yes_bias", _interval(bias, polar, share=False)),
                   **self._both_right(*PAIRS[1], judge),
                   **(_estimate("trap_accuracy", _interval(_column(rows, ALIGNED_TRAPS),
                                                           _column(images, TRAPS)))
                      if self.has_field["trap"] else _absent("trap_accuracy")),
                   **_estimate("echo_rate", _interval(_column(images, ECHOES),
                                                      _column(images, SHOTS)))}
        summary["breakdown"] = {
            field: {value: {**group.rates(judge), **group.strict(judge)}
                    for value, group in sorted(groups.items())}
            for field, groups in self.breakdown.items() if groups}
        if self.repeated:
            summary["repeat_stats"] = asdict(self.repeats[judge].stats())
        return summary


def scores_of(tallies: Mapping[str, ScoreTally]) -> dict[str, dict[str, Any]]:
    """``{task: {judge: summary}}`` over every judge that gave verdicts."""
    return {task: {judge: tally.summary(judge) for judge in tally.judges}
            for task, tally in tallies.items()}


def scores_by_task(samples: Iterable[Sample], seed: int = 0) -> dict[str, dict[str, Any]]:
    """``{task: {judge: summary}}`` of ``samples`` (read one at a time).

    ``seed`` is kept for callers; no interval draws anything."""
    tallies: dict[str, ScoreTally] = {}
    for sample in samples:
        tallies.setdefault(sample.task, ScoreTally()).add(sample)
    return scores_of(tallies)
