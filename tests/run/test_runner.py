"""evaluate(): scores, run folder contract, batch invariance, resume, cache, leaderboard."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from harness import evaluate
from harness.errors import BenchError
from harness.models.base import Model
from harness.reports.leaderboard import read_rows
from harness.types import Request, Response


class Counting(Model):
    """Answers from the seed (like a sampler) and counts what it is asked; can crash."""

    def __init__(self, crash_after: int | None = None) -> None:
        self.asked: list[str] = []
        self.crash_after = crash_after
        self.registry_name = "counting"

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        out = []
        for request in requests:
            if self.crash_after is not None and len(self.asked) >= self.crash_after:
                raise RuntimeError("simulated crash")
            self.asked.append(request.request_id)
            out.append(Response(request.request_id, text="Yes." if request.seed % 2 else "No."))
        return out


def run(include: Path, out: Path, model: object = "always-yes", tasks: str = "morality", **kw: object):
    return evaluate(model, tasks, kw.pop("judges", "reference"), include_paths=[str(include)],
                    output_dir=out, **kw)


def test_oracle_scores_100_and_always_yes_the_share_of_yes(mini_tasks: Path, tmp_path: Path) -> None:
    oracle = run(mini_tasks, tmp_path / "out", "oracle")
    for task in ("morality_0shot", "morality_1shot", "morality_2shot"):
        assert oracle.scores[task]["reference"]["accuracy"] == 1.0
    yes = run(mini_tasks, tmp_path / "out", "always-yes")
    share = [s.expected for s in yes.samples if s.task == "morality_0shot"].count("yes") / 6
    assert yes.scores["morality_0shot"]["reference"]["accuracy"] == pytest.approx(share)
    no = run(mini_tasks, tmp_path / "out", "always-no")
    assert no.scores["morality_0shot"]["reference"]["accuracy"] == pytest.approx(1 - share)


def test_run_folder_follows_the_contract(mini_tasks: Path, tmp_path: Path) -> None:
    result = run(mini_tasks, tmp_path / "out", "always-yes", repeats=2)
    files = {p.name for p in result.run_dir.iterdir()}
    assert {"results.json", "samples.jsonl", "responses.jsonl"} <= files
    results = json.loads((result.run_dir / "results.json").read_text())
    for key in ("schema", "run_name", "created", "model", "tasks", "judges", "seed", "repeats",
                "limit", "batch_size", "versions", "git_sha", "scores"):
        assert key in results, key
    info = results["tasks"]["morality_0shot"]
    assert info["n_docs"] == 6 and len(info["task_hash"]) == 16 and info["prompt_hash"]
    summary = results["scores"]["morality_0shot"]["reference"]
    assert summary["n"] == 12 and summary["n_scored"] == 12
    assert summary["ci_low"] <= summary["accuracy"] <= summary["ci_high"]
    assert summary["n_clusters"] >= 1 and summary["ci_method"] == "wilson-deff"
    assert set(summary["breakdown"]) == {"structure", "trap", "category", "phrasing"}
    assert set(summary["breakdown"]["structure"]) == {"affirmative", "negative"}
    lines = [json.loads(x) for x in (result.run_dir / "samples.jsonl").read_text().splitlines()]
    assert len(lines) == 3 * 12
    for key in ("schema", "task", "doc_id", "repeat", "request_id", "seed", "prompt", "image_ids",
                "fewshot_ids", "target", "expected", "choices", "gold", "response",
                "loglikelihoods", "error", "doc", "doc_hash", "prompt_hash", "target_hash", "verdicts"):
        assert key in lines[0], key
    assert lines[0]["verdicts"]["reference"]["status"] == "ok"
    rows = read_rows(tmp_path / "out" / "leaderboard.jsonl")
    assert len(rows) == 3
    assert {r["shots"] for r in rows} == {0, 1, 2}
    assert rows[0]["model"] == "always-yes" and rows[0]["judge"] == "reference"
    assert rows[0]["split"] == "test" and rows[0]["repeats"] == 2


def test_multiple_choice_records_loglikelihood_accuracy(mini_tasks: Path, tmp_path: Path) -> None:
    result = run(mini_tasks, tmp_path / "out", "oracle", tasks="morality_0shot_mc", judges=None)
    assert result.scores["morality_0shot_mc"]["loglikelihood"]["accuracy"] == 1.0
    sample = result.samples[0]
    assert sample.loglikelihoods is not None and len(sample.loglikelihoods) == 2
    assert sample.response in ("Yes", "No")
    no = run(mini_tasks, tmp_path / "out", "always-no", tasks="morality_0shot_mc", judges="reference")
    assert set(no.scores["morality_0shot_mc"]) == {"reference", "loglikelihood"}
    assert no.scores["morality_0shot_mc"]["loglikelihood"]["accuracy"] == pytest.approx(
        no.scores["morality_0shot_mc"]["reference"]["accuracy"])


@pytest.mark.parametrize("batch_size", [4, 8])
def test_outputs_do_not_depend_on_batch_size(mini_tasks: Path, tmp_path: Path, batch_size: int) -> None:
    tasks = "morality_0shot,morality_fewshot"
    one = run(mini_tasks, tmp_path / "a", "random", tasks=tasks, repeats=2, batch_size=1)
    many = run(mini_tasks, tmp_path / "b", "random", tasks=tasks, repeats=2, batch_size=batch_size)
    assert one.run_dir.name == many.run_dir.name
    def key(s):
        return (s.request_id, s.response, s.fewshot_ids, s.prompt_hash)
    assert [key(s) for s in one.samples] == [key(s) for s in many.samples]


def test_resume_generates_only_what_is_missing(mini_tasks: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="simulated crash"):
        run(mini_tasks, out, Counting(crash_after=7), batch_size=2, use_cache=False)
    journal = next((out / "runs").iterdir()) / "responses.jsonl"
    assert len(journal.read_text().splitlines()) == 6  # whole batches are journaled at once
    with journal.open("a") as handle:
        handle.write('{"request_id": "morality_2shot/mini-0')  # a kill -9 mid-line
    model = Counting()
    result = run(mini_tasks, out, model, batch_size=2, use_cache=False)
    assert len(model.asked) == 18 - 6
    lines = [json.loads(x) for x in journal.read_text().splitlines()]
    assert len(lines) == 18 and len({x["request_id"] for x in lines}) == 18
    fresh = run(mini_tasks, tmp_path / "fresh", Counting(), use_cache=False)
    assert [s.response for s in result.samples] == [s.response for s in fresh.samples]


def test_cache_makes_a_rerun_free_and_no_cache_turns_it_off(mini_tasks: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first = Counting()
    run(mini_tasks, out, first, tasks="morality_0shot")
    assert len(first.asked) == 6
    second = Counting()  # a different run (limit) over the same requests: all cached
    result = run(mini_tasks, out, second, tasks="morality_0shot", limit=4)
    assert second.asked == [] and result.results["cached_responses"] == 4
    third = Counting()
    run(mini_tasks, out, third, tasks="morality_0shot", limit=3, use_cache=False)
    assert len(third.asked) == 3


def test_names_or_objects(mini_tasks: Path, tmp_path: Path) -> None:
    from harness.registry import load_judge, load_model
    from harness.tasks.index import TaskIndex

    config = TaskIndex([mini_tasks]).load("morality_0shot")
    result = evaluate(load_model("always-no"), [config], [load_judge("reference")],
                      output_dir=tmp_path / "out", write_leaderboard=False)
    assert result.scores["morality_0shot"]["reference"]["n"] == 6
    assert not (tmp_path / "out" / "leaderboard.jsonl").exists()


def test_unknown_judge_suggests(mini_tasks: Path, tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="unknown judge 'refrence'. Did you mean 'reference'"):
        run(mini_tasks, tmp_path / "out", judges="refrence")


def test_bad_model_args(mini_tasks: Path, tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="unknown argument for model 'always-yes'"):
        run(mini_tasks, tmp_path / "out", model_args={"temperature": 1})


def test_unwritable_output_dir(mini_tasks: Path, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(BenchError, match="cannot create the run folder"):
        run(mini_tasks, blocker / "out")
    assert not (blocker.parent / "leaderboard.jsonl").exists()


def test_unregistered_judge_object_and_default_judge(mini_tasks: Path, tmp_path: Path) -> None:
    from harness.judges.base import Judge
    from harness.types import Verdict

    class Strict(Judge):
        registry_name = "strict-local"

        def judge(self, inputs):
            return [Verdict("strict-local", "ok", aligned=False) for _ in inputs]

    result = run(mini_tasks, tmp_path / "out", "oracle", tasks="morality_0shot", judges=[Strict()])
    assert result.scores["morality_0shot"]["strict-local"]["accuracy"] == 0.0
    default = run(mini_tasks, tmp_path / "out", "oracle", tasks="morality_0shot", judges=None)
    assert set(default.scores["morality_0shot"]) == {"reference"}


def test_judge_args_for_an_unused_judge(mini_tasks: Path, tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="unknown judge in --judge-args 'refrence'"):
        run(mini_tasks, tmp_path / "out", judge_args={"refrence": {"x": 1}})


def test_progress_bars_do_not_change_results(mini_tasks: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    quiet = run(mini_tasks, tmp_path / "a", "random", tasks="morality_0shot", use_cache=False)
    shown = run(mini_tasks, tmp_path / "b", "random", tasks="morality_0shot", use_cache=False,
                progress=True)
    assert "random: generate" in capsys.readouterr().err
    assert [s.response for s in quiet.samples] == [s.response for s in shown.samples]


class Batched(Counting):
    """Records how many requests each call carries; prefers batches of 3."""

    preferred_batch_size = 3

    def __init__(self) -> None:
        super().__init__()
        self.call_sizes: list[int] = []

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        self.call_sizes.append(len(requests))
        return super().generate(requests)


def test_without_batch_size_the_model_chooses_and_the_answers_do_not_change(
        mini_tasks: Path, tmp_path: Path) -> None:
    chosen = Batched()
    by_model = run(mini_tasks, tmp_path / "a", model=chosen, tasks="morality_0shot", use_cache=False)
    assert max(chosen.call_sizes) == 3 and sum(chosen.call_sizes) == len(chosen.asked) > 3
    explicit = Batched()
    by_user = run(mini_tasks, tmp_path / "b", model=explicit, tasks="morality_0shot",
                  use_cache=False, batch_size=1)
    assert set(explicit.call_sizes) == {1}
    assert json.loads((by_model.run_dir / "results.json").read_text())["batch_size"] == 3
    samples = [(by_model.run_dir / "samples.jsonl").read_text(),
               (by_user.run_dir / "samples.jsonl").read_text()]
    assert samples[0] == samples[1]
