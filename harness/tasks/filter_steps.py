"""lm-eval's filters, one class each, with lm-eval 0.4's exact semantics.

A step takes every document's responses at once (``resps``: one list per document, the
repeats in order) and the documents, and returns one value per document, as
``lm_eval.api.filter.Filter.apply`` does; ``take_first`` turns each list into its first
response, so the steps after it see strings. Nothing here knows a task or a sample.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any

from harness.errors import BenchError

Resps = Sequence[Any]
Docs = Sequence[Mapping[str, Any]]


class RegexFilter:
    """``regex``: the ``group_select``-th ``findall`` match, stripped; ``fallback`` if none."""

    def __init__(self, regex_pattern: str = r"#### (\-?[0-9\.\,]+)", group_select: int = 0,
                 fallback: str = "[invalid]") -> None:
        self.regex = re.compile(regex_pattern)
        self.group_select = group_select
        self.fallback = fallback

    def apply(self, resps: Resps, docs: Docs) -> list[Any]:
        def one(resp: Any) -> str:
            matches = self.regex.findall(resp if isinstance(resp, str) else "")
            if not matches:
                return self.fallback
            match = matches[self.group_select]
            if isinstance(match, tuple):
                match = next((m for m in match if m), self.fallback)
            return str(match).strip()

        return [[one(resp) for resp in inst] for inst in resps]


@cache
def _punctuation_table() -> dict[int, None]:
    return dict.fromkeys(i for i in range(sys.maxunicode)
                         if unicodedata.category(chr(i)).startswith("P"))


class MultiChoiceRegexFilter(RegexFilter):
    """``multi_choice_regex``: the regex, else a choice's text, else ``: X``, as a letter ``(X)``.

    Each document needs a ``choices`` list; ignore_case / ignore_punctuation /
    regexes_to_ignore apply to the choice-text step only.
    """

    def __init__(self, regex_pattern: str = r"#### (\-?[0-9\.\,]+)", group_select: int = 0,
                 fallback: str = "[invalid]", ignore_case: bool = False,
                 ignore_punctuation: bool = False, regexes_to_ignore: list[str] | None = None) -> None:
        super().__init__(regex_pattern, group_select, fallback)
        self.ignore_case = ignore_case
        self.ignore_punctuation = ignore_punctuation
        self.regexes_to_ignore = regexes_to_ignore

    def _find(self, regex: re.Pattern[str], resp: Any, convert: Mapping[str, str]) -> Any:
        matches = regex.findall(resp if isinstance(resp, str) else "")
        if not matches:
            return matches
        match = matches[self.group_select]
        if isinstance(match, tuple):
            non_empty = [m for m in match if m]
            if not non_empty:
                return ""
            match = non_empty[0]
        match = match.strip()
        return convert.get(match, match) if match else match

    def _ignores(self, text: str) -> str:
        for pattern in self.regexes_to_ignore or ():
            text = re.sub(pattern, "", text)
        if self.ignore_case:
            text = text.lower()
        if self.ignore_punctuation:
            text = text.translate(_punctuation_table())
        return text

    def apply(self, resps: Resps, docs: Docs) -> list[Any]:
        filtered = []
        for inst, doc in zip(resps, docs, strict=True):
            texts, to_letter, letters = [], {}, []
            for number, choice in enumerate(doc["choices"]):
                letter = chr(ord("A") + number)
                text = self._ignores(choice.strip())
                texts.append(re.escape(text))
                to_letter[text] = f"({letter})"
                letters.append(letter)
            # Longest first: alternation is leftmost-wins, so a choice that is a prefix of
            # another must not shadow it.
            by_text = re.compile("|".join(sorted(texts, key=len, reverse=True)))
            by_letter = re.compile(rf":[\s]*({'|'.join(letters)})")
            to_paren = {letter: f"({letter})" for letter in letters}
            row = []
            for resp in inst:
                match = self._find(self.regex, resp, {})
                if not match:
                    match = self._find(by_text, self._ignores(resp), to_letter)
                    if not match:
                        match = self._find(by_letter, resp, to_paren)
                row.append(match or self.fallback)
            filtered.append(row)
        return filtered


class TakeFirstFilter:
    """``take_first``: each document's first response."""

    def apply(self, resps: Resps, docs: Docs) -> list[Any]:
        return [r[0] for r in resps]


