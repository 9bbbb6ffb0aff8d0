"""The ``openai`` adapter: any server speaking OpenAI's chat-completions protocol.

vLLM, TGI, SGLang, Ollama and hosted APIs all serve ``POST {base_url}/chat/completions``.
Images go inline as base64 data URLs; requests run concurrently up to a limit, each worker
thread keeping one connection alive across requests; 429s, 5xx,
timeouts, dropped connections, malformed JSON and empty choice lists are retried with
exponential backoff and full jitter (``Retry-After`` wins when the server sends it). A request
that still fails becomes ``Response(error=...)`` on its item and the batch goes on.

The API key is read from the environment variable named by ``api_key_env`` and lives only in
the request header: it must never reach ``init_args``, ``describe()``, ``fingerprint()``, an
error message or a log line. Only the standard library is used, so no SDK is needed.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import random
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

from harness.api_keys import api_key_from_env, scrub
from harness.errors import BenchError
from harness.hashing import stable_hash
from harness.models.base import Model
from harness.models.common import chat_messages, cut_at_stop, to_rgb
from harness.models.openai_http import ChatCompletionsClient
from harness.registry import register_model
from harness.safety import check_base_url
from harness.types import ImagePart, Request, Response

log = logging.getLogger(__name__)


@register_model("openai")
class OpenAIModel(Model):
    """A model behind an OpenAI-compatible chat-completions endpoint.

    Args:
        model: The model name the server knows (``"model"`` in the request body).
        base_url: The API root, e.g. ``http://localhost:8000/v1`` for vLLM; default
            ``$OPENAI_BASE_URL`` or ``https://api.openai.com/v1``.
        api_key_env: Name of the environment variable holding the key; ``None`` for servers
            without authentication.
        max_concurrency: Requests in flight at once.
        max_retries: Further attempts after the first one fails in a retryable way.
        timeout_s: Per-request socket timeout in seconds.
        backoff_s: Base of the exponential backoff (attempt n waits up to base * 2**n).
        max_backoff_s: Ceiling on one wait, ``Retry-After`` included.
        system_prompt: An optional system message before the prompt.
        image_format: ``PNG`` (lossless, default) or ``JPEG`` (smaller uploads).
        max_tokens_field: ``max_tokens``, or ``max_completion_tokens`` for APIs that want it.
        extra_body: More JSON fields for every request (e.g. vLLM's ``repetition_penalty``).
    """

    identity_arg = "model"

    def __init__(self, model: str, base_url: str | None = None,
                 api_key_env: str | None = "OPENAI_API_KEY", max_concurrency: int = 8,
                 max_retries: int = 6, timeout_s: float = 120.0, backoff_s: float = 1.0,
                 max_backoff_s: float = 60.0, system_prompt: str | None = None,
                 image_format: str = "PNG", max_tokens_field: str = "max_tokens",
                 extra_body: Mapping[str, Any] | None = None) -> None:
        self.model = model
        self.base_url = (base_url or os.environ.get("OPENAI_BASE_URL")
                         or "https://api.openai.com/v1").rstrip("/")
        check_base_url(self.base_url, "openai")
        self.api_key_env = api_key_env
        api_key = api_key_from_env(api_key_env, "openai") if api_key_env else None
        if max_concurrency < 1 or max_retries < 0 or timeout_s <= 0:
            raise BenchError("openai: max_concurrency must be >= 1, max_retries >= 0, timeout_s > 0")
        if image_format.upper() not in {"PNG", "JPEG"}:
            raise BenchError(f"openai: image_format must be PNG or JPEG, not '{image_format}'")
        self.max_concurrency, self.max_retries = max_concurrency, max_retries
        self.preferred_batch_size = max_concurrency  # a batch's requests run concurrently
        self.timeout_s, self.backoff_s, self.max_backoff_s = timeout_s, backoff_s, max_backoff_s
        self.system_prompt = system_prompt
        self.image_format = image_format.upper()
        self.max_tokens_field = max_tokens_field
        self.extra_body = dict(extra_body or {})
        self._jitter = random.Random()  # timing only: answers never depend on it
        self._image_cache: dict[str, str] = {}
        self._cache_lock = threading.Lock()
        # Kept-alive connections, reused across requests and batches (at most one per worker).
        self._client = ChatCompletionsClient(self.base_url, api_key, timeout_s, model)

    def __repr__(self) -> str:
        return f"OpenAIModel(model={self.model!r}, base_url={self.base_url!r})"

    # ----- request bodies ------------------------------------------------------------------

    def _data_url(self, part: ImagePart) -> str:
        with self._cache_lock:
            cached = self._image_cache.get(part.image_id)
        if cached is not None:
            return cached
        image = part.image
        if self.image_format == "JPEG" or image.mode not in {"RGB", "RGBA", "L"}:
            image = to_rgb(image)  # JPEG has no alpha; odd modes (CMYK, P, I;16) are not portable
        buffer = io.BytesIO()
        image.save(buffer, format=self.image_format)
        url = f"data:image/{self.image_format.lower()};base64,{base64.b64encode(buffer.getvalue()).decode()}"
        with self._cache_lock:
            self._image_cache[part.image_id] = url
        return url

    def _body(self, request: Request) -> dict[str, Any]:
        messages = chat_messages(
            request.parts, lambda part: {"type": "image_url", "image_url": {"url": self._data_url(part)}},
            self.system_prompt)
        settings = request.generation
        body: dict[str, Any] = {
            "model": self.model, "messages": messages, "seed": request.seed, "n": 1,
            self.max_tokens_field: settings.max_new_tokens,
            "temperature": settings.temperature,
        }
        if not settings.greedy and settings.top_p < 1.0:
            body["top_p"] = settings.top_p
        if not settings.greedy and settings.top_k > 0:
            body["top_k"] = settings.top_k  # vLLM/TGI extension; OpenAI itself rejects it
        if settings.until:
            body["stop"] = list(settings.until)[:4]  # OpenAI's limit; the rest are cut below
        body.update(self.extra_body)
        return body

    # ----- one request, with retries -------------------------------------------------------

    @staticmethod
    def _scrub(text: str) -> str:
        return scrub(text) or ""

    def _complete(self, request: Request) -> Response:
        try:
            body = json.dumps(self._body(request)).encode()
        except (OSError, ValueError, SyntaxError) as exc:  # PIL's errors for undecodable files
            return Response(request_id=request.request_id, error=f"unreadable image: {exc}")
        failures: list[str] = []
        for attempt in range(self.max_retries + 1):
            outcome = self._client.attempt(body, request.request_id)
            if isinstance(outcome, Response):
                return replace(outcome, text=cut_at_stop(outcome.text or "",
                                                         request.generation.until))
            failures.append(scrub(outcome.reason) or "")
            if not outcome.retry or attempt == self.max_retries:
                break
            wait = outcome.wait_s
            if wait is None:
                wait = self._jitter.uniform(0, self.backoff_s * 2 ** attempt)
            wait = min(wait, self.max_backoff_s)
            log.info("openai: %s failed (%s); retry %d/%d in %.2fs", request.request_id,
                     failures[-1], attempt + 1, self.max_retries, wait)
            time.sleep(wait)
        summary = failures[-1] if len(failures) == 1 else f"{len(failures)} attempts; last: {failures[-1]}"
        log.warning("openai: %s failed: %s", request.request_id, summary)
        return Response(request_id=request.request_id, error=summary)

    # ----- the Model interface -------------------------------------------------------------

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        if not requests:
            return []
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(requests))) as pool:
            futures = [pool.submit(self._complete, r) for r in requests]
            try:
                return [f.result() for f in futures]
            except BenchError:
                for future in futures:
                    future.cancel()
                raise

    def fingerprint(self) -> str:
        # Only what can change an answer: concurrency, retries and timeouts are left out, so a
        # run resumed with gentler settings for a struggling server finds its own folder.
        return stable_hash({"model": self.registry_name, "class": type(self).__qualname__,
                            "variant": self.variant, "served_model": self.model,
                            "base_url": self.base_url, "system_prompt": self.system_prompt,
                            "image_format": self.image_format,
                            "max_tokens_field": self.max_tokens_field,
                            "extra_body": self.extra_body})

    def identity(self) -> dict[str, Any]:
        # The weights live on the server: what it serves is named by URL and model here, and
        # what it reports running (system_fingerprint) is recorded per response.
        return {"source": "server", "base_url": self.base_url, "model": self.model}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "model": self.model, "base_url": self.base_url}
