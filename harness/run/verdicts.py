"""The per-run verdict journal and the cross-run verdict cache.

For judges that ``remember`` (their verdict depends only on their settings and the input,
and costs a model call), every verdict is appended to the run folder's ``verdicts.jsonl``
as soon as it exists, so a killed ``score`` or run resumes without asking again; and to
``<output-dir>/cache/verdicts-<judge>.jsonl``, so the same question put to the same judge
is never paid for twice. Both are keyed by ``Judge.input_key``. A verdict that records a
failed attempt (``Judge.worth_retrying``) is journalled but asked again and never cached.
Other judges (hand labels, cheap rules) are simply called.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.files import JsonlAppender, iter_jsonl
from harness.types import JudgeInput, Verdict

VERDICTS_FILE = "verdicts.jsonl"


def _verdict(row: dict[str, Any]) -> Verdict | None:
    data = row.get("verdict")
    if not isinstance(data, dict) or row.get("retry"):
        return None
    try:
        return Verdict(**data)
    except TypeError:
        return None  # a line written by an incompatible version: ask again


class _KeyedLines:
    """A JSON Lines file of ``{"key", "verdict", ...}``: read once, appended per verdict."""

    def __init__(self, path: Path) -> None:
        self.path = path
        hint = "pass --no-cache or choose another --output-dir"
        # Opening drops a killed writer's unfinished last line before it is read.
        self._writer = JsonlAppender(path, hint)
        self.verdicts = {str(row.get("key")): v for _, row in iter_jsonl(path)
                         if (v := _verdict(row)) is not None}

    def add(self, key: str, verdict: Verdict, **extra: Any) -> None:
        self._writer.write({"key": key, "verdict": verdict.to_dict(), **extra})
        if not extra.get("retry"):
            self.verdicts[key] = verdict

    def close(self) -> None:
        self._writer.close()


class VerdictMemory:
    """The run's verdict journal plus (unless ``cache_dir`` is None) the shared cache."""

    def __init__(self, run_dir: Path, cache_dir: Path | None) -> None:
        self.journal = _KeyedLines(Path(run_dir) / VERDICTS_FILE)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._caches: dict[str, _KeyedLines] = {}
        #: Verdicts taken from the cache (not asked, not from this run's journal), per judge.
        self.cache_hits: dict[str, int] = {}

    def _cache(self, judge_name: str) -> _KeyedLines | None:
        if self.cache_dir is None:
            return None
        if judge_name not in self._caches:
            safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", judge_name)
            self._caches[judge_name] = _KeyedLines(self.cache_dir / f"verdicts-{safe}.jsonl")
        return self._caches[judge_name]

    def judge(self, judge: Any, inputs: Sequence[JudgeInput]) -> list[Verdict]:
        """``judge.judge(inputs)``, asking only what neither the journal nor the cache holds."""
        name = judge.registry_name
        cache = self._cache(name)
        keys = [judge.input_key(item) for item in inputs]
        found: dict[str, Verdict] = {}
        for key in dict.fromkeys(keys):
            verdict = self.journal.verdicts.get(key)
            if verdict is None and cache is not None and key in cache.verdicts:
                verdict = cache.verdicts[key]
                self.journal.add(key, verdict, judge=name, cached=True)
                self.cache_hits[name] = self.cache_hits.get(name, 0) + 1
            if verdict is not None:
                found[key] = verdict
        # One question per distinct key, in input order: equal inputs share one verdict.
        todo = [(key, inputs[keys.index(key)]) for key in dict.fromkeys(keys) if key not in found]
        chunk = max(1, int(getattr(judge, "batch_size", 0) or 16))
        for start in range(0, len(todo), chunk):
            part = todo[start:start + chunk]
            verdicts = judge.judge([item for _, item in part])
            if len(verdicts) != len(part):
                raise RuntimeError(f"judge {name} returned {len(verdicts)} verdicts for {len(part)} inputs")
            for (key, item), verdict in zip(part, verdicts):
                retry = bool(judge.worth_retrying(verdict))
                self.journal.add(key, verdict, judge=name, sample_key=item.sample_key,
                                 cached=False, retry=retry)
                if cache is not None and not retry:
                    cache.add(key, verdict, judge=name)
                found[key] = verdict
        return [found[key] for key in keys]

    def close(self) -> None:
        self.journal.close()
        for cache in self._caches.values():
            cache.close()
