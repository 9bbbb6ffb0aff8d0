"""harness.files: atomic replaces, locked appends that repair a cut line, JSON Lines."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from harness import files
from harness.errors import BenchError


def test_write_atomic_keeps_the_old_file_when_the_disk_is_full(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "results.json"
    target.write_text("old and whole")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(files.os, "fsync", full)
    with pytest.raises(BenchError, match="No space left on device; free disk space"):
        files.write_atomic(target, "new")
    assert target.read_text() == "old and whole"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temporary file left


def test_a_failing_record_stream_leaves_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "samples.jsonl"
    target.write_text('{"old": 1}\n')

    def records():
        yield {"a": 1}
        raise RuntimeError("judge crashed")

    with pytest.raises(RuntimeError):
        files.write_jsonl_atomic(target, records())
    assert target.read_text() == '{"old": 1}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["samples.jsonl"]


def test_temporary_names_are_unique(tmp_path: Path) -> None:
    first, second = files.temporary_beside(tmp_path / "x"), files.temporary_beside(tmp_path / "x")
    assert first != second and first.parent == tmp_path


def test_damaged_lines_carry_their_numbers(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text('{"a": 1}\n\n[1, 2]\n{"b": 2\n{"c": "é"}\n')
    objects, damaged = files.read_jsonl(path)
    assert objects == [(1, {"a": 1}), (5, {"c": "é"})]
    assert [(d.number, d.reason) for d in damaged] == [
        (3, "not a JSON object"), (4, "not valid JSON (Expecting ',' delimiter)")]


def test_locked_append_starts_after_a_cut_line(tmp_path: Path) -> None:
    path = tmp_path / "leaderboard.jsonl"
    path.write_text('{"a": 1}\n{"b": 2')
    files.append_jsonl_locked(path, [{"c": 3}])
    assert path.read_text() == '{"a": 1}\n{"b": 2\n{"c": 3}\n'


def test_an_appender_drops_an_unfinished_line_and_flushes_each_record(tmp_path: Path) -> None:
    path = tmp_path / "responses.jsonl"
    path.write_text('{"a": 1}\n{"b": ')
    appender = files.JsonlAppender(path)
    appender.write({"c": "ü"})
    assert path.read_text(encoding="utf-8") == '{"a": 1}\n{"c": "ü"}\n'  # flushed, not closed
    appender.close()


def test_cut_unfinished_line_across_blocks(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    path.write_text('{"a": 1}\n' + "x" * 200_000)
    files.cut_unfinished_line(path)
    assert path.read_text() == '{"a": 1}\n'
    path.write_text("y" * 100)
    files.cut_unfinished_line(path)
    assert path.read_text() == ""


def test_lines_read_back_by_offset(tmp_path: Path) -> None:
    path = tmp_path / "responses.jsonl"
    path.write_text('{"a": "é"}\nnot json\n\n{"b": 2}\n', encoding="utf-8")
    offsets = dict((next(iter(v)), o) for o, v in files.iter_jsonl(path, offsets=True))
    lines = files.JsonlLines(path)
    assert lines.read_at(offsets["b"]) == {"b": 2} and lines.read_at(offsets["a"]) == {"a": "é"}
    lines.close()
