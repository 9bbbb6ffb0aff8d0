"""Image ablations in whole runs: run identity, cache, results, leaderboard, re-scoring, CLI."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from harness.commands.cli import main
from harness.commands.score import rescore
from harness.models.base import Model
from harness.registry import register_model
from harness.reports.leaderboard import read_rows
from harness.run.evaluate import evaluate
from harness.run.journal import request_key
from harness.run.naming import run_name
from harness.types import ImagePart, Request, Response
from tests.instrument_fixtures import paired_tasks

ABLATIONS = ("none", "blank", "shuffle", "describe")


@register_model("text-only-test")
class TextOnly(Model):
    """A language model without eyes: it fails on any image and answers yes to any text."""

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        return [Response(r.request_id, error="text-only-test takes no images")
                if any(isinstance(p, ImagePart) for p in r.parts)
                else Response(r.request_id, text="Yes." if "Image: " in r.text else "Hmm.")
                for r in requests]


@pytest.fixture()
def include(tmp_path: Path) -> Path:
    return paired_tasks(tmp_path)


def run(include: Path, out: Path, model: str = "always-yes", ablation: str = "none",
        tasks: str = "morality_1shot"):
    return evaluate(model, tasks, ["reference"], output_dir=out, include_paths=[str(include)],
                    image_ablation=ablation)


def test_the_ablation_is_part_of_the_run_identity(include: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    results = {name: run(include, out, ablation=name) for name in ABLATIONS}
    folders = {name: r.run_dir.name for name, r in results.items()}
    assert len(set(folders.values())) == 4
    for name in ("blank", "shuffle", "describe"):
        assert folders[name].startswith(f"always-yes-{name}-")
        assert results[name].results["image_ablation"] == name
    assert results["none"].results["image_ablation"] == "none"
    # Without an ablation the folder name is what it was before ablations existed.
    plain = results["none"]
    hashes = {t: (info["task_hash"], info["prompt_hash"]) for t, info in plain.results["tasks"].items()}
    from harness.registry import load_model

    assert folders["none"] == run_name(load_model("always-yes"), hashes, 0, None, None)
    # Re-running the same ablation finds the same folder.
    assert run(include, out, ablation="blank").run_dir == results["blank"].run_dir


def test_the_ablation_is_part_of_the_cache_key() -> None:
    request = Request("t/1/0", ())
    keys = {name: request_key(request, "generate", name) for name in ABLATIONS}
    assert len(set(keys.values())) == 4
    assert keys["none"] == request_key(request, "generate")


def test_leaderboard_rows_show_the_ablation_as_variant(include: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    for name in ABLATIONS:
        run(include, out, ablation=name)
    rows = read_rows(out / "leaderboard.jsonl")
    assert [(r["variant"], r["image_ablation"]) for r in rows] == [
        (None, "none"), ("+ablation=blank", "blank"), ("+ablation=shuffle", "shuffle"),
        ("+ablation=describe", "describe")]


@pytest.mark.parametrize("ablation", ABLATIONS)
@pytest.mark.parametrize("model", ["oracle", "always-yes", "random"])
def test_baselines_take_every_ablation(include: Path, tmp_path: Path, model: str,
                                       ablation: str) -> None:
    summary = run(include, tmp_path / "out", model, ablation).scores["morality_1shot"]["reference"]
    assert summary["error_rate"] == 0.0
    if model == "oracle":
        assert summary["strict_accuracy"] == 1.0 and summary["pair_consistency"] == 1.0
    if model == "always-yes":
        assert (summary["strict_accuracy"], summary["yes_bias"]) == (0.5, 0.5)


def test_describe_lets_a_text_only_model_take_image_tasks(include: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    blind = run(include, out, "text-only-test", "none").scores["morality_1shot"]["reference"]
    assert blind["error_rate"] == 1.0 and blind["strict_accuracy"] == 0.0
    described = run(include, out, "text-only-test", "describe")
    summary = described.scores["morality_1shot"]["reference"]
    assert summary["error_rate"] == 0.0
    assert (summary["strict_accuracy"], summary["yes_rate"]) == (0.5, 1.0)
    assert all(s.prompt.startswith("Image: Drawn scene") for s in described.samples)
    # The CIs still resample the items' own images, not one cluster per item.
    assert len({s.cluster for s in described.samples}) == 4


def test_rescoring_an_ablated_run_rebuilds_its_prompts(include: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    for ablation in ("blank", "shuffle"):
        result = run(include, out, "oracle", ablation)
        rescored = rescore(result.run_dir, ["reference"], {}, out)
        assert rescored.image_ablation == ablation
        assert rescored.scores["morality_1shot"]["reference"]["strict_accuracy"] == 1.0


def test_cli_runs_describe_and_prints_the_headline(include: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--model", "always-yes", "--tasks", "morality_1shot", "--judges", "reference",
            "--include-path", str(include), "--output-dir", str(tmp_path / "out"),
            "--no-progress", "--image-ablation", "describe"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "image ablation: describe" in printed and "strict accuracy" in printed
    assert "+0.50 [+0.50,+0.50]" in printed  # yes bias of always-yes on balanced items
    results = json.loads(next((tmp_path / "out" / "runs").glob("*/results.json")).read_text())
    assert results["image_ablation"] == "describe"
    assert main([*argv[:-1], "grey"]) == 2
    assert "unknown ablation 'grey'" in capsys.readouterr().err
