"""The per-run response journal and the cross-run response cache.

The journal (``responses.jsonl`` in a run folder) gets one flushed line per response as soon
as it exists, so a run killed at any moment resumes by generating only what is missing. The
cache (``<output-dir>/cache/<model fingerprint>.jsonl``) maps a request's content and seed to
its response, so the same request to the same model is never paid for twice. Neither knows
about tasks or judges.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from harness.files import JsonlAppender, JsonlLines, iter_jsonl
from harness.hashing import stable_hash
from harness.run.folder import RunFolder
from harness.safety import scrub
from harness.types import ImagePart, Request, Response

#: What to do when the journal or the cache cannot be written.
JOURNAL_HINT = "free disk space or choose another --output-dir (the run resumes where it stopped)"


def _response_record(response: Response, cached: bool) -> dict[str, Any]:
    # Scrubbed here too, whatever the adapter did: no API key is ever journalled or cached.
    return {
        "request_id": response.request_id, "response": scrub(response.text),
        "loglikelihoods": list(response.loglikelihoods) if response.loglikelihoods else None,
        "error": scrub(response.error), "cached": cached,
        "prompt_tokens": response.prompt_tokens, "completion_tokens": response.completion_tokens,
        **({"model_revision": response.model_revision} if response.model_revision else {}),
    }


def _response_from(data: dict[str, Any], request_id: str) -> Response:
    scores = data.get("loglikelihoods")
    return Response(request_id=request_id, text=data.get("response"),
                    loglikelihoods=tuple(float(s) for s in scores) if scores else None,
                    error=data.get("error"), prompt_tokens=_tokens(data.get("prompt_tokens")),
                    completion_tokens=_tokens(data.get("completion_tokens")),
                    model_revision=data.get("model_revision"))


def _tokens(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class Journal:
    """``responses.jsonl``: what exists, and each new response appended at once.

    The journal is the store: it keeps only where each response's line is, and reads a
    response back when asked, so a run never holds all its responses at once.
    """

    def __init__(self, folder: RunFolder) -> None:
        self.path = folder.journal
        # Opening cuts an unfinished last line (a killed writer's); damaged lines are skipped.
        self._appender = JsonlAppender(self.path, JOURNAL_HINT)
        self._offsets: dict[str, int] = {}
        self._failed: set[str] = set()
        for offset, row in iter_jsonl(self.path, offsets=True):
            self._remember(str(row.get("request_id")), offset, row.get("error") is not None)
        self._lines: JsonlLines | None = None

    def _remember(self, request_id: str, offset: int, failed: bool) -> None:
        self._offsets[request_id] = offset  # a later line (a retry) replaces an earlier one
        if failed:
            self._failed.add(request_id)
        else:
            self._failed.discard(request_id)

    def done(self, request_id: str) -> bool:
        """A response exists and is not a failure (failures are retried on resume)."""
        return request_id in self._offsets and request_id not in self._failed

    def add(self, response: Response, cached: bool = False) -> None:
        offset = self._appender.end  # the appender flushed every earlier line
        self._appender.write(_response_record(response, cached))
        self._remember(response.request_id, offset, response.error is not None)

    def read(self, request_id: str) -> tuple[Response, bool]:
        """The journal's response to ``request_id`` and whether it came from the cache."""
        if self._lines is None:
            self._lines = JsonlLines(self.path)
        row = self._lines.read_at(self._offsets[request_id])
        return _response_from(row, request_id), bool(row.get("cached"))

    def close(self) -> None:
        self._appender.close()
        if self._lines is not None:
            self._lines.close()
            self._lines = None


def request_key(request: Request, kind: str, image_ablation: str = "none") -> str:
    """The cache key of a request: its content, settings, image ablation (when not ``none``)
    and (where it matters) its seed."""
    parts = [p.image_id if isinstance(p, ImagePart) else ["text", p.text] for p in request.parts]
    content: dict[str, Any] = {"kind": kind, "parts": parts}
    if image_ablation != "none":
        content["image_ablation"] = image_ablation
    if kind == "loglikelihood":
        content["continuations"] = list(request.continuations)
        if request.contexts:
            content["contexts"] = [[p.image_id if isinstance(p, ImagePart) else ["text", p.text]
                                    for p in context] for context in request.contexts]
    else:
        generation = request.generation
        content["generation"] = [generation.max_new_tokens, generation.temperature,
                                 generation.top_k, generation.top_p, list(generation.until)]
        if not generation.greedy:
            content["seed"] = request.seed
    return stable_hash(content, 32)


class ResponseCache:
    """Responses of one model by request key, shared by every run in an output folder."""

    def __init__(self, cache_dir: Path, fingerprint: str) -> None:
        self.path = cache_dir / f"{fingerprint}.jsonl"
        self.entries: dict[str, dict[str, Any]] = {}
        self._appender = JsonlAppender(self.path, "pass --no-cache or choose another --output-dir")
        for _, row in iter_jsonl(self.path):
            self.entries[str(row.get("key"))] = row

    def get(self, key: str, request_id: str) -> Response | None:
        row = self.entries.get(key)
        return _response_from(row, request_id) if row is not None else None

    def put(self, key: str, response: Response) -> None:
        if response.error is not None:
            return  # a failure is worth retrying, not remembering
        row = {**_response_record(response, False), "key": key}
        self._appender.write(row)
        self.entries[key] = row

    def close(self) -> None:
        self._appender.close()
