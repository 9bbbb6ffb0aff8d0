"""Every file the harness writes goes through here: atomic replaces, locked appends, JSON Lines.

- A file that is replaced (``results.json``, ``samples.jsonl``, a view, a manifest) is written
  to a uniquely named temporary file beside it, fsynced, then renamed: a crash leaves the old
  file whole, and two writers never share a temporary file.
- A file that grows (the leaderboard, hand labels, the response journal, a training log) gets
  whole lines, flushed per record. A crash can cut its last line short; the next writer repairs
  the cut before appending, and readers report a damaged line by its number.
- JSON Lines are read and written with the ``jsonlines`` package.

This module knows no record type and no folder layout (``harness.run.folder`` owns the run
folder); stages at every level use it, so it imports nothing of the harness but errors.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import jsonlines
from filelock import FileLock

from harness.errors import BenchError
from harness.safety import umask_mode

#: What a write failure tells the user to do, unless the caller says better.
WRITE_HINT = "free disk space or choose a writable --output-dir"


@dataclass(frozen=True)
class DamagedLine:
    """A line that is not a JSON object, with its 1-based number and why."""

    number: int
    reason: str
    text: str


def _reason(exc: jsonlines.InvalidLineError) -> str:
    cause = exc.__cause__
    if isinstance(cause, json.JSONDecodeError):
        return f"not valid JSON ({cause.msg})"
    if cause is not None:  # undecodable bytes
        return f"not valid JSON ({cause})"
    return "not a JSON object"


def iter_jsonl(path: str | os.PathLike[str], damaged: list[DamagedLine] | None = None, *,
               offsets: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, object)`` for every JSON-object line of ``path``, one at a time.

    With ``offsets`` the first item is the line's byte offset instead, for ``JsonlLines``:
    a reader can then keep offsets rather than the objects. Blank lines are ignored and a
    missing file reads as empty. A damaged line is appended to ``damaged`` when it is given,
    else skipped silently.
    """
    path = Path(path)
    if not path.exists():
        return
    with path.open("rb") as handle:
        number = start = end = 0

        def lines() -> Iterator[str]:
            nonlocal number, start, end
            for number, raw in enumerate(handle, start=1):  # noqa: B007 (read below)
                start, end = end, end + len(raw)
                yield raw.decode("utf-8", errors="replace")

        reader = jsonlines.Reader(lines())
        while True:
            try:
                value = reader.read(type=dict, skip_empty=True)
            except EOFError:
                return
            except jsonlines.InvalidLineError as exc:
                if damaged is not None:
                    line = exc.line if isinstance(exc.line, str) else exc.line.decode(errors="replace")
                    damaged.append(DamagedLine(exc.lineno, _reason(exc), line.rstrip("\n")))
                continue
            yield (start if offsets else number), value


class JsonlLines:
    """Random access to the lines of a JSON Lines file by byte offset."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._handle = Path(path).open("rb")

    def read_at(self, offset: int) -> dict[str, Any]:
        self._handle.seek(offset)
        return jsonlines.Reader([self._handle.readline()]).read(type=dict)

    def close(self) -> None:
        self._handle.close()


def read_jsonl(path: str | os.PathLike[str]) -> tuple[list[tuple[int, dict[str, Any]]], list[DamagedLine]]:
    """Every JSON-object line with its number, and every damaged line."""
    damaged: list[DamagedLine] = []
    objects = list(iter_jsonl(path, damaged))
    return objects, damaged


def _fail(path: Path, exc: OSError, hint: str) -> BenchError:
    return BenchError(f"cannot write {path}: {exc.strerror}; {hint}")


@contextmanager
def atomic_file(path: str | os.PathLike[str], binary: bool = False,
                hint: str = WRITE_HINT) -> Iterator[IO[Any]]:
    """A handle on a unique temporary file that replaces ``path`` (fsynced) when the block
    ends; if the block fails the old file stays whole and the temporary file goes."""
    path = Path(path)
    tmp_name = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("wb" if binary else "w",
                                         encoding=None if binary else "utf-8", dir=path.parent,
                                         prefix=f".{path.name}.", suffix=".tmp",
                                         delete=False) as handle:
            tmp_name = handle.name
            os.chmod(tmp_name, umask_mode())  # mkstemp's 0600 would outlive the rename
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except OSError as exc:
        raise _fail(path, exc, hint) from None
    finally:
        if tmp_name is not None and os.path.exists(tmp_name):
            os.unlink(tmp_name)


def write_atomic(path: str | os.PathLike[str], content: str | bytes,
                 hint: str = WRITE_HINT) -> None:
    """Replace ``path`` with ``content`` in one rename; on failure the old file stays whole."""
    with atomic_file(path, isinstance(content, bytes), hint) as handle:
        handle.write(content)


def temporary_beside(path: str | os.PathLike[str]) -> Path:
    """A fresh, unique temporary file name beside ``path`` (for writers that need a name,
    such as ``safetensors.save_file``); rename it over ``path`` with ``os.replace``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    os.chmod(name, umask_mode())  # mkstemp's 0600 would outlive the rename
    return Path(name)


