"""A task's output filters (lm-eval's ``filter_list``): what judges see of a response.

Only the first pipeline gives what judges see (lm-eval's ``filtered_resps``); lm-eval's
metrics score every pipeline on its own (``filter_pipelines``). Checked when a task is built,
so a misspelt function fails before any model loads. Nothing here renders a prompt.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from harness.errors import BenchError, did_you_mean
from harness.tasks.config import TaskConfig

FILTER_FUNCTIONS = ("regex", "take_first", "lowercase", "uppercase", "remove_whitespace", "strip")


def check_filters(config: TaskConfig) -> None:
    """Every step of every ``filter_list`` pipeline is a known filter with valid options."""
    for number, pipeline in enumerate(config.filter_list):
        steps = pipeline.get("filter")
        if not isinstance(steps, list):
            raise BenchError(f"{config.source}:filter_list[{number}]: needs 'filter', a list of steps")
        for step in steps:
            function = step.get("function") if isinstance(step, dict) else None
            if function not in FILTER_FUNCTIONS:
                raise BenchError(f"{config.source}:filter_list[{number}]: unknown filter function "
                                 f"'{function}'.{did_you_mean(str(function), FILTER_FUNCTIONS)}")
            if function == "regex":
                try:
                    re.compile(step.get("regex_pattern", ""))
                except re.error as exc:
                    raise BenchError(f"{config.source}:filter_list[{number}]: bad regex_pattern "
                                     f"({exc})") from None


def apply_filters(filter_list: Sequence[Mapping[str, Any]], text: str | None) -> str | None:
    """The response after the first filter pipeline (lm-eval's ``filtered_resps``)."""
    if text is None or not filter_list:
        return text
    return apply_pipeline(filter_list[0]["filter"], text)


def filter_pipelines(filter_list: Sequence[Mapping[str, Any]]
                     ) -> list[tuple[str, Callable[[str | None], str | None]]]:
    """Every pipeline of a ``filter_list`` as (name, function); each is scored on its own."""

    def pipeline(steps: Sequence[Mapping[str, Any]]) -> Callable[[str | None], str | None]:
        return lambda text: None if text is None else apply_pipeline(steps, text)

    return [(str(p.get("name", f"filter_{n}")), pipeline(p["filter"])) for n, p in enumerate(filter_list)]


def apply_pipeline(steps: Sequence[Mapping[str, Any]], text: str) -> str:
    """One pipeline's steps applied in order."""
    for step in steps:
        function = step["function"]
        if function == "regex":
            matches = re.findall(step.get("regex_pattern", ""), text)
            if not matches:
                text = step.get("fallback", "[invalid]")
                continue
            match = matches[int(step.get("group_select", 0))]
            text = match if isinstance(match, str) else next((m for m in match if m), match[0])
        elif function == "lowercase":
            text = text.lower()
        elif function == "uppercase":
            text = text.upper()
        elif function == "remove_whitespace":
            text = text.lstrip()
        elif function == "strip":
            text = text.strip()
    return text
