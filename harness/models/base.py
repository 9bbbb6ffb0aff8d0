"""The interface every model adapter implements.

An adapter turns batches of ``Request``s into ``Response``s. It knows nothing of tasks,
judges or reports. Its answer to a request must depend only on that request (its content,
generation settings and seed), never on the other requests in the batch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

from harness.errors import BenchError
from harness.hashing import stable_hash
from harness.identity import identity_digest
from harness.types import Request, Response


class Model(ABC):
    """Base class for model adapters.

    The registry sets ``registry_name`` and ``init_args`` on every instance it builds, so a
    run can record exactly how its model was made.
    """

    registry_name: str = "unnamed"
    init_args: dict[str, Any] = {}
    #: A label for a modified model (e.g. a finetuned one); None for the published weights.
    variant: str | None = None
    #: The argument that says *which* model a generic adapter serves (``pretrained`` for
    #: ``hf``). When a user passes it, the registry names the model ``adapter:value`` so that
    #: two such models are told apart on the leaderboard.
    identity_arg: str | None = None
    #: Requests per call when the user gives no ``--batch-size``: what the adapter batches
    #: (or sends concurrently) well. Results never depend on it.
    preferred_batch_size: int = 1

    @abstractmethod
    def generate(self, requests: Sequence[Request]) -> list[Response]:
        """Sample one continuation per request."""

    def loglikelihood(self, requests: Sequence[Request]) -> list[Response]:
        """Log-probability of each of ``request.continuations`` after the prompt."""
        raise BenchError(
            f"model '{self.registry_name}' cannot score log-likelihoods; "
            "use a generate_until task instead of a multiple_choice one"
        )

    def loglikelihood_rolling(self, requests: Sequence[Request]) -> list[Response]:
        """Log-probability of each request's whole prompt text (``loglikelihoods`` of length 1)."""
        raise BenchError(
            f"model '{self.registry_name}' cannot score rolling log-likelihoods; "
            "use a text model (--model hf on a causal LM) for perplexity tasks"
        )

    def identity(self) -> dict[str, Any]:
        """What the model's answers come from, by content (see ``harness.identity``).

        Weights and every file that shapes the prompt (tokenizer, processor, chat template,
        generation config) by digest, or a hub commit, or what a server reports. Empty for
        models that are all code (the baselines). It is part of ``fingerprint()``, so a new
        model at the same path gets a new run folder and a new cache.
        """
        return {}

    def refusal(self, request: Request) -> str | None:
        """Why this model cannot answer ``request`` at all, or None; checked before a run.

        A run whose every request of a task is refused stops with that reason before it
        starts; otherwise each refused request becomes an error on its item.
        """
        return None

    def fingerprint(self) -> str:
        """A hash that changes whenever the model's answers could change (weights, settings)."""
        identity = self.identity()
        return stable_hash({"model": self.registry_name, "class": type(self).__qualname__,
                            "args": self.init_args, "variant": self.variant,
                            **({"identity": identity} if identity else {})})

    def describe(self) -> dict[str, Any]:
        """What a report records about the model."""
        identity = self.identity()
        return {"name": self.registry_name, "args": self.init_args, "variant": self.variant,
                "fingerprint": self.fingerprint(), "identity": identity,
                "identity_digest": identity_digest(identity) if identity else None}