def write_json_atomic(path: str | os.PathLike[str], value: Any, *, sort_keys: bool = False,
                      default: Callable[[Any], Any] | None = None,
                      hint: str = WRITE_HINT) -> None:
    """``value`` as indented JSON (one trailing newline), replaced atomically."""
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=sort_keys, default=default)
    write_atomic(path, text + "\n", hint)


def write_jsonl_atomic(path: str | os.PathLike[str], records: Iterable[Mapping[str, Any]],
                       hint: str = WRITE_HINT) -> None:
    """Replace ``path`` with one line per record, streamed (records are not held at once)."""
    with atomic_file(path, hint=hint) as handle:
        jsonlines.Writer(handle).write_all(records)


def _repair_cut_line(path: Path) -> str:
    """``"\\n"`` when ``path`` ends in a line a crash cut short, so an append starts afresh."""
    if not path.exists() or path.stat().st_size == 0:
        return ""
    with path.open("rb") as existing:
        existing.seek(-1, os.SEEK_END)
        return "" if existing.read(1) == b"\n" else "\n"


def append_jsonl_locked(path: str | os.PathLike[str], records: Iterable[Mapping[str, Any]], *,
                        timeout: float = 60, hint: str = WRITE_HINT) -> None:
    """Append ``records`` as one locked, fsynced write that several processes may share.

    A last line cut short by a crash stays (readers report it) and the new lines start on a
    fresh line.
    """
    path = Path(path)
    records = list(records)
    if not records:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock", timeout=timeout):
            prefix = _repair_cut_line(path)
            with path.open("a", encoding="utf-8") as handle:
                handle.write(prefix)
                jsonlines.Writer(handle).write_all(records)
                handle.flush()
                os.fsync(handle.fileno())
    except OSError as exc:
        raise _fail(path, exc, hint) from None


def cut_unfinished_line(path: str | os.PathLike[str]) -> None:
    """Drop an unfinished last line (a killed writer's) so the next append starts clean."""
    path = Path(path)
    if not path.exists() or path.stat().st_size == 0:
        return
    with path.open("rb+") as handle:
        handle.seek(0, os.SEEK_END)
        size = handle.tell()
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return
        # Search backwards in blocks for the last newline: the file may be large.
        position = size
        while position > 0:
            start = max(0, position - 65536)
            handle.seek(start)
            block = handle.read(position - start)
            index = block.rfind(b"\n")
            if index >= 0:
                handle.truncate(start + index + 1)
                return
            position = start
        handle.truncate(0)


class JsonlAppender:
    """An open JSON Lines file of one writer (the journal, a cache, a training log).

    Opening drops an unfinished last line; each record is one flushed line. A flush survives
    kill -9 (the kernel has the bytes); fsync per line would cost milliseconds per record for
    protection only against power loss.
    """

    def __init__(self, path: str | os.PathLike[str], hint: str = WRITE_HINT) -> None:
        self.path = Path(path)
        self.hint = hint
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            cut_unfinished_line(self.path)
            self._handle: IO[str] = self.path.open("a", encoding="utf-8")
        except OSError as exc:
            raise _fail(self.path, exc, hint) from None
        self._writer = jsonlines.Writer(self._handle, flush=True)
        self._failed = False

    def write(self, record: Mapping[str, Any]) -> None:
        self._failed = True  # until the line is written
        try:
            self._writer.write(record)
        except OSError as exc:
            raise _fail(self.path, exc, self.hint) from None
        self._failed = False

    @property
    def end(self) -> int:
        """The file's size in bytes, where the next record will start."""
        try:
            return self._handle.tell()
        except OSError as exc:
            raise _fail(self.path, exc, self.hint) from None

    def close(self) -> None:
        """Close; after a failed write, that write's error is the one reported.

        The buffer of a file whose flush failed (a full disk) still holds the line, so closing
        fails again; raised from a ``finally``, that second error would hide the first.
        """
        try:
            self._writer.close()
            self._handle.close()
        except OSError as exc:
            if not self._failed:
                raise _fail(self.path, exc, self.hint) from None

    def __enter__(self) -> JsonlAppender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
