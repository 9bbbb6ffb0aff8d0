"""lm-eval's filters: each step as lm-eval 0.4.13 computes it, pipelines per document."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from harness.errors import BenchError
from harness.tasks.filter_steps import FILTERS
from harness.tasks.filters import apply_filters, build_pipelines, filter_views
from harness.tasks.yaml_io import FunctionRef

RESPONSES = [["The answer is (B) then #### 12", "so 7, no, 8"], ["nothing here"],
             ["  #### -3.5 ", "#### 4"], ["I think: C", "Answer: (A) or B"], [""]]
DOCS = [{"choices": ["red apple", "green pear", "blue plum"]}] * len(RESPONSES)

#: (lm-eval's registered name, options): every built-in filter with the options tasks use.
CASES = [
    ("regex", {}),
    ("regex", {"regex_pattern": r"(\d+)|([A-D])", "group_select": -1, "fallback": " none "}),
    ("regex", {"regex_pattern": r"\((A|B|C)\)", "group_select": 0}),
    ("regex", {"regex_pattern": r"(x)?(y)?", "fallback": " [gone] "}),  # groups all empty
    ("multi_choice_regex", {"regex_pattern": r"(\([A-D]\))", "ignore_case": True,
                            "ignore_punctuation": True}),
    ("multi_choice_regex", {"regex_pattern": r"nomatch(\d)", "regexes_to_ignore": [","]}),
    ("take_first", {}),
    ("take_first_k", {"k": 1}),
    ("majority_vote", {}),
    ("lowercase", {}),
    ("uppercase", {}),
    ("remove_whitespace", {}),
    ("map", {"mapping_dict": {"": "empty", "nothing here": 0}, "default_value": -1}),
    ("format_span", {}),
]


@pytest.mark.parametrize(("name", "options"), CASES)
def test_each_filter_matches_lm_eval(name: str, options: dict[str, Any]) -> None:
    registry = pytest.importorskip("lm_eval.api.registry")
    pytest.importorskip("lm_eval.filters")
    theirs = list(registry.get_filter(name)(**options).apply(RESPONSES, DOCS))
    ours = FILTERS[name](**options).apply(RESPONSES, DOCS)
    assert ours == [list(t) if isinstance(t, list | tuple) else t for t in theirs]


def test_format_span_reads_named_entities() -> None:
    ours = FILTERS["format_span"]().apply([["Person: Ada, none\nLocation: Paris"]], [{}])
    assert ours == [["per: ada $ loc: paris"]]  # lm-eval lowercases the entities too


def test_regex_strips_and_falls_back_as_lm_eval() -> None:
    step = FILTERS["regex"](regex_pattern=r"is (\w+ ?)", fallback="[invalid]")
    assert step.apply([["it is yes ", "no"]], [{}]) == [["yes", "[invalid]"]]


def test_pipelines_take_repeats_together() -> None:
    filter_list = [{"name": "vote", "filter": [{"function": "take_first_k", "k": 3},
                                               {"function": "regex", "regex_pattern": r"(\d+)"},
                                               {"function": "majority_vote"},
                                               {"function": "take_first"}]}]
    pipeline = build_pipelines(filter_list, "t.yaml")[0]
    assert pipeline.apply([["a 1", "b 2", "c 2", "d 1"]], [{}]) == ["2"]
    with pytest.raises(BenchError, match="take_first_k: needs at least 3 responses per item, got 2"):
        pipeline.apply([["a 1", "b 2"]], [{}])
    # One response alone (what a judge sees) is filtered without asking for the repeats.
    assert apply_filters(filter_list, "x 5") == "5"


@dataclass(frozen=True)
class _Sample:
    doc_id: str
    repeat: int
    response: str | None
    doc: dict[str, Any] = field(default_factory=dict)


def test_filter_views_score_one_value_per_document_per_pipeline() -> None:
    samples = [_Sample("d1", 1, "(B)"), _Sample("d1", 0, "I pick blue plum"), _Sample("d2", 0, None)]
    samples = [s if s.doc_id == "d2" else _Sample(s.doc_id, s.repeat, s.response, DOCS[0])
               for s in samples]
    samples[2] = _Sample("d2", 0, None, DOCS[0])
    filter_list = [{"name": "strict", "filter": [{"function": "take_first"}]},
                   {"name": "flex", "filter": [{"function": "multi_choice_regex",
                                                "regex_pattern": r"(\([A-D]\))"},
                                               {"function": "take_first"}]}]
    views = dict(filter_views(filter_list, samples, "generate_until"))
    assert [s.response for s in views["strict"]] == ["I pick blue plum", ""]
    assert [s.response for s in views["flex"]] == ["(C)", "[invalid]"]
    # Without a filter_list, lm-eval's "none" keeps each item's first response.
    assert [s.response for s in dict(filter_views([], samples, "generate_until"))["none"]] == [
        "I pick blue plum", ""]
    # Other output types are scored on each item's first repeat under every name.
    assert [s.repeat for s in dict(filter_views(filter_list, samples, "multiple_choice"))["flex"]] == [0, 0]


def test_custom_and_function_filters(tmp_path: Path) -> None:
    (tmp_path / "fns.py").write_text(
        "def last_words(resps, docs):\n"
        "    return [[r.split()[-1] for r in inst] for inst in resps]\n\n"
        "class Shout:\n"
        "    def __init__(self, mark='!'):\n        self.mark = mark\n"
        "    def apply(self, resps, docs):\n"
        "        return [[r.upper() + self.mark for r in inst] for inst in resps]\n")
    filter_list = [{"name": "c", "filter": [
        {"function": "custom", "filter_fn": FunctionRef("fns.last_words", str(tmp_path))},
        {"function": FunctionRef("fns.Shout", str(tmp_path)), "mark": "?"},
        {"function": "take_first"}]}]
    assert build_pipelines(filter_list, "t.yaml")[0].apply([["so yes", "no"]], [{}]) == ["YES?"]


@pytest.mark.parametrize(("step", "message"), [
    ({"function": "take_frist"}, "unknown filter function 'take_frist'. Did you mean 'take_first'"),
    ({"function": "regex", "regex_pattern": "("}, "filter 'regex' rejects its options"),
    ({"function": "regex", "pattern": "x"}, "bad options for filter 'regex'"),
    ({"function": "take_first_k"}, "bad options for filter 'take_first_k'"),
    ({"function": "custom"}, r"filter_list\[0\].filter\[0\].filter_fn: the custom filter needs"),
])
def test_bad_filters_are_named(step: dict[str, Any], message: str) -> None:
    with pytest.raises(BenchError, match=message):
        build_pipelines([{"name": "f", "filter": [step]}], "t.yaml")
