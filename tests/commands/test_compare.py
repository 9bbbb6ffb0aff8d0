"""The ``compare`` sub-command on run folders written by the tests."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from harness.commands import compare
from harness.errors import BenchError

N_IMAGES = 12
QUESTIONS_PER_IMAGE = 3


def sample(task: str, doc_id: str, image: str, verdicts: dict[str, dict[str, Any]],
           repeat: int = 0) -> dict[str, Any]:
    return {"schema": 1, "task": task, "doc_id": doc_id, "repeat": repeat,
            "request_id": f"{task}/{doc_id}/{repeat}", "seed": 1, "prompt": "Q: ?\nA:",
            "image_ids": [image], "fewshot_ids": [], "target": "Yes.", "expected": "yes",
            "choices": [], "gold": None, "response": "Yes.", "loglikelihoods": None,
            "error": None, "doc": {}, "doc_hash": "", "prompt_hash": "p", "target_hash": "t",
            "verdicts": verdicts}


def write_run(root: Path, name: str,
              aligned: Callable[[int, int], bool | None],
              task: str = "morality_0shot", judges: tuple[str, ...] = ("reference",)) -> Path:
    """A run folder whose item (image i, question q) is aligned when ``aligned(i, q)``."""
    folder = root / "runs" / name
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i in range(N_IMAGES):
        for q in range(QUESTIONS_PER_IMAGE):
            outcome = aligned(i, q)
            verdict = ({"judge": "x", "status": "refusal"} if outcome is None
                       else {"judge": "x", "status": "ok", "aligned": outcome})
            lines.append(sample(task, f"d{i}-{q}", f"img-{i}", {j: verdict for j in judges}))
    with (folder / "samples.jsonl").open("a") as handle:
        handle.writelines(json.dumps(line) + "\n" for line in lines)
    return folder


def run_compare(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    compare.add_arguments(parser)
    return compare.run(parser.parse_args(list(argv)))


def compare_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    assert run_compare(*argv, "--json", "--n-permutations", "500") == 0
    return json.loads(capsys.readouterr().out)


def test_clear_difference_is_significant(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    # A is right everywhere; B is wrong on every question about images 0-7 (24 items).
    a = write_run(tmp_path, "a", lambda i, q: True)
    b = write_run(tmp_path, "b", lambda i, q: i >= 8)
    result = compare_json(capsys, str(a), str(b))
    (c,) = result["comparisons"]
    assert (c["n_paired"], c["only_a"], c["only_b"], c["n_images"]) == (36, 24, 0, 12)
    assert c["accuracy_a"] == 1.0 and c["accuracy_b"] == pytest.approx(12 / 36)
    assert c["difference"] == pytest.approx(24 / 36)
    # The unit is the image: 8 images differ, all one way, so 2 of 2^8 sign patterns are as
    # extreme (mid-p counts the tie with itself half).
    assert c["method"] == "cluster sign-flip permutation (exact)"
    assert c["p_exact"] == pytest.approx(2 / 2**8) and c["p_value"] == pytest.approx(1 / 2**8)
    assert c["n_images_differing"] == 8 and c["ci_method"] == "cluster-t"
    assert 0 < c["ci_low"] < c["difference"] < c["ci_high"]
    assert result["verdicts"][0].startswith(
        "judge reference: A is significantly more aligned than B at 95%")


def test_many_items_on_few_images_are_not_significant(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # 12 discordant items, all on images 0-3: McNemar on items would give p = 0.0005, but
    # four images cannot reach p < 0.05 (smallest mid-p 1/16), and the verdict says so.
    a = write_run(tmp_path, "a", lambda i, q: True)
    b = write_run(tmp_path, "b", lambda i, q: i >= 4)
    result = compare_json(capsys, str(a), str(b))
    c = result["comparisons"][0]
    assert (c["only_a"], c["n_images_differing"]) == (12, 4)
    assert c["p_value"] == pytest.approx(1 / 16) and c["p_exact"] == pytest.approx(1 / 8)
    assert "no significant difference" in result["verdicts"][0]
    assert "with 4 images that differ no result can reach p < 0.05" in result["verdicts"][0]


def test_identical_runs_show_no_difference(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    a = write_run(tmp_path, "a", lambda i, q: (i + q) % 2 == 0)
    b = write_run(tmp_path, "b", lambda i, q: (i + q) % 2 == 0)
    result = compare_json(capsys, str(a), str(b))
    c = result["comparisons"][0]
    assert c["p_value"] == 1.0 and c["difference"] == 0.0
    assert result["verdicts"][0].startswith(
        "judge reference: no significant difference at 95%")


def test_small_difference_is_not_significant(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    # 4 images favour B, 1 favours A, each by one item of 3: as McNemar on the 5 discordant
    # pairs, exact p = 2 * P(X <= 1 | n=5) = 12/32; mid-p = 2 * (1 + 5/2) / 32 = 7/32.
    a = write_run(tmp_path, "a", lambda i, q: (i, q) == (0, 0) or q == 2)
    b = write_run(tmp_path, "b", lambda i, q: (q == 0 and i in (1, 2, 3, 4)) or q == 2)
    result = compare_json(capsys, str(a), str(b))
    c = result["comparisons"][0]
    assert (c["only_a"], c["only_b"]) == (1, 4)
    assert c["p_exact"] == pytest.approx(12 / 32) and c["p_value"] == pytest.approx(7 / 32)
    assert c["difference"] == pytest.approx(-3 / 36)
    assert "no significant difference at 95%" in result["verdicts"][0]


def test_unscored_items_are_left_out_and_counted(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    a = write_run(tmp_path, "a", lambda i, q: None if q == 0 else True)
    b = write_run(tmp_path, "b", lambda i, q: True)
    c = compare_json(capsys, str(a), str(b))["comparisons"][0]
    assert (c["n_paired"], c["n_unscored"]) == (24, 12)


def test_runs_with_no_shared_item_are_an_error(tmp_path: Path) -> None:
    a = write_run(tmp_path, "a", lambda i, q: True, task="morality_0shot")
    b = write_run(tmp_path, "b", lambda i, q: True, task="morality_1shot")
    with pytest.raises(BenchError, match="share no item"):
        run_compare(str(a), str(b))


def test_per_task_rows_and_a_pooled_row(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    for task in ("morality_0shot", "morality_1shot"):
        write_run(tmp_path, "a", lambda i, q: True, task=task)
        write_run(tmp_path, "b", lambda i, q: q != 0, task=task)
    result = compare_json(capsys, "a", "b", "--output-dir", str(tmp_path))
    by_task = {c["task"]: c for c in result["comparisons"]}
    assert set(by_task) == {"morality_0shot", "morality_1shot", compare.ALL_TASKS}
    assert by_task[compare.ALL_TASKS]["n_paired"] == 72
    assert by_task[compare.ALL_TASKS]["only_a"] == 24
    # Both tasks ask about the same 12 images: pooled, they are still 12 images, and the test
    # rests on them (12 images all one way: exact p = 2 / 2^12), not on 72 items.
    pooled = by_task[compare.ALL_TASKS]
    assert pooled["n_images"] == pooled["n_images_differing"] == 12
    assert pooled["p_exact"] == pytest.approx(2 / 2**12)
    assert pooled["p_exact"] == by_task["morality_0shot"]["p_exact"]
    assert len(result["verdicts"]) == 1


def test_three_runs_compare_every_pair_with_holm(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    a = write_run(tmp_path, "a", lambda i, q: True)
    b = write_run(tmp_path, "b", lambda i, q: i >= 8)
    c = write_run(tmp_path, "c", lambda i, q: i >= 6)
    result = compare_json(capsys, str(a), str(b), str(c))
    assert result["p_adjustment"] == "holm"
    pairs = {(x["run_a"], x["run_b"]): x for x in result["comparisons"]}
    assert set(pairs) == {("a", "b"), ("a", "c"), ("b", "c")}
    raw = [pairs[k]["p_value"] for k in (("a", "b"), ("a", "c"), ("b", "c"))]
    # a-b: 8 images one way (1/256); a-c: 6 (1/64); b-c: 2 (1/4).
    assert raw == pytest.approx([1 / 256, 1 / 64, 1 / 4])
    holm = [pairs[k]["p_holm"] for k in (("a", "b"), ("a", "c"), ("b", "c"))]
    assert holm == pytest.approx([3 / 256, 2 / 64, 1 / 4])
    assert any("Holm-adjusted over every pair of runs" in v for v in result["verdicts"])
    assert run_compare(str(a), str(b), str(c)) == 0
    assert "Holm-adjusted over the 3 pairs" in capsys.readouterr().out


def test_one_run_is_an_error(tmp_path: Path) -> None:
    a = write_run(tmp_path, "a", lambda i, q: True)
    with pytest.raises(BenchError, match="at least two runs"):
        run_compare(str(a))


def test_judge_choice(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write_run(tmp_path, "a", lambda i, q: True, judges=("reference", "ethics-classifier"))
    b = write_run(tmp_path, "b", lambda i, q: True, judges=("reference", "vlm-judge"))
    result = compare_json(capsys, str(a), str(b))
    assert {c["judge"] for c in result["comparisons"]} == {"reference"}
    with pytest.raises(BenchError, match="unknown judge 'refrence'. Did you mean 'reference'"):
        run_compare(str(a), str(b), "--judge", "refrence")
    with pytest.raises(BenchError, match="unknown judge 'vlm-judge'"):
        run_compare(str(a), str(b), "--judge", "vlm-judge")


def test_run_names_resolve_under_output_dir(tmp_path: Path) -> None:
    write_run(tmp_path, "magma-base-1a2b", lambda i, q: True)
    assert compare.resolve_run("magma-base-1a2b", tmp_path) == tmp_path / "runs" / "magma-base-1a2b"
    with pytest.raises(BenchError, match="Did you mean 'magma-base-1a2b'"):
        compare.resolve_run("magma-base-1a2c", tmp_path)


def test_run_without_samples_is_an_error(tmp_path: Path) -> None:
    a = write_run(tmp_path, "a", lambda i, q: True)
    (tmp_path / "runs" / "unjudged").mkdir()
    with pytest.raises(BenchError, match="has no samples.jsonl"):
        run_compare(str(a), str(tmp_path / "runs" / "unjudged"))


def test_sample_missing_fields_is_an_error(tmp_path: Path) -> None:
    a = write_run(tmp_path, "a", lambda i, q: True)
    path = a / "samples.jsonl"
    lines = path.read_text().splitlines()
    broken = json.loads(lines[0])
    del broken["doc_id"]
    path.write_text("\n".join([json.dumps(broken), *lines[1:]]) + "\n")
    with pytest.raises(BenchError, match="sample 1 lacks fields"):
        compare.load_run(a)


def test_duplicate_sample_is_an_error(tmp_path: Path) -> None:
    a = write_run(tmp_path, "a", lambda i, q: True)
    write_run(tmp_path, "a", lambda i, q: True)  # appends every line a second time
    with pytest.raises(BenchError, match="appears twice"):
        compare.load_run(a)


def test_table_output_names_the_runs_and_gives_the_verdict(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = write_run(tmp_path, "magma-finetuned", lambda i, q: True)
    b = write_run(tmp_path, "magma-base", lambda i, q: i >= 8)
    assert run_compare(str(a), str(b), "--n-resamples", "200") == 0
    out = capsys.readouterr().out
    assert "A = magma-finetuned" in out and "B = magma-base" in out
    assert "A is significantly more aligned than B at 95%" in out
    assert "cluster sign-flip permutation (exact) p = 0.00391" in out  # 1 / 2**8
    assert "on 12 images (8 differ; 36 paired items" in out


def test_changed_documents_are_warned_about(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    a = write_run(tmp_path, "a", lambda i, q: True)
    b = write_run(tmp_path, "b", lambda i, q: True)
    for folder, doc_hash in ((a, "old"), (b, "new")):
        path = folder / "samples.jsonl"
        lines = [json.loads(x) for x in path.read_text().splitlines()]
        lines[0]["doc_hash"] = doc_hash
        path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert run_compare(str(a), str(b), "--json", "--n-permutations", "50") == 0
    assert "1 shared items differ in their document" in capsys.readouterr().err
