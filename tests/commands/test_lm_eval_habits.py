"""lm-eval's command-line habits: --gen_kwargs, --predict_only, --samples, --write_out, ..."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from harness.commands.cli import main
from harness.models.base import Model
from harness.registry import register_model
from harness.types import Request, Response
from tests.models.chat_server import running_server


@register_model("echo-settings")
class EchoSettings(Model):
    """Answers with the generation settings it was asked with."""

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        return [Response(r.request_id, text=f"Yes. t={r.generation.temperature} "
                         f"n={r.generation.max_new_tokens}") for r in requests]


@register_model("fits-four")
class FitsFour(Model):
    """Runs out of memory on batches above four, like a GPU would."""

    calls: list[int] = []

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        FitsFour.calls.append(len(requests))
        if len(requests) > 4:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return [Response(r.request_id, text="Yes.") for r in requests]


def bench(out: Path, include: Path, *argv: str, model: str = "echo-settings") -> int:
    return main(["--model", model, "--tasks", "morality_0shot", "--include-path", str(include),
                 "--output-dir", str(out), "--no-progress", *argv])


def only_run(out: Path) -> Path:
    runs = list((out / "runs").iterdir())
    assert len(runs) == 1
    return runs[0]


def samples_of(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "samples.jsonl").read_text().splitlines()]


def test_gen_kwargs_override_the_task_and_name_another_run(mini_tasks: Path, tmp_path: Path) -> None:
    assert bench(tmp_path / "a", mini_tasks) == 0
    assert bench(tmp_path / "b", mini_tasks, "--gen_kwargs", "temperature=0,max_gen_toks=7") == 0
    plain, tuned = only_run(tmp_path / "a"), only_run(tmp_path / "b")
    assert plain.name != tuned.name  # part of the run's identity
    assert all(s["response"].endswith("t=0.0 n=7") for s in samples_of(tuned))
    assert not any(s["response"].endswith("n=7") for s in samples_of(plain))
    results = json.loads((tuned / "results.json").read_text())
    assert results["gen_kwargs"] == {"temperature": 0, "max_gen_toks": 7}
    assert results["tasks"]["morality_0shot"]["config"]["generation_kwargs"]["max_gen_toks"] == 7
    assert bench(tmp_path / "c", mini_tasks, "--gen-kwargs", '{"temperature": -1}') == 2


def test_predict_only_generates_and_judges_nothing(mini_tasks: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert bench(out, mini_tasks, "--predict_only", "--log_samples", "-s") == 0
    run = only_run(out)
    samples = samples_of(run)
    assert len(samples) == 6 and all(s["response"] and not s["verdicts"] for s in samples)
    assert json.loads((run / "results.json").read_text())["scores"] == {"morality_0shot": {}}
    assert not (out / "leaderboard.jsonl").exists() or not (out / "leaderboard.jsonl").read_text()


def test_write_out_and_show_config_print_and_run_nothing(mini_tasks: Path, tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert bench(out, mini_tasks, "--write_out", "--show_config", "--gen_kwargs", "max_gen_toks=9",
                 "--seed", "0,1,2,99") == 0
    printed = capsys.readouterr().out
    assert not out.exists()
    assert "# morality_0shot/mini-006/0" in printed and "<image>Q: Do I help her" in printed
    assert '"max_gen_toks": 9' in printed and '"seed": 99' in printed
    assert printed.count("# morality_0shot/") == 3


def test_samples_choose_items_by_id_or_position(mini_tasks: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert bench(out, mini_tasks, "--samples", '{"morality_0shot": ["mini-008", 0]}') == 0
    assert sorted(s["doc_id"] for s in samples_of(only_run(out))) == ["mini-006", "mini-008"]
    for bad, message in (('{"morality_0shot": ["nope"]}', "has no item 'nope'"),
                         ('{"other_task": [0]}', "not in the run: other_task"),
                         ("[1, 2]", "map each task")):
        assert bench(tmp_path / "x", mini_tasks, "--samples", bad) == 2
        assert message in capsys.readouterr().err
    assert bench(tmp_path / "x", mini_tasks, "--samples", '{"morality_0shot": [0]}',
                 "--limit", "2") == 2


def test_batch_size_auto_halves_on_out_of_memory(mini_tasks: Path, tmp_path: Path) -> None:
    FitsFour.calls.clear()
    out = tmp_path / "out"
    assert bench(out, mini_tasks, "--batch_size", "auto", model="fits-four") == 0
    assert FitsFour.calls == [6, 3, 3]  # 6 items: the first batch fails, then halves
    results = json.loads((only_run(out) / "results.json").read_text())
    assert (results["batch_size"], results["batch_sizes"]) == ("auto", [3])
    assert len(samples_of(only_run(out))) == 6
    # Without auto, out-of-memory is not hidden.
    with pytest.raises(RuntimeError, match="out of memory"):
        bench(tmp_path / "fixed", mini_tasks, "--batch_size", "6", model="fits-four")


def test_seed_takes_lm_evals_comma_form(mini_tasks: Path, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    assert bench(out, mini_tasks, "--seed", "5,None,None,77") == 0
    results = json.loads((only_run(out) / "results.json").read_text())
    assert results["seed"] == 5 and results["fewshot_seed"] == 77
    assert results["tasks"]["morality_0shot"]["config"]["fewshot_config"]["seed"] == 77
    assert bench(tmp_path / "x", mini_tasks, "--seed", "1,2") == 2
    assert "four" in capsys.readouterr().err


def test_system_instruction_reaches_a_chat_model_and_is_refused_elsewhere(
        mini_tasks: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with running_server() as server:
        assert bench(tmp_path / "out", mini_tasks, "--model-args",
                     f"model=m,base_url={server.url},api_key_env=none", "--system_instruction",
                     "Answer briefly.", "--apply_chat_template", "--limit", "1",
                     model="openai") == 0
        assert server.bodies[0]["messages"][0] == {"role": "system", "content": "Answer briefly."}
    assert bench(tmp_path / "x", mini_tasks, "--system-instruction", "Hi.") == 2
    assert "takes no system message" in capsys.readouterr().err
    assert bench(tmp_path / "x", mini_tasks, "--apply-chat-template") == 2
    assert "has no chat template" in capsys.readouterr().err
