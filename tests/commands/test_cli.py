"""The command line: a run end to end, listings, lm-eval spellings and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.commands.cli import main, parse_judge_args, parse_key_values
from harness.errors import BenchError

ROOT = Path(__file__).resolve().parents[2]


def test_end_to_end_in_a_fresh_process(mini_tasks: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    done = subprocess.run(
        [sys.executable, str(ROOT / "run_bench.py"), "--model", "always-yes", "--tasks", "morality",
         "--judges", "reference", "--include-path", str(mini_tasks), "--output-dir", str(out)],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "morality_1shot" in done.stdout and "50.0" in done.stdout
    rows = [json.loads(x) for x in (out / "leaderboard.jsonl").read_text().splitlines()]
    assert [r["task"] for r in rows] == ["morality_0shot", "morality_1shot", "morality_2shot"]
    assert all(r["accuracy"] == 0.5 for r in rows)


def test_lm_eval_spellings(mini_tasks: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--model", "random", "--model_args", "", "--tasks", "morality_0shot",
                 "--batch_size", "3", "--include_path", str(mini_tasks), "--output_path",
                 str(tmp_path / "lm"), "--limit", "2", "--num_fewshot", "0", "--no-progress"])
    assert code == 0
    rows = [json.loads(x) for x in (tmp_path / "lm" / "leaderboard.jsonl").read_text().splitlines()]
    assert rows[0]["n"] == 2 and rows[0]["model"] == "random"


def test_list_tasks_imports_no_torch(tmp_path: Path) -> None:
    code = ("import sys; from harness.commands.cli import main; main(['--list-tasks']); "
            "main(['--list-models']); main(['--list-judges']); "
            "assert 'torch' not in sys.modules and 'transformers' not in sys.modules")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "morality_0shot_mc" in done.stdout and "morality: morality_0shot" in done.stdout
    assert "always-yes" in done.stdout and "reference" in done.stdout


@pytest.mark.parametrize(("argv", "message"), [
    (["--model", "alwys-yes", "--tasks", "morality"], "Did you mean 'always-yes'"),
    (["--model", "always-yes", "--tasks", "moralty"], "Did you mean 'morality'"),
    (["--model", "always-yes", "--tasks", "morality", "--judges", "refrence"], "Did you mean 'reference'"),
    (["--model", "always-yes", "--model-args", "oops", "--tasks", "morality"], "not key=value"),
    (["--model", "always-yes", "--model-args", "sed=1", "--tasks", "morality"], "unknown argument"),
    (["--tasks", "morality"], "--model is required"),
    (["--model", "always-yes"], "--tasks is required"),
    (["--model", "always-yes", "--tasks", "morality", "--batch-size", "0"], "--batch-size"),
])
def test_mistakes_are_one_line_and_exit_2(argv: list[str], message: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err


def test_key_value_parsing() -> None:
    assert parse_key_values("a=1,b=0.5,c=true,d=x/y,e=none", "--model-args") == {
        "a": 1, "b": 0.5, "c": True, "d": "x/y", "e": None}
    assert parse_judge_args("vlm-judge.model=magma-tiny,reference.x=2") == {
        "vlm-judge": {"model": "magma-tiny"}, "reference": {"x": 2}}
    with pytest.raises(BenchError, match="JUDGE.KEY"):
        parse_judge_args("model=x")


def test_dotted_keys_set_mapping_arguments_to_any_depth() -> None:
    parsed = parse_judge_args("vlm-judge.model=openai,vlm-judge.model_args.base_url=http://h:1/v1,"
                              "vlm-judge.model_args.model=org/m,vlm-judge.model_args.extra_body.top_k=5,"
                              "vlm-judge.rubric.morality_0shot=strict")
    assert parsed == {"vlm-judge": {"model": "openai", "rubric": {"morality_0shot": "strict"},
                                    "model_args": {"base_url": "http://h:1/v1", "model": "org/m",
                                                   "extra_body": {"top_k": 5}}}}
    assert parse_key_values("processor_args.do_image_splitting=false", "--model-args") == {
        "processor_args": {"do_image_splitting": False}}
    for clash in ("a.b=1,a=2", "a=2,a.b=1"):
        with pytest.raises(BenchError, match="both a value and keys"):
            parse_key_values(clash, "--model-args")
    with pytest.raises(BenchError, match="not key=value"):
        parse_key_values("a..b=1", "--model-args")


def test_score_is_a_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["score", "--help"])
    assert "RUN_DIR" in capsys.readouterr().out.upper()
