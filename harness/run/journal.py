"""The per-run response journal and the cross-run response cache.

The journal (``responses.jsonl`` in a run folder) gets one flushed line per response as soon
as it exists, so a run killed at any moment resumes by generating only what is missing. The
cache (``<output-dir>/cache/<model fingerprint>.jsonl``) maps a request's content and seed to
its response, so the same request to the same model is never paid for twice. Neither knows
about tasks or judges.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from harness.errors import BenchError
from harness.hashing import stable_hash
from harness.safety import scrub
from harness.types import ImagePart, Request, Response


def _response_to_line(response: Response, cached: bool) -> str:
    # Scrubbed here too, whatever the adapter did: no API key is ever journalled or cached.
    return json.dumps({
        "request_id": response.request_id, "response": scrub(response.text),
        "loglikelihoods": list(response.loglikelihoods) if response.loglikelihoods else None,
        "error": scrub(response.error), "cached": cached,
        "prompt_tokens": response.prompt_tokens, "completion_tokens": response.completion_tokens,
        **({"model_revision": response.model_revision} if response.model_revision else {}),
    }, ensure_ascii=False) + "\n"


def _response_from(data: dict[str, Any], request_id: str) -> Response:
    scores = data.get("loglikelihoods")
    return Response(request_id=request_id, text=data.get("response"),
                    loglikelihoods=tuple(float(s) for s in scores) if scores else None,
                    error=data.get("error"), prompt_tokens=_tokens(data.get("prompt_tokens")),
                    completion_tokens=_tokens(data.get("completion_tokens")),
                    model_revision=data.get("model_revision"))


def _tokens(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _read_lines(path: Path) -> list[dict[str, Any]]:
    """Valid JSON lines of ``path``; a damaged line (a crash mid-write) is skipped."""
    rows: list[dict[str, Any]] = []
    if not path.exists():
        return rows
    with path.open(encoding="utf-8", errors="replace") as handle:
        for line in handle:
            if not line.endswith("\n"):
                break  # the unfinished last line of a killed writer
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(row, dict):
                rows.append(row)
    return rows


def _truncate_partial_tail(path: Path) -> None:
    """Cut an unfinished last line so the next append starts a clean line."""
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as handle:
        data = handle.read()
        if data.endswith(b"\n"):
            return
        handle.truncate(data.rfind(b"\n") + 1)


def _append(handle: Any, line: str) -> None:
    try:
        # A flush survives kill -9 (the kernel has the bytes); fsync per line would cost
        # milliseconds per response for protection only against power loss.
        handle.write(line)
        handle.flush()
    except OSError as exc:
        raise _write_error(handle.name, exc) from None


def _write_error(name: str, exc: OSError) -> BenchError:
    return BenchError(f"cannot write {name}: {exc.strerror}; free disk space or choose "
                      "another --output-dir (the run resumes where it stopped)")


def _close(handle: Any, failed: bool) -> None:
    """Close an append handle; after a failed write its error is the one to report.

    The buffer of a file whose flush failed (a full disk) still holds the line, so ``close``
    fails again; raised from a ``finally``, that second error would hide the first.
    """
    try:
        handle.close()
    except OSError as exc:
        if not failed:
            raise _write_error(handle.name, exc) from None


class Journal:
    """``responses.jsonl``: read what exists, append each new response at once."""

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / "responses.jsonl"
        _truncate_partial_tail(self.path)
        self.responses: dict[str, Response] = {}
        self.cached: dict[str, bool] = {}
        for row in _read_lines(self.path):
            request_id = str(row.get("request_id"))
            self.responses[request_id] = _response_from(row, request_id)
            self.cached[request_id] = bool(row.get("cached"))
        self._handle = self.path.open("a", encoding="utf-8")
        self._failed = False

    def done(self, request_id: str) -> bool:
        """A response exists and is not a failure (failures are retried on resume)."""
        response = self.responses.get(request_id)
        return response is not None and response.error is None

    def add(self, response: Response, cached: bool = False) -> None:
        response = dataclasses.replace(response, text=scrub(response.text),
                                       error=scrub(response.error))
        self._failed = True  # until the line is written
        _append(self._handle, _response_to_line(response, cached))
        self._failed = False
        self.responses[response.request_id] = response
        self.cached[response.request_id] = cached

    def close(self) -> None:
        _close(self._handle, self._failed)


def request_key(request: Request, kind: str, image_ablation: str = "none") -> str:
    """The cache key of a request: its content, settings, image ablation (when not ``none``)
    and (where it matters) its seed."""
    parts = [p.image_id if isinstance(p, ImagePart) else ["text", p.text] for p in request.parts]
    content: dict[str, Any] = {"kind": kind, "parts": parts}
    if image_ablation != "none":
        content["image_ablation"] = image_ablation
    if kind == "loglikelihood":
        content["continuations"] = list(request.continuations)
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
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
            _truncate_partial_tail(self.path)
            for row in _read_lines(self.path):
                self.entries[str(row.get("key"))] = row
            self._handle = self.path.open("a", encoding="utf-8")
            self._failed = False
        except OSError as exc:
            raise BenchError(f"cannot use the cache {cache_dir}: {exc.strerror}; "
                             "pass --no-cache or choose another --output-dir") from None

    def get(self, key: str, request_id: str) -> Response | None:
        row = self.entries.get(key)
        return _response_from(row, request_id) if row is not None else None

    def put(self, key: str, response: Response) -> None:
        if response.error is not None:
            return  # a failure is worth retrying, not remembering
        row = json.loads(_response_to_line(response, False))
        row["key"] = key
        self._failed = True  # until the line is written
        _append(self._handle, json.dumps(row, ensure_ascii=False) + "\n")
        self._failed = False
        self.entries[key] = row

    def close(self) -> None:
        _close(self._handle, self._failed)
