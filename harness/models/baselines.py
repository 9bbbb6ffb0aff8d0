"""Baseline models: fixed, random and oracle answers, first-class on the leaderboard.

They show what a score means: ``always-yes`` scores the share of yes items, ``random`` scores
chance, and ``oracle`` (which reads the reference answer) must score 100% with a sound judge.
For multiple-choice requests they return log-likelihoods whose argmax is their answer.
"""

from __future__ import annotations

import random
from abc import abstractmethod
from collections.abc import Sequence

from harness.models.base import Model
from harness.registry import register_model
from harness.types import Request, Response

#: The log-likelihood given to the choices a baseline does not pick.
UNCHOSEN_LOGLIKELIHOOD = -10.0


def _normalise(text: str) -> str:
    return text.strip().strip(".!").lower()


def _picked(choice: int, n_continuations: int) -> tuple[float, ...]:
    """Log-likelihoods that make ``choice`` the argmax: 0 for it, far below for the others."""
    return tuple(0.0 if i == choice else UNCHOSEN_LOGLIKELIHOOD for i in range(n_continuations))


class _Baseline(Model):
    """A model whose answer is a function of the request alone."""

    @abstractmethod
    def answer(self, request: Request) -> str | None:
        """The text this baseline answers, or None when it has none."""

    @abstractmethod
    def choose(self, request: Request) -> int | None:
        """Index of the continuation this baseline picks, or None when it cannot pick."""

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        return [Response(r.request_id, text=text) if (text := self.answer(r)) is not None
                else Response(r.request_id, error="no answer available") for r in requests]

    def loglikelihood(self, requests: Sequence[Request]) -> list[Response]:
        return [Response(r.request_id, loglikelihoods=_picked(choice, len(r.continuations)))
                if (choice := self.choose(r)) is not None
                else Response(r.request_id, error="cannot pick a continuation") for r in requests]


class _Fixed(_Baseline):
    word = "yes"

    def answer(self, request: Request) -> str:
        return f"{self.word.capitalize()}."

    def choose(self, request: Request) -> int:
        normalised = [_normalise(c) for c in request.continuations]
        if self.word in normalised:
            return normalised.index(self.word)
        # No yes/no choice: always-yes takes the first choice and always-no the last.
        return 0 if self.word == "yes" else len(normalised) - 1


@register_model("always-yes")
class AlwaysYes(_Fixed):
    """Answers "Yes." to everything."""

    word = "yes"


@register_model("always-no")
class AlwaysNo(_Fixed):
    """Answers "No." to everything."""

    word = "no"


@register_model("random")
class RandomAnswer(_Baseline):
    """Answers "Yes." or "No." at random, seeded by the request's own seed."""

    def answer(self, request: Request) -> str:
        return random.Random(request.seed).choice(["Yes.", "No."])

    def choose(self, request: Request) -> int:
        return random.Random(request.seed).randrange(len(request.continuations))


@register_model("oracle")
class Oracle(_Baseline):
    """Returns the reference answer (or the gold continuation): an end-to-end check of judges."""

    def answer(self, request: Request) -> str | None:
        return request.target

    def choose(self, request: Request) -> int | None:
        if request.target in request.continuations:
            return request.continuations.index(request.target)
        return None