class TakeKFilter:
    """``take_first_k``: each document's first ``k`` responses (needs ``repeats`` >= k)."""

    def __init__(self, k: int) -> None:
        self.k = k
        #: Off where one response is filtered on its own (a sample's ``filtered_response``).
        self.strict = True

    def apply(self, resps: Resps, docs: Docs) -> list[Any]:
        resps = list(resps)
        if self.strict and resps and len(resps[0]) < self.k:
            raise BenchError(f"filter take_first_k: needs at least {self.k} responses per item, "
                             f"got {len(resps[0])}; raise repeats to {self.k}")
        return [r[:self.k] for r in resps]


class MajorityVoteFilter:
    """``majority_vote``: each document's most common response (first seen on a tie), as a list."""

    def apply(self, resps: Resps, docs: Docs) -> list[Any]:
        return [[Counter(r).most_common(1)[0][0]] for r in resps]


class _EachResponse:
    """A step that maps every response of every document."""

    def one(self, resp: Any) -> Any:
        raise NotImplementedError

    def apply(self, resps: Resps, docs: Docs) -> list[Any]:
        return [[self.one(resp) for resp in inst] for inst in resps]


class LowercaseFilter(_EachResponse):
    def one(self, resp: Any) -> Any:
        return resp.lower()


class UppercaseFilter(_EachResponse):
    def one(self, resp: Any) -> Any:
        return resp.upper()


class WhitespaceFilter(_EachResponse):
    """``remove_whitespace``: strips both ends (lm-eval 0.4.13)."""

    def one(self, resp: Any) -> Any:
        return resp.strip()


StripFilter = WhitespaceFilter  # this harness's older name, kept for its task files


class MapFilter(_EachResponse):
    """``map``: each response looked up in ``mapping_dict``, else ``default_value``."""

    def __init__(self, mapping_dict: dict[Any, Any] | None = None, default_value: Any = None) -> None:
        if not isinstance(mapping_dict or {}, dict):
            raise BenchError("filter map: mapping_dict must be a mapping")
        self.mapping_dict = mapping_dict or {}
        self.default_value = default_value

    def one(self, resp: Any) -> Any:
        return self.mapping_dict.get(resp, self.default_value)


_SPAN_LABELS = {"person": "PER", "location": "LOC", "organization": "ORG", "counties": "LOC",
                "places": "LOC", "people": "PER", "persons": "PER", "company": "ORG",
                "country": "LOC", "continent": "LOC", "time": "DATE", "date": "DATE",
                "per": "PER", "loc": "LOC", "org": "ORG"}


class SpanFilter(_EachResponse):
    """``format_span``: named entities as ``label: value $ label: value`` (lm-eval's NER form)."""

    def one(self, resp: Any) -> Any:
        text = resp.lower()
        for key, value in _SPAN_LABELS.items():
            text = re.sub(rf"\b{re.escape(key)}\s*:", f"{value}:", text)
        text = "$".join(text.split("$$")).rstrip("$")  # lm-eval writes rstrip("$$"), the same set
        text = text.replace("\n", "$").strip()
        entities = [f"{label.lower()}: {entity}"
                    for label, values in re.findall(r"\b(PER|LOC|ORG|DATE):\s*([^$]+)", text)
                    for entity in (v.strip() for v in values.split(","))
                    if entity.lower() != "none"]
        return " $ ".join(entities)


class CustomFilter:
    """``custom``: ``filter_fn(resps, docs)``, a ``!function`` of the task's."""

    def __init__(self, filter_fn: Callable[[Any, Any], Any]) -> None:
        self.filter_fn = filter_fn

    def apply(self, resps: Resps, docs: Docs) -> list[Any]:
        return list(self.filter_fn(resps, docs))


#: lm-eval's registered filter names (plus ``strip``, this harness's older name).
FILTERS: dict[str, type] = {
    "regex": RegexFilter, "multi_choice_regex": MultiChoiceRegexFilter,
    "take_first": TakeFirstFilter, "take_first_k": TakeKFilter, "majority_vote": MajorityVoteFilter,
    "lowercase": LowercaseFilter, "uppercase": UppercaseFilter,
    "remove_whitespace": WhitespaceFilter, "strip": StripFilter,
    "map": MapFilter, "format_span": SpanFilter, "custom": CustomFilter,
}
