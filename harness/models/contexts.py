"""Requests whose continuations follow different prompts, scored through any adapter.

lm-eval's multiple-input tasks (winogrande) score one continuation after each choice's
context, and ``acc_mutual_info`` scores each choice again after an empty context. A request
says so with ``Request.contexts``; here such a request becomes one single-continuation
request per context, so every adapter's ``loglikelihood`` serves it unchanged, and the
answers are joined back in order. It knows nothing of tasks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from harness.types import Request, Response


def loglikelihood_by_context(score: Callable[[Sequence[Request]], list[Response]],
                             requests: Sequence[Request]) -> list[Response]:
    """``score`` (a model's ``loglikelihood``) over ``requests``, each context its own row."""
    flat: list[Request] = []
    spans: list[tuple[int, int]] = []  # (first row, rows; 0 rows: the request as it is)
    for request in requests:
        if not request.contexts:
            spans.append((len(flat), 0))
            flat.append(request)
            continue
        if len(request.contexts) != len(request.continuations):
            raise ValueError(f"{request.request_id}: {len(request.contexts)} contexts for "
                             f"{len(request.continuations)} continuations")
        spans.append((len(flat), len(request.contexts)))
        flat.extend(replace(request, request_id=f"{request.request_id}#{row}", parts=context,
                            continuations=(continuation,), contexts=())
                    for row, (context, continuation) in enumerate(
                        zip(request.contexts, request.continuations)))
    scored = score(flat) if flat else []
    responses = []
    for request, (start, rows) in zip(requests, spans):
        if not rows:
            responses.append(scored[start])
            continue
        mine = scored[start:start + rows]
        lls = [r.loglikelihoods[0] for r in mine if r.loglikelihoods]
        if len(lls) < rows:  # a table with a hole in it would skew the choice
            error = next((r.error for r in mine if r.error is not None), None)
            responses.append(Response(request_id=request.request_id,
                                      error=error or "no log-likelihood for a context"))
            continue
        responses.append(Response(request_id=request.request_id, loglikelihoods=tuple(lls),
                                  model_revision=mine[0].model_revision))
    return responses
