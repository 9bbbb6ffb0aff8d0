"""lm-eval's metrics over a task's samples streaming by, one filtered value per item.

lm-eval filters an item's responses (its repeats) together, with the item's document, by
each ``filter_list`` pipeline, and scores each pipeline on the one value it leaves
(``take_first`` without a filter_list). ``ItemTally`` gathers an item's samples as they come
(in document order, repeats together), filters them by ``harness.tasks.filters``, and hands
one sample per item and pipeline, its response replaced by the filtered value, to a
``MetricTally`` per pipeline. Items are filtered a batch at a time, as lm-eval filters all
of them at once, so a filter's setup runs once per batch, not once per item.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.judges.metrics import NO_FILTER, Metric, MetricScorer, MetricTally
from harness.stats.lm_eval_stderr import BOOTSTRAP_ITERS
from harness.tasks.filters import apply_filters, build_pipelines, filter_views

#: Items filtered together.
BATCH = 256


def _unchanged(text: str | None) -> str | None:
    return text


def _constant(value: str | None) -> Callable[[str | None], str | None]:
    return lambda _text: value


@dataclass(frozen=True)
class ItemScorer(MetricScorer):
    """A ``MetricScorer`` whose pipelines read the sample's document too (a filter such as
    ``multi_choice_regex`` or a task's own filter class needs it): what the samples files log."""

    filter_list: tuple[Mapping[str, Any], ...] = ()
    where: str = "task"

    def per_filter(self, sample: Any) -> dict[str, dict[str, Any]]:
        if not self.filter_list:
            return super().per_filter(sample)
        rows: dict[str, dict[str, Any]] = {}
        for entry in self.filter_list:
            filtered = apply_filters([entry], sample.response, dict(sample.doc), self.where)
            name = str(entry.get("name", f"filter_{len(rows)}"))
            one = MetricScorer(self.metrics, self.output_type, ((name, _constant(filtered)),),
                               self.process_results)
            rows.update(one.per_filter(sample))
        return rows


class ItemTally:
    """A ``MetricTally`` per filter pipeline, fed one filtered sample per item."""

    def __init__(self, metrics: Sequence[Metric], output_type: str,
                 filter_list: Sequence[Mapping[str, Any]],
                 process_results: Callable[[Any, Any], Mapping[str, Any]] | None = None,
                 where: str = "task") -> None:
        self.filter_list, self.output_type, self.where = filter_list, output_type, where
        self.tallies = {p.name: MetricTally(metrics, output_type, [(p.name, _unchanged)],
                                            process_results)
                        for p in build_pipelines(filter_list, where)}
        #: Each pipeline applied to one response and its document: what the samples files log.
        self.scorer = ItemScorer(tuple(metrics), output_type, NO_FILTER, process_results,
                                 tuple(filter_list), where)
        self._items: list[list[Any]] = []

    def add(self, sample: Any) -> None:
        if self._items and self._items[-1][0].doc_id == sample.doc_id:
            self._items[-1].append(sample)
            return
        if len(self._items) >= BATCH:
            self._flush()
        self._items.append([sample])

    def _flush(self) -> None:
        samples = [s for item in self._items for s in item]
        self._items = []
        for name, view in filter_views(self.filter_list, samples, self.output_type, self.where):
            for sample in view:
                self.tallies[name].add(sample)

    def results(self, bootstrap_iters: int = BOOTSTRAP_ITERS) -> dict[str, dict[str, Any]]:
        self._flush()
        merged: dict[str, dict[str, Any]] = {}
        for tally in self.tallies.values():
            merged.update(tally.results(bootstrap_iters))
        return merged
