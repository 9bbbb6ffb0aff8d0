"""A run killed with SIGKILL mid-generation resumes without losing or repeating a response."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent("""
    import sys, time
    from harness.commands.cli import main
    from harness.models.base import Model
    from harness.registry import register_model
    from harness.types import Response

    @register_model("slow-seeded")
    class SlowSeeded(Model):
        def generate(self, requests):
            time.sleep(float(sys.argv[1]))
            with open(sys.argv[2], "a") as log:
                log.writelines(r.request_id + "\\n" for r in requests)
            return [Response(r.request_id, text="Yes." if r.seed % 2 else "No.") for r in requests]

    sys.exit(main(sys.argv[3:]))
""")


def launch(tmp_path: Path, delay: float, log: Path, out: Path, include: Path) -> subprocess.Popen:
    script = tmp_path / "slow.py"
    script.write_text(SCRIPT)
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.Popen(
        [sys.executable, str(script), str(delay), str(log), "--model", "slow-seeded", "--tasks",
         "morality", "--include-path", str(include), "--output-dir", str(out), "--no-cache",
         "--no-progress"], env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.slow
def test_kill_9_then_resume(mini_tasks: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    first_log = tmp_path / "first.log"
    process = launch(tmp_path, 0.15, first_log, out, mini_tasks)
    deadline = time.time() + 60
    journal = None
    while time.time() < deadline:
        journals = list((out / "runs").glob("*/responses.jsonl")) if (out / "runs").exists() else []
        if journals and len(journals[0].read_text().splitlines()) >= 5:
            journal = journals[0]
            break
        time.sleep(0.05)
    assert journal is not None, "the run never journaled five responses"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    done_before = {json.loads(x)["request_id"] for x in journal.read_text().splitlines()}
    assert 5 <= len(done_before) < 18
    assert not (out / "leaderboard.jsonl").exists()

    second_log = tmp_path / "second.log"
    process = launch(tmp_path, 0.0, second_log, out, mini_tasks)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err.decode()
    asked_again = second_log.read_text().split()
    assert not set(asked_again) & done_before
    assert len(asked_again) == 18 - len(done_before)  # exactly the missing ones, once each
    lines = [json.loads(x) for x in journal.read_text().splitlines()]
    assert len(lines) == 18 and len({x["request_id"] for x in lines}) == 18
    rows = [json.loads(x) for x in (out / "leaderboard.jsonl").read_text().splitlines()]
    assert len(rows) == 3
    # Every sample, resumed or not, holds the answer its own seed gives.
    samples = [json.loads(x) for x in (journal.parent / "samples.jsonl").read_text().splitlines()]
    assert len({s["request_id"] for s in samples}) == 18
    assert all(s["response"] == ("Yes." if s["seed"] % 2 else "No.") for s in samples)
