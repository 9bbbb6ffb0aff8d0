"""One call to a chat-completions endpoint: post on a kept-alive connection, read, classify.

``ChatCompletionsClient.attempt`` sends one request body and returns either the reply as a
``Response`` (its text, token counts and the revision the server reported) or a ``Failure``
saying why and whether trying again may help. A status that means the setup is wrong (key,
URL, model name) raises a ``BenchError``, as every item would fail alike. Every text that
comes back is scrubbed of the API key. This module retries nothing and builds no request body:
the ``openai`` adapter does both.
"""

from __future__ import annotations

import email.utils
import http.client
import io
import json
import threading
import time
import urllib.error
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.api_keys import scrub
from harness.errors import BenchError
from harness.types import Response

_RETRY_STATUS = {408, 409, 425, 429}
# Statuses that mean the setup is wrong (key, URL, model name): every item would fail alike.
_FATAL_STATUS = {401: "the server rejected the API key", 403: "the API key may not use this model",
                 404: "no such endpoint or model"}


@dataclass(frozen=True)
class Failure:
    """One failed attempt: why, whether trying again may help, and how long the server asked to wait."""

    reason: str
    retry: bool
    wait_s: float | None = None


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def _retry_after(headers: Any) -> float | None:
    """Seconds from ``retry-after-ms`` / ``Retry-After`` (seconds or an HTTP date), if sent."""
    if headers is None:
        return None
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _served_revision(payload: Mapping[str, Any]) -> str | None:
    """``model@system_fingerprint`` from a reply, whichever parts the server sent."""
    served, fingerprint = payload.get("model"), payload.get("system_fingerprint")
    parts = [str(v) for v in (served, fingerprint) if v]
    return "@".join(parts) if parts else None


def _scrub(text: str) -> str:
    return scrub(text) or ""


class ChatCompletionsClient:
    """``POST {base_url}/chat/completions`` with a pool of kept-alive connections (at most one
    per thread that uses it at once)."""

    def __init__(self, base_url: str, api_key: str | None, timeout_s: float, model: str) -> None:
        self.base_url, self.timeout_s, self.model = base_url, timeout_s, model
        self._api_key = api_key
        self._pool: list[http.client.HTTPConnection] = []
        self._pool_lock = threading.Lock()

    def _new_connection(self) -> http.client.HTTPConnection:
        url = urllib.parse.urlsplit(self.base_url)
        kind = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        return kind(url.hostname or "localhost", url.port, timeout=self.timeout_s)

    def _post(self, body: bytes, headers: Mapping[str, str]) -> tuple[int, Any, bytes]:
        """POST on a pooled kept-alive connection; one the server closed while idle is replaced."""
        path = urllib.parse.urlsplit(self.base_url).path.rstrip("/") + "/chat/completions"
        while True:
            with self._pool_lock:
                connection = self._pool.pop() if self._pool else None
            reused = connection is not None
            connection = connection or self._new_connection()
            try:
                connection.request("POST", path, body=body, headers=dict(headers))
                reply = connection.getresponse()
                raw = reply.read()
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                connection.close()
                if reused:
                    continue  # an idle connection the server had closed: not a failed attempt
                raise
            except BaseException:
                connection.close()
                raise
            if reply.will_close:
                connection.close()
            else:
                with self._pool_lock:
                    self._pool.append(connection)
            return reply.status, reply.headers, raw

    def attempt(self, body: bytes, request_id: str) -> Response | Failure:
        """One try: the reply (text not yet cut at stop strings) or why it failed."""
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        try:
            status, reply_headers, raw = self._post(body, headers)
            if status >= 400:
                raise urllib.error.HTTPError(f"{self.base_url}/chat/completions", status,
                                             "", reply_headers, io.BytesIO(raw))
        except urllib.error.HTTPError as exc:
            # Scrubbed whole, then cut: a cut first could leave a key's fragment behind.
            detail = _scrub(exc.read(65536).decode("utf-8", "replace").strip().replace("\n", " "))
            if exc.code in _FATAL_STATUS:
                raise BenchError(f"openai: HTTP {exc.code} from {self.base_url} for model "
                                 f"'{self.model}': {_FATAL_STATUS[exc.code]}; check the model "
                                 f"card's model, base_url and api_key_env") from None
            retry = exc.code in _RETRY_STATUS or exc.code >= 500
            return Failure(f"HTTP {exc.code}: {detail[:200]}", retry, _retry_after(exc.headers))
        except TimeoutError:
            return Failure(f"timed out after {self.timeout_s:g}s", True)
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                return Failure(f"timed out after {self.timeout_s:g}s", True)
            return Failure(f"connection failed: {_scrub(str(exc.reason))}", True)
        except (ConnectionError, http.client.HTTPException, OSError) as exc:
            return Failure(f"connection failed: {type(exc).__name__}: {_scrub(str(exc))}", True)
        try:
            payload = json.loads(raw)
            choices = payload["choices"]
        except (ValueError, KeyError, TypeError):
            return Failure(f"malformed JSON reply: {self._raw(raw)[:120]!r}", True)
        if not choices:
            return Failure("reply had an empty choice list", True)
        try:
            text = choices[0]["message"]["content"]
        except (KeyError, TypeError, IndexError):
            return Failure(f"reply without choices[0].message.content: {self._raw(raw)[:120]!r}",
                            True)
        if isinstance(text, list):  # some servers answer in content parts, like the request
            text = "".join(p.get("text", "") for p in text if isinstance(p, dict))
        usage = payload.get("usage") if isinstance(payload, dict) else None
        usage = usage if isinstance(usage, dict) else {}
        revision = _served_revision(payload) if isinstance(payload, dict) else None
        return Response(request_id, text="" if text is None else _scrub(str(text)),
                        prompt_tokens=_count(usage.get("prompt_tokens")),
                        completion_tokens=_count(usage.get("completion_tokens")),
                        model_revision=_scrub(revision) if revision else None)

    def _raw(self, raw: bytes) -> str:
        return _scrub(raw.decode("utf-8", "replace"))
