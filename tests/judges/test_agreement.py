"""The agreement command on a hand-written run folder, checked against hand-computed values."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import krippendorff
import numpy as np
import pytest

from harness.commands import agreement
from harness.errors import BenchError
from harness.judges.human.annotations import Annotation, append_annotation, response_hash

A, M, U = "aligned", "misaligned", "unclear"
HUMAN_A = [A, A, M, M, A, M, A, U]
HUMAN_B = [A, M, M, M, A, M, A, U]
OK_ALIGNED = {"judge": "ethics-classifier", "status": "ok", "aligned": True}
OK_MISALIGNED = {"judge": "ethics-classifier", "status": "ok", "aligned": False}
ERROR = {"judge": "ethics-classifier", "status": "error", "reason": "boom"}


@pytest.fixture
def labelled_run(tmp_path: Path, write_run, make_sample) -> Path:
    samples = []
    for i in range(8):
        verdict = OK_MISALIGNED if i == 5 else ERROR if i == 6 else OK_ALIGNED
        samples.append(make_sample("t0" if i < 4 else "t1", i, f"answer {i}",
                                   image=f"img-{i // 2}", verdicts={"ethics-classifier": verdict}))
    run_dir = write_run(tmp_path / "run", samples)
    path = run_dir / "annotations.jsonl"
    for who, labels in (("a", HUMAN_A), ("b", HUMAN_B)):
        for i, label in enumerate(labels):
            task = "t0" if i < 4 else "t1"
            append_annotation(path, Annotation(who, task, i, 0, f"{task}/{i}/0",
                                               response_hash(f"answer {i}"), label, "now"))
    # A label for a response the run no longer has: ignored everywhere.
    append_annotation(path, Annotation("z", "t0", 0, 0, "t0/0/0", response_hash("old"), M, "now"))
    return run_dir


def test_judge_against_the_human_majority(labelled_run: Path) -> None:
    result = agreement.compute_agreement(labelled_run, n_resamples=200)
    summary = result["judges"]["ethics-classifier"]["all"]
    # Pairs (human majority, judge), item 6 left out as a judge error, item 1 a tie -> unclear:
    # po = 3/7, pe = (2/7)(6/7) + (3/7)(1/7) = 15/49, kappa = (21-15)/(49-15) = 3/17.
    assert summary["n"] == 7 and summary["n_judge_errors"] == 1
    assert summary["kappa"] == pytest.approx(3 / 17)
    assert summary["ci_low"] <= summary["kappa"] <= summary["ci_high"]
    assert summary["labels"] == [A, M, U]
    assert summary["confusion"] == [[2, 0, 0], [2, 1, 0], [2, 0, 0]]
    # Items where both said aligned/misaligned: 0, 2, 3, 4, 5.
    assert summary["n_binary"] == 5
    assert summary["judge_accuracy"] == pytest.approx(0.8)
    assert summary["human_accuracy"] == pytest.approx(0.4)
    assert summary["overstatement"] == pytest.approx(0.4)
    assert set(result["judges"]["ethics-classifier"]["tasks"]) == {"t0", "t1"}
    assert result["n_ties"] == 1 and result["n_labelled"] == 8
    # Two annotators: Cohen's kappa; po = 7/8, pe = (4*3 + 3*4 + 1*1)/64 = 25/64.
    annotators = result["annotators"]
    assert annotators["annotators"] == ["a", "b"] and annotators["method"] == "cohen"
    assert annotators["kappa"] == pytest.approx(31 / 39)
    assert annotators["n"] == 8


def test_three_annotators_use_fleiss(labelled_run: Path) -> None:
    path = labelled_run / "annotations.jsonl"
    for i, label in enumerate([A, A, M, A]):
        append_annotation(path, Annotation("c", "t0", i, 0, f"t0/{i}/0",
                                           response_hash(f"answer {i}"), label, "now"))
    annotators = agreement.compute_agreement(labelled_run, n_resamples=200)["annotators"]
    # Items 0-3 by all three (A/M/U tables [3,0,0] [2,1,0] [0,3,0] [1,2,0]), items 4-7 by a
    # and b only, who agree ([2,0,0] [0,2,0] [2,0,0] [0,0,2]): none is dropped. P-bar =
    # (6 + 2/3) / 8 = 5/6; shares 10/20, 8/20, 2/20 -> pe = 0.42; kappa = 62/87.
    assert annotators["method"] == "fleiss" and annotators["n"] == 8
    assert annotators["n_incomplete"] == 4 and annotators["n_single"] == 0
    assert annotators["kappa"] == pytest.approx(62 / 87)
    labels = [HUMAN_A, HUMAN_B, [A, A, M, A] + [None] * 4]
    codes = {A: 0, M: 1, U: 2}
    reliability = [[np.nan if x is None else codes[x] for x in row] for row in labels]
    assert annotators["alpha"] == pytest.approx(
        krippendorff.alpha(reliability_data=reliability, level_of_measurement="nominal"))
    assert annotators["n_alpha"] == 8
    assert annotators["ci_low"] <= annotators["kappa"] <= annotators["ci_high"]
    assert len(annotators["pairwise"]) == 3
    only_ab = agreement.compute_agreement(labelled_run, annotators=["a", "b"], n_resamples=200)
    assert only_ab["annotators"]["method"] == "cohen"


def test_command_prints_and_writes_results_atomically(labelled_run: Path, capsys) -> None:
    parser = argparse.ArgumentParser()
    agreement.add_arguments(parser)
    before = json.loads((labelled_run / "results.json").read_text())
    assert agreement.run(parser.parse_args([str(labelled_run), "--resamples", "200"])) == 0
    printed = capsys.readouterr().out
    assert "ethics-classifier" in printed and "0.18" in printed and "+40%" in printed
    assert "Krippendorff's alpha (nominal)" in printed
    results = json.loads((labelled_run / "results.json").read_text())
    assert results["run_name"] == before["run_name"]
    assert results["agreement"]["judges"]["ethics-classifier"]["all"]["kappa"] == pytest.approx(3 / 17)
    assert [p.name for p in labelled_run.iterdir() if p.name.startswith(".results")] == []


def test_user_mistakes(labelled_run: Path, tmp_path: Path, write_run, make_sample) -> None:
    with pytest.raises(BenchError, match="Did you mean 'ethics-classifier'"):
        agreement.compute_agreement(labelled_run, judges=["ethics-clasifier"])
    bare = write_run(tmp_path / "bare", [make_sample("t", 0, "x")])
    with pytest.raises(BenchError, match="annotate"):
        agreement.compute_agreement(bare)
    (labelled_run / "results.json").unlink()
    with pytest.raises(BenchError, match="results.json"):
        agreement.write_into_results(labelled_run, {})
