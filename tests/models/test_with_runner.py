"""The new adapters through the whole pipeline: task -> runner -> judges -> run folder.

The two adapters and a card each run real tasks with the runner, the way a user's command does.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.run import evaluate as runner
from tests.models.chat_server import Server


def _samples(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "samples.jsonl").read_text().splitlines()]


def test_a_tiny_transformers_vlm_runs_generate_and_multiple_choice_tasks(tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from tests.models.tiny_vlms import build_tiny_llava

    folder = build_tiny_llava(tmp_path / "tiny-llava")
    args = {"pretrained": str(folder), "dtype": "float32", "device": "cpu"}
    result = runner.evaluate("hf", "morality_0shot,morality_1shot_mc", model_args=args, limit=3,
                             batch_size=2, output_dir=tmp_path / "out", write_leaderboard=False)
    samples = _samples(result.run_dir)
    assert len(samples) == 6 and all(s["error"] is None for s in samples)
    assert all(isinstance(s["response"], str) for s in samples if s["task"] == "morality_0shot")
    assert all(len(s["loglikelihoods"]) == 2 for s in samples if s["task"].endswith("_mc"))
    assert result.results["model"]["architecture"] == "LlavaForConditionalGeneration"


def test_a_served_model_runs_a_task_and_records_failures(server: Server, tmp_path: Path) -> None:
    result = runner.evaluate("vllm", "morality_0shot",
                             model_args={"base_url": server.url, "model": "served", "max_retries": 1,
                                         "backoff_s": 0.01, "system_prompt": "fault=always503"},
                             limit=3, batch_size=3, output_dir=tmp_path / "out",
                             write_leaderboard=False)
    samples = _samples(result.run_dir)
    assert len(samples) == 3
    assert all(s["response"] is None and "HTTP 503" in s["error"] for s in samples)

    healthy = runner.evaluate("vllm", "morality_0shot", model_args={"base_url": server.url},
                              limit=3, batch_size=3, output_dir=tmp_path / "out",
                              write_leaderboard=False)
    assert healthy.run_dir != result.run_dir
    answers = _samples(healthy.run_dir)
    assert [s["response"] for s in answers] == [f"seed={s['seed']} images=1 STOP tail"
                                                for s in answers]


def test_one_command_puts_a_served_model_and_a_local_one_on_one_leaderboard(
        server: Server, tmp_path: Path) -> None:
    pytest.importorskip("transformers")
    from harness.commands.cli import main
    from tests.models.tiny_vlms import build_tiny_llava

    folder = build_tiny_llava(tmp_path / "tiny-llava")
    common = ["--tasks", "morality_0shot", "--limit", "2", "--batch-size", "2", "--no-progress",
              "--output-dir", str(tmp_path / "out")]
    assert main(["--model", "vllm", "--model-args", f"base_url={server.url}", *common]) == 0
    assert main(["--model", "hf", "--model-args",
                 f"pretrained={folder},dtype=float32,device=cpu", *common]) == 0
    rows = [json.loads(line) for line in (tmp_path / "out" / "leaderboard.jsonl").read_text().splitlines()]
    assert {row["model"] for row in rows} == {"vllm", f"hf:{folder}"}
    assert all(row["task"] == "morality_0shot" and row["n"] == 2 for row in rows)
