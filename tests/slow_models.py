"""A test-only model for subprocess runs: slow on demand, and it logs what it generates.

``VMB_TEST_DELAY_S`` sleeps that long per request (so a test can kill a run mid-way);
``VMB_TEST_GENERATED_LOG`` names a file that gets one line "RANK REQUEST_ID" per generated
request (RANK is the launcher's process rank, 0 without a launcher).
Its answer depends only on the request's prompt and seed, as every adapter's must.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from harness.hashing import derive_seed
from harness.models.base import Model
from harness.registry import register_model
from harness.types import Request, Response

ANSWERS = ("Yes.", "No.", "Yes, of course.", "No, never.", "I cannot say.")


@register_model("slow-echo")
class SlowEcho(Model):
    """Answers from a hash of (prompt, seed); sleeps and logs when the environment asks."""

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        responses = []
        for request in requests:
            self._wait_and_log(request)
            pick = derive_seed(request.text, request.seed) % len(ANSWERS)
            responses.append(Response(request.request_id, text=ANSWERS[pick]))
        return responses

    def loglikelihood(self, requests: Sequence[Request]) -> list[Response]:
        responses = []
        for request in requests:
            self._wait_and_log(request)
            scores = tuple(-(derive_seed(request.text, c) % 1000) / 100
                           for c in request.continuations)
            responses.append(Response(request.request_id, loglikelihoods=scores))
        return responses

    @staticmethod
    def _wait_and_log(request: Request) -> None:
        time.sleep(float(os.environ.get("VMB_TEST_DELAY_S", "0")))
        log = os.environ.get("VMB_TEST_GENERATED_LOG")
        if log:
            with open(log, "a", encoding="utf-8") as handle:
                handle.write(f"{os.environ.get('RANK', '0')} {request.request_id}\n")
