"""Requests with a prompt per continuation, split into rows any adapter scores, joined back."""

from __future__ import annotations

from collections.abc import Sequence

from harness.models.contexts import loglikelihood_by_context
from harness.types import Request, Response, TextPart


def _score(seen: list[tuple[str, tuple[str, ...]]]):  # noqa: ANN202
    def score(requests: Sequence[Request]) -> list[Response]:
        responses = []
        for request in requests:
            seen.append((request.text, request.continuations))
            if "broken" in request.text:
                responses.append(Response(request.request_id, error="too long"))
            else:
                responses.append(Response(request.request_id, loglikelihoods=tuple(
                    -float(len(request.text) + len(c)) for c in request.continuations)))
        return responses
    return score


def test_each_context_is_a_row_and_the_rows_join_in_order() -> None:
    seen: list[tuple[str, tuple[str, ...]]] = []
    plain = Request("p", (TextPart("ctx"),), continuations=(" a", " bb"))
    split = Request("s", (), continuations=(" end", " end", " x"),
                    contexts=((TextPart("one"),), (TextPart("three"),), ()))
    broken = Request("b", (), continuations=(" y", " z"),
                     contexts=((TextPart("fine"),), (TextPart("broken"),)))
    responses = loglikelihood_by_context(_score(seen), [plain, split, broken])
    assert seen == [("ctx", (" a", " bb")), ("one", (" end",)), ("three", (" end",)), ("", (" x",)),
                    ("fine", (" y",)), ("broken", (" z",))]
    assert [r.request_id for r in responses] == ["p", "s", "b"]
    assert responses[0].loglikelihoods == (-5.0, -6.0)
    assert responses[1].loglikelihoods == (-7.0, -9.0, -2.0)
    assert responses[2].loglikelihoods is None and responses[2].error == "too long"
