"""Reports: provenance and the shots of a task."""

from __future__ import annotations

import pytest

from harness.run import report


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
