"""Reports: provenance, the shots of a task, the printed summary."""

from __future__ import annotations

from pathlib import Path

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


def test_the_summary_shows_lm_eval_metrics_and_only_instrument_rows_that_have_values() -> None:
    """A text task (ethics_cm) has no pairs, images or traps: no all-dash row for it; its
    lm-eval ``acc`` and stderr are printed as lm-eval users look for them."""
    import io
    import json

    from harness.run.folder import Results
    from harness.run.report import print_summary

    golden = Path(__file__).resolve().parents[1] / "data" / "golden_run" / "results.json"
    results = Results.from_dict(json.loads(golden.read_text()))
    out = io.StringIO()
    print_summary(results, Path("run"), file=out)
    text = out.getvalue()
    details = text[text.index("pairs, bias"):text.index("lm-eval metrics")]
    assert "morality_0shot" in details and "ethics_cm" not in details
    metrics = text[text.index("lm-eval metrics"):]
    row = next(line for line in metrics.splitlines() if "ethics_cm" in line)
    acc = results.metrics["ethics_cm"]["acc,none"]
    assert f"{acc['value']:.4f}" in row and f"{acc['stderr']:.4f}" in row and "acc" in row
