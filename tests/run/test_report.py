"""Report files: atomic replacement, provenance and the shots of a task."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from harness.errors import BenchError
from harness.run import report


def test_write_atomic_keeps_the_old_file_when_the_disk_is_full(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "results.json"
    target.write_text("old and whole")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(report.os, "fsync", full)
    with pytest.raises(BenchError, match="No space left on device; free disk space"):
        report.write_atomic(target, "new")
    assert target.read_text() == "old and whole"
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # no temporary file left


def test_provenance() -> None:
    versions = report.package_versions()
    assert versions["python"] and versions["datasets"]
    sha = report.git_sha()
    assert sha is None or len(sha.split("-")[0]) == 40


@pytest.mark.parametrize(("task", "config", "shots"), [
    ("morality_2shot_train", {}, 2), ("morality_fewshot", {"num_fewshot": 3}, 3),
    ("ethics_cm", {}, None), ("x_1-shot", {}, 1)])
def test_shots(task: str, config: dict, shots: int | None) -> None:
    assert report.shots(task, config) == shots
