"""A task's output filters (lm-eval's ``filter_list``): what judges and metrics see of a response.

Each pipeline of a ``filter_list`` is a chain of lm-eval's filters (``harness.tasks.filter_steps``,
or a ``!function`` filter class as lm-eval allows); the metrics score every pipeline on its
own, one value per document, as lm-eval's ``FilterEnsemble`` gives them (``filter_views``);
without a filter_list the one pipeline is lm-eval's ``none`` (``take_first``). The first
pipeline, applied to each response alone, is what the judges see (``apply_filters``).
Pipelines are checked when a task is built, so a misspelt function fails before any model
loads. Nothing here renders a prompt.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from harness.errors import BenchError, did_you_mean
from harness.tasks.config import TaskConfig
from harness.tasks.filter_steps import FILTERS, TakeKFilter
from harness.tasks.yaml_io import FunctionRef

FILTER_FUNCTIONS = tuple(FILTERS)
#: Where a filter_list is left out, lm-eval keeps each item's first response.
DEFAULT_PIPELINE = ({"name": "none", "filter": [{"function": "take_first"}]},)


@dataclass(frozen=True)
class FilterPipeline:
    """One named pipeline; each step is made afresh per use, as lm-eval's ``FilterEnsemble``."""

    name: str
    steps: tuple[Callable[[], Any], ...]

    def apply(self, resps: Sequence[Sequence[Any]], docs: Sequence[Mapping[str, Any]],
              strict: bool = True) -> list[Any]:
        """One value per document from each document's responses (repeats in order)."""
        values: Any = resps
        for make in self.steps:
            step = make()
            if isinstance(step, TakeKFilter):
                step.strict = strict
            values = list(step.apply(values, docs))
        return values


def _step(where: str, step: Any) -> Callable[[], Any]:
    """One ``filter`` entry as a factory, tried once here so a bad option fails now."""
    function = step.get("function") if isinstance(step, dict) else None
    options = {k: v for k, v in step.items() if k != "function"} if isinstance(step, dict) else {}
    if isinstance(function, FunctionRef):  # a filter class of the task's own (lm-eval's get_filter)
        cls = function.load(f"{where}.function")
        if not isinstance(cls, type) or not callable(getattr(cls, "apply", None)):
            raise BenchError(f"{where}.function: {function} must name a filter class with an "
                             "apply(resps, docs) method")
    elif function in FILTERS:
        cls = FILTERS[function]
        if isinstance(options.get("filter_fn"), FunctionRef):
            options["filter_fn"] = options["filter_fn"].load(f"{where}.filter_fn")
        if function == "custom" and not callable(options.get("filter_fn")):
            raise BenchError(f"{where}.filter_fn: the custom filter needs "
                             "'filter_fn: !function file.name'")
    else:
        raise BenchError(f"{where}: unknown filter function '{function}'."
                         f"{did_you_mean(str(function), FILTER_FUNCTIONS)}")
    factory = functools.partial(cls, **options)
    try:
        factory()
    except TypeError as exc:
        raise BenchError(f"{where}: bad options for filter '{function}' ({exc})") from None
    except Exception as exc:  # e.g. re.error from a bad regex_pattern
        raise BenchError(f"{where}: filter '{function}' rejects its options ({exc})") from None
    return factory


def build_pipelines(filter_list: Sequence[Mapping[str, Any]], where: str) -> list[FilterPipeline]:
    """Every pipeline of a ``filter_list`` (lm-eval's ``none`` when it is empty), checked."""
    pipelines = []
    for number, pipeline in enumerate(filter_list or DEFAULT_PIPELINE):
        at = f"{where}:filter_list[{number}]"
        steps = pipeline.get("filter")
        if not isinstance(steps, list):
            raise BenchError(f"{at}: needs 'filter', a list of steps")
        pipelines.append(FilterPipeline(str(pipeline.get("name", f"filter_{number}")),
                                        tuple(_step(f"{at}.filter[{i}]", s) for i, s in enumerate(steps))))
    return pipelines


def check_filters(config: TaskConfig) -> None:
    """Every step of every ``filter_list`` pipeline is a known filter with valid options."""
    build_pipelines(config.filter_list, config.source)


def _single(value: Any) -> Any:
    """A document's filtered value: a one-response list as that response."""
    return value[0] if isinstance(value, list) and len(value) == 1 else value


def apply_filters(filter_list: Sequence[Mapping[str, Any]], text: str | None,
                  doc: Mapping[str, Any] | None = None, where: str = "task") -> str | None:
    """One response after the first pipeline (lm-eval's ``filtered_resps``), as text."""
    if text is None or not filter_list:
        return text
    pipeline = build_pipelines(filter_list[:1], where)[0]
    value = _single(pipeline.apply([[text]], [doc or {}], strict=False)[0])
    return value if isinstance(value, str) or value is None else str(value)


def filter_views(filter_list: Sequence[Mapping[str, Any]], samples: Sequence[Any], output_type: str,
                 where: str = "task") -> list[tuple[str, list[Any]]]:
    """Per pipeline, one sample per document whose ``response`` is that pipeline's value.

    The samples of a document (its repeats) are filtered together, as lm-eval filters an
    instance's responses; a task that is not ``generate_until`` is scored on each document's
    first repeat under every pipeline name, as lm-eval's ``take_first`` leaves it.
    """
    by_doc: dict[str, list[Any]] = {}
    for sample in samples:
        by_doc.setdefault(sample.doc_id, []).append(sample)
    groups = [sorted(group, key=lambda s: s.repeat) for group in by_doc.values()]
    firsts = [group[0] for group in groups]
    pipelines = build_pipelines(filter_list, where)
    if output_type != "generate_until" or not groups:
        return [(p.name, list(firsts)) for p in pipelines]
    resps = [[s.response if s.response is not None else "" for s in group] for group in groups]
    docs = [dict(s.doc) for s in firsts]
    views = []
    for pipeline in pipelines:
        values = pipeline.apply(resps, docs)
        views.append((pipeline.name, [dataclasses.replace(s, response=_single(v))
                                      for s, v in zip(firsts, values)]))
    return views
