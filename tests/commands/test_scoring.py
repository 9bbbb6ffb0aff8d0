"""``score RUN_DIR --judges``: re-judge a saved run without generating."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from PIL import Image

from harness import evaluate
from harness.commands.cli import main
from harness.judges.base import Judge
from harness.registry import register_judge
from harness.reports.leaderboard import read_rows
from harness.types import JudgeInput, Verdict


@register_judge("sees-images")
class SeesImages(Judge):
    """Aligned when the judge was handed the sample's image (a test double)."""

    version = "7"

    def judge(self, inputs: Sequence[JudgeInput]) -> list[Verdict]:
        return [Verdict("sees-images", "ok", aligned=bool(i.images) and all(
            isinstance(p.image, Image.Image) for p in i.images), label=str(len(i.images)))
            for i in inputs]


@pytest.fixture()
def saved_run(mini_tasks: Path, tmp_path: Path) -> Path:
    result = evaluate("always-yes", "morality_0shot,morality_fewshot,morality_0shot_mc", "reference",
                      include_paths=[str(mini_tasks)], output_dir=tmp_path / "out", repeats=2)
    return result.run_dir


def test_score_adds_verdicts_scores_and_rows(saved_run: Path, tmp_path: Path) -> None:
    before = json.loads((saved_run / "results.json").read_text())
    assert main(["score", str(saved_run), "--judges", "sees-images"]) == 0
    samples = [json.loads(x) for x in (saved_run / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 36
    for sample in samples:
        assert set(sample["verdicts"]) >= {"reference", "sees-images"}
        assert sample["verdicts"]["sees-images"]["aligned"] is True
    fewshot = next(s for s in samples if s["task"] == "morality_fewshot")
    assert fewshot["verdicts"]["sees-images"]["label"] == "3"  # two demonstrations + the item
    results = json.loads((saved_run / "results.json").read_text())
    assert results["scores"]["morality_0shot"]["sees-images"]["accuracy"] == 1.0
    assert results["scores"]["morality_0shot"]["reference"] == before["scores"]["morality_0shot"]["reference"]
    assert results["judges"]["sees-images"]["version"] == "7"
    rows = read_rows(tmp_path / "out" / "leaderboard.jsonl")
    assert [r["judge"] for r in rows].count("reference") == 3
    assert [r["judge"] for r in rows].count("sees-images") == 3
    assert [r["judge"] for r in rows].count("loglikelihood") == 1


def test_score_refuses_changed_images(saved_run: Path, mini_dataset: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    Image.new("RGB", (32, 24), (1, 2, 3)).save(mini_dataset / "images" / "scene_3.png")
    assert main(["score", str(saved_run), "--judges", "sees-images"]) == 2
    assert "images changed" in capsys.readouterr().err


def test_score_errors(saved_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", str(saved_run), "--judges", "sees-image"]) == 2
    assert "Did you mean 'sees-images'" in capsys.readouterr().err
    assert main(["score", str(tmp_path), "--judges", "reference"]) == 2
    assert "no results.json" in capsys.readouterr().err


def test_score_with_human_reads_the_run_folders_labels(saved_run: Path) -> None:
    """Hand labels written into the run folder become the ``human`` judge's verdicts."""
    from harness.hashing import stable_hash

    samples = [json.loads(line) for line in (saved_run / "samples.jsonl").read_text().splitlines()]
    chosen = [s for s in samples if s["task"] == "morality_0shot"]
    with (saved_run / "annotations.jsonl").open("w") as handle:
        for index, sample in enumerate(chosen):
            label = "aligned" if index % 2 == 0 else "misaligned"
            handle.write(json.dumps({
                "schema": 1, "annotator": "ann", "task": sample["task"], "doc_id": sample["doc_id"],
                "repeat": sample["repeat"], "sample_key": sample["request_id"],
                "response_hash": stable_hash({"response": sample["response"]}),
                "label": label, "time": 0.0}) + "\n")

    assert main(["score", str(saved_run), "--judges", "human"]) == 0

    rescored = {s["request_id"]: s for s in
                (json.loads(line) for line in (saved_run / "samples.jsonl").read_text().splitlines())}
    for index, sample in enumerate(chosen):
        verdict = rescored[sample["request_id"]]["verdicts"]["human"]
        assert verdict["status"] == "ok"
        assert verdict["aligned"] is (index % 2 == 0)
    results = json.loads((saved_run / "results.json").read_text())
    human = results["scores"]["morality_0shot"]["human"]
    assert human["n_scored"] == len(chosen)
    assert human["accuracy"] == pytest.approx(sum(1 for i in range(len(chosen)) if i % 2 == 0) / len(chosen))


def test_a_damaged_samples_file_is_named_with_its_line(saved_run: Path) -> None:
    """samples.jsonl is replaced atomically, so a bad line is damage to report, not to skip."""
    from harness.errors import BenchError
    from harness.run.folder import read_samples

    path = saved_run / "samples.jsonl"
    lines = path.read_text().splitlines()
    lines[2] = lines[2][: len(lines[2]) // 2]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(BenchError, match=r"samples.jsonl:3: damaged sample \(not valid JSON"):
        read_samples(saved_run)


# -- a run folder is data, not code (issue 12) -----------------------------------------------

def _tamper(run_dir: Path, task: str = "morality_0shot", **config: object) -> None:
    """Rewrite a task's stored config in results.json, as someone sharing the folder could."""
    path = run_dir / "results.json"
    results = json.loads(path.read_text())
    for key, value in config.items():
        if key == "function_dirs":
            results["tasks"][task]["function_dirs"] = value
        else:
            results["tasks"][task]["config"][key] = value
    path.write_text(json.dumps(results))


def _one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: ")
    return line


def test_score_renders_stored_templates_in_the_sandbox(saved_run: Path, tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    owned = tmp_path / "owned.txt"
    _tamper(saved_run, doc_to_text="{{ cycler.__init__.__globals__.os.popen("
                                   f"'id > {owned}').read() }}}}")
    line = _one_line_error(capsys, ["score", str(saved_run), "--judges", "sees-images"])
    assert "doc_to_text: template refused by the sandbox" in line
    assert not owned.exists()


def test_score_runs_no_stored_function_without_trust_run(saved_run: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    code_dir = tmp_path / "shipped"
    code_dir.mkdir()
    marker = tmp_path / "ran.txt"
    (code_dir / "evil.py").write_text(
        f"open({str(marker)!r}, 'w').write('ran')\ndef docs(d):\n    return d\n")
    _tamper(saved_run, process_docs="!function evil.docs",
            function_dirs={"process_docs": str(code_dir)})
    line = _one_line_error(capsys, ["score", str(saved_run), "--judges", "sees-images"])
    assert (f"task 'morality_0shot' process_docs is '!function evil.docs', code in {code_dir} "
            "that re-judging would run; pass --trust-run") in line
    assert not marker.exists()
    # Trusted on purpose, it runs (and the run's prompts still match).
    assert main(["score", str(saved_run), "--judges", "sees-images", "--trust-run"]) == 0
    assert marker.exists()


def test_score_refuses_stored_remote_dataset_code(saved_run: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    _tamper(saved_run, dataset_kwargs={"trust_remote_code": True})
    line = _one_line_error(capsys, ["score", str(saved_run), "--judges", "sees-images"])
    assert "sets dataset_kwargs.trust_remote_code" in line and "--trust-run" in line


def test_score_checks_the_stored_prompt_hash(saved_run: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    # The same images, a different prompt: judges would grade answers to another question.
    _tamper(saved_run, doc_to_text="{{ question }} Answer honestly.")
    line = _one_line_error(capsys, ["score", str(saved_run), "--judges", "sees-images"])
    assert "its prompt renders differently from the one stored (prompt_hash differs)" in line


def test_readers_of_a_run_folder_run_nothing_it_names(saved_run: Path, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from harness.commands.annotate import AnnotationSession

    code_dir = tmp_path / "shipped"
    code_dir.mkdir()
    marker = tmp_path / "ran.txt"
    (code_dir / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n"
                                      "def docs(d):\n    return d\n")
    owned = tmp_path / "owned.txt"
    _tamper(saved_run, process_docs="!function evil.docs", function_dirs={"process_docs": str(
        code_dir)}, doc_to_text=f"{{{{ cycler.__init__.__globals__.os.popen('id > {owned}') }}}}",
            dataset_kwargs={"trust_remote_code": True})
    out = saved_run.parent.parent
    assert main(["compare", str(saved_run), str(saved_run), "--json"]) == 0
    assert main(["leaderboard", "--output-dir", str(out), "--format", "html"]) == 0
    assert main(["leaderboard", "--output-dir", str(out), "--format", "csv"]) == 0
    assert len(AnnotationSession(saved_run, "alice").samples) > 0
    assert main(["agreement", str(saved_run)]) == 2  # no hand labels yet: one line, nothing run
    assert not marker.exists() and not owned.exists()


# -- lm-eval metrics are recomputed from the stored samples (issue 13) -------------------------

@pytest.fixture()
def metrics_run(metric_tasks: Path, tmp_path: Path) -> Path:
    return evaluate("random", "morality_em,morality_mcc", include_paths=[str(metric_tasks)],
                    output_dir=tmp_path / "out", seed=5).run_dir


def test_score_recomputes_metrics_and_their_stderrs(metrics_run: Path, tmp_path: Path) -> None:
    path = metrics_run / "results.json"
    written = json.loads(path.read_text())
    metrics = json.loads(json.dumps(written["metrics"]))  # a copy, before the tampering
    assert set(metrics["morality_em"]) == {"exact_match,word", "bleu,word", "exact_match,lower",
                                           "bleu,lower"}
    assert metrics["morality_em"]["exact_match,word"]["stderr"] > 0  # mean_stderr
    assert metrics["morality_em"]["exact_match,lower"]["stderr"] == 0.0  # never right: "yes."
    assert metrics["morality_mcc"]["mcc,none"]["stderr"] > 0  # bootstrapped
    # A tampered results.json (or one from before stderrs) is rewritten from the samples.
    for task in written["metrics"].values():
        for entry in task.values():
            entry.update(value=123.0, stderr=None)
    path.write_text(json.dumps(written))
    rows_before = (tmp_path / "out" / "leaderboard.jsonl").read_text()
    assert main(["score", str(metrics_run)]) == 0
    rescored = json.loads(path.read_text())
    assert rescored["metrics"] == metrics
    assert rescored["scores"] == written["scores"]  # no judge asked: verdicts untouched
    assert (tmp_path / "out" / "leaderboard.jsonl").read_text() == rows_before  # no new judge


def test_score_with_judges_recomputes_metrics_too(metrics_run: Path) -> None:
    metrics = json.loads((metrics_run / "results.json").read_text())["metrics"]
    assert main(["score", str(metrics_run), "--judges", "sees-images"]) == 0
    rescored = json.loads((metrics_run / "results.json").read_text())
    assert rescored["metrics"] == metrics and "sees-images" in rescored["scores"]["morality_em"]


def _shipped_code(folder: Path, code: str) -> tuple[Path, Path]:
    """A module ``mine`` in ``folder/shipped`` that leaves a marker file when imported."""
    (folder / "shipped").mkdir()
    marker = folder / "ran.txt"
    (folder / "shipped" / "mine.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n{code}")
    return folder / "shipped", marker


def test_score_runs_no_stored_metric_code_without_trust_run(metrics_run: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    code_dir, marker = _shipped_code(tmp_path, "def agg(items):\n    return 0.5\n")
    _tamper(metrics_run, "morality_mcc", function_dirs={"metric_list": str(code_dir)},
            metric_list=[{"metric": "acc", "aggregation": "!function mine.agg"}])
    line = _one_line_error(capsys, ["score", str(metrics_run)])
    assert ("task 'morality_mcc' metric_list names '!function mine.agg', code in "
            f"{code_dir} that recomputing its metrics would run; pass --trust-run") in line
    assert not marker.exists()
    assert main(["score", str(metrics_run), "--trust-run"]) == 0
    rescored = json.loads((metrics_run / "results.json").read_text())["metrics"]["morality_mcc"]
    assert rescored["acc,none"]["value"] == 0.5 and rescored["acc,none"]["stderr"] is None
    assert main(["score", str(metrics_run), "--judges", ","]) == 2


def test_score_rebuilds_no_task_without_metrics(saved_run: Path, tmp_path: Path) -> None:
    code_dir, marker = _shipped_code(tmp_path, "def results(doc, answers):\n    return {}\n")
    _tamper(saved_run, process_results="!function mine.results",
            function_dirs={"process_results": str(code_dir)})
    assert main(["score", str(saved_run)]) == 0  # no lm-eval metrics: nothing to recompute
    assert not marker.exists()
