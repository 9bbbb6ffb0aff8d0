"""Judge verdicts are journalled and cached: the judge model is asked once per distinct input.

A vlm-judge served by the local fake chat server is set up from the command line with
nested ``--judge-args`` keys alone; a killed ``score`` resumes without asking again.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from harness.commands.cli import main
from tests.models.chat_server import running_server

JUDGE_TASK = "morality_0shot"


def judge_args(url: str) -> str:
    # The fake server answers "seed=S images=N ..."; a grade pattern on images= makes it a judge.
    return ("vlm-judge.model=openai,vlm-judge.model_args.base_url=" + url
            + ",vlm-judge.model_args.model=judge-vlm,vlm-judge.model_args.api_key_env=none"
            + r",vlm-judge.pattern=images=(\d),vlm-judge.grades=1=aligned;0=misaligned")


def run_dirs(out: Path) -> list[Path]:
    return sorted((out / "runs").iterdir(), key=lambda p: p.stat().st_mtime)


def bench(out: Path, include: Path, url: str, *extra: str) -> None:
    assert main(["--model", "always-yes", "--tasks", JUDGE_TASK, "--include-path", str(include),
                 "--judges", "vlm-judge", "--judge-args", judge_args(url), "--output-dir",
                 str(out), "--no-progress", *extra]) == 0


def test_run_score_and_other_runs_ask_the_judge_once(mini_tasks: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with running_server() as server:
        bench(out, mini_tasks, server.url)
        first = run_dirs(out)[0]
        assert len(server.bodies) == 6  # one judge request per sample
        assert server.bodies[0]["model"] == "judge-vlm"
        results = json.loads((first / "results.json").read_text())
        summary = results["scores"][JUDGE_TASK]["vlm-judge"]
        assert (summary["n_scored"], summary["accuracy"]) == (6, 1.0)
        journal = [json.loads(x) for x in (first / "verdicts.jsonl").read_text().splitlines()]
        assert len(journal) == 6 and not any(x["cached"] for x in journal)

        # score twice: the run's verdict journal answers, the server is not asked.
        for _ in range(2):
            assert main(["score", str(first), "--judges", "vlm-judge", "--judge-args",
                         judge_args(server.url), "--no-leaderboard"]) == 0
        assert len(server.bodies) == 6
        rescored = json.loads((first / "results.json").read_text())
        assert rescored["scores"][JUDGE_TASK]["vlm-judge"]["accuracy"] == 1.0

        # Another run asking the same questions (another seed, same answers): the cache answers.
        bench(out, mini_tasks, server.url, "--seed", "1")
        assert len(server.bodies) == 6
        second = run_dirs(out)[-1]
        assert second != first
        cached = [json.loads(x) for x in (second / "verdicts.jsonl").read_text().splitlines()]
        assert len(cached) == 6 and all(x["cached"] for x in cached)

        # --no-cache bypasses it: a third run pays again, once per sample.
        bench(out, mini_tasks, server.url, "--seed", "2", "--no-cache")
        assert len(server.bodies) == 12
        # A different rubric is a different question.
        rubric = tmp_path / "strict.jinja"
        rubric.write_text("{{ images }}Strict.\n{{ boundary }}\n{{ response }}\n{{ boundary }}\n")
        assert main(["score", str(first), "--judges", "vlm-judge", "--judge-args",
                     judge_args(server.url) + f",vlm-judge.rubric={rubric}",
                     "--no-leaderboard"]) == 0
        assert len(server.bodies) == 18


def test_failed_judge_calls_are_asked_again_not_cached(mini_tasks: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with running_server() as server:
        # A wrong model path: every judge call fails with HTTP 404 (setup error)...
        args = judge_args(server.url[:-3]) + ",vlm-judge.model_args.max_retries=0"
        code = main(["--model", "always-yes", "--tasks", JUDGE_TASK, "--include-path",
                     str(mini_tasks), "--judges", "vlm-judge", "--judge-args", args,
                     "--output-dir", str(out), "--no-progress"])
        failed_calls = len(server.bodies)
        assert failed_calls >= 1
        if code == 0:
            run = run_dirs(out)[0]
            summary = json.loads((run / "results.json").read_text())["scores"][JUDGE_TASK]
            assert summary["vlm-judge"]["error_rate"] == 1.0
        # ...and are asked again (journal and cache remember no failure) once the URL is right.
        bench(out, mini_tasks, server.url)
        assert len(server.bodies) == failed_calls + 6
        cache = out / "cache" / "verdicts-vlm-judge.jsonl"
        assert len(cache.read_text().splitlines()) == 6


SCRIPT = textwrap.dedent("""
    import hashlib, sys, time
    from harness.commands.cli import main
    from harness.models.base import Model
    from harness.registry import register_model
    from harness.types import Response

    @register_model("counting-judge")
    class CountingJudge(Model):
        def generate(self, requests):
            time.sleep(float(sys.argv[1]))
            with open(sys.argv[2], "a") as log:
                log.writelines(hashlib.sha256(r.text.encode()).hexdigest() + "\\n"
                               for r in requests)
            return [Response(r.request_id, text="ALIGNED") for r in requests]

    sys.exit(main(sys.argv[3:]))
""")


def launch_score(tmp_path: Path, run: Path, delay: float, log: Path) -> subprocess.Popen:
    script = tmp_path / "counting.py"
    script.write_text(SCRIPT)
    root = Path(__file__).resolve().parents[2]
    return subprocess.Popen(
        [sys.executable, str(script), str(delay), str(log), "score", str(run), "--judges",
         "vlm-judge", "--judge-args", "vlm-judge.model=counting-judge,vlm-judge.batch_size=1",
         "--no-leaderboard"], env={**os.environ, "PYTHONPATH": str(root)}, cwd=tmp_path,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.slow
def test_killed_score_resumes_without_asking_again(mini_tasks: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert main(["--model", "always-yes", "--tasks", "morality_0shot,morality_1shot",
                 "--include-path", str(mini_tasks), "--judges", "reference",
                 "--output-dir", str(out), "--no-progress"]) == 0
    run = run_dirs(out)[0]
    log = tmp_path / "asked.log"
    process = launch_score(tmp_path, run, 0.3, log)
    journal = run / "verdicts.jsonl"
    deadline = time.time() + 60
    while time.time() < deadline:
        if journal.exists() and len(journal.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    asked_before = log.read_text().split()
    assert 3 <= len(asked_before) < 12, "the kill came too late to test resuming"
    samples_before = [json.loads(x) for x in (run / "samples.jsonl").read_text().splitlines()]
    assert not any("vlm-judge" in s["verdicts"] for s in samples_before)

    for _ in range(2):  # resume, then score again
        process = launch_score(tmp_path, run, 0.0, log)
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err.decode()
    asked = Counter(log.read_text().split())
    assert len(asked) == 12 and set(asked.values()) == {1}  # each distinct input once
    samples = [json.loads(x) for x in (run / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 12
    assert all(s["verdicts"]["vlm-judge"]["status"] == "ok" for s in samples)
