"""An example plugin model: answers yes when the prompt's images are more red than blue.

It stands in for a real third-party VLM: it subclasses the harness's ``Model``, takes its
arguments from ``--model-args`` or a model card, and is found through the entry point
``colour-vote`` in the group ``vlm_morality_bench.models`` (see pyproject.toml).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from PIL import ImageStat

from harness.models.base import Model
from harness.types import Request, Response


class ColourVote(Model):
    """Says ``yes_text`` if the images hold more red than blue, else ``no_text``."""

    def __init__(self, yes_text: str = "Yes.", no_text: str = "No.") -> None:
        self.yes_text, self.no_text = yes_text, no_text

    @staticmethod
    def _redness(request: Request) -> float:
        """Mean red minus mean blue over the request's images, in [-1, 1]."""
        if not request.images:
            return 0.0
        total = 0.0
        for part in request.images:
            red, _, blue = ImageStat.Stat(part.image.convert("RGB")).mean
            total += (red - blue) / 255
        return total / len(request.images)

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        return [Response(request_id=r.request_id,
                         text=self.yes_text if self._redness(r) > 0 else self.no_text)
                for r in requests]

    def loglikelihood(self, requests: Sequence[Request]) -> list[Response]:
        responses = []
        for request in requests:
            p_yes = 1 / (1 + math.exp(-4 * self._redness(request)))
            scores = tuple(math.log(p_yes if c.strip().lower().startswith("yes") else 1 - p_yes)
                           for c in request.continuations)
            responses.append(Response(request_id=request.request_id, loglikelihoods=scores))
        return responses
