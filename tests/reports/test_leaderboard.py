"""The leaderboard file under concurrent appends and after a crash mid-write."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest
from filelock import FileLock

from harness.reports.leaderboard import append_rows, read_rows, read_rows_checked

WRITERS = 4
APPENDS_PER_WRITER = 25
ROWS_PER_APPEND = 3


def _writer(path: str, writer: int) -> None:
    # A long model name makes each write span several pipe/page-sized chunks, so torn
    # writes would show if the lock did not serialise them.
    for append in range(APPENDS_PER_WRITER):
        append_rows(path, [{"model": f"m{writer}-" + "x" * 3000, "task": "t", "writer": writer,
                            "append": append, "row": row} for row in range(ROWS_PER_APPEND)])


def test_concurrent_appends_from_processes_never_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "leaderboard.jsonl"
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_writer, args=(str(path), w)) for w in range(WRITERS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    rows, damaged = read_rows_checked(path)
    assert damaged == []
    seen = {(r["writer"], r["append"], r["row"]) for r in rows}
    assert len(rows) == len(seen) == WRITERS * APPENDS_PER_WRITER * ROWS_PER_APPEND
    # One append's rows stay together: a lock held per append, not per line.
    for index in range(0, len(rows), ROWS_PER_APPEND):
        group = rows[index:index + ROWS_PER_APPEND]
        assert len({(r["writer"], r["append"]) for r in group}) == 1
    assert all(r["schema"] == 1 for r in rows)


def test_append_waits_for_the_lock_another_process_holds(tmp_path: Path) -> None:
    path = tmp_path / "leaderboard.jsonl"
    context = multiprocessing.get_context("fork")
    with FileLock(str(path) + ".lock"):
        worker = context.Process(target=append_rows, args=(str(path), [{"model": "late"}]))
        worker.start()
        worker.join(timeout=0.5)
        assert worker.is_alive(), "append_rows wrote without taking the leaderboard lock"
        assert not path.exists() or path.read_text() == ""
    worker.join(timeout=30)
    assert worker.exitcode == 0
    assert [r["model"] for r in read_rows(path)] == ["late"]


def test_half_written_last_line_is_reported_and_skipped(tmp_path: Path) -> None:
    path = tmp_path / "leaderboard.jsonl"
    append_rows(path, [{"model": "a", "accuracy": 0.5}, {"model": "b", "accuracy": 0.25}])
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps({"model": "c", "accuracy": 0.75})[:17])  # crash mid-line
    rows, damaged = read_rows_checked(path)
    assert [r["model"] for r in rows] == ["a", "b"]
    assert [d.number for d in damaged] == [3]
    assert "not valid JSON" in damaged[0].reason
    with pytest.warns(UserWarning, match=r"leaderboard\.jsonl:3: damaged line skipped"):
        assert len(read_rows(path)) == 2

    # The next append starts on a fresh line, so it is not glued to the damaged one.
    append_rows(path, [{"model": "d", "accuracy": 1.0}])
    rows, damaged = read_rows_checked(path)
    assert [r["model"] for r in rows] == ["a", "b", "d"]
    assert [d.number for d in damaged] == [3]


def test_non_object_line_is_damaged(tmp_path: Path) -> None:
    path = tmp_path / "leaderboard.jsonl"
    path.write_text('[1, 2]\n\n{"model": "a"}\n')
    rows, damaged = read_rows_checked(path)
    assert rows == [{"model": "a"}]
    assert [(d.number, d.reason) for d in damaged] == [(1, "not a JSON object")]


def test_missing_leaderboard_reads_empty(tmp_path: Path) -> None:
    assert read_rows_checked(tmp_path / "none.jsonl") == ([], [])
