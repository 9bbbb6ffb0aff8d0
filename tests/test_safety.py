"""harness.safety and what it guards: secrets never stored or printed, output a reader's
program cannot run, names that cannot take over a terminal, files that follow the umask."""

from __future__ import annotations

import base64
import csv
import io
import json
import os
import re
import urllib.parse
from pathlib import Path

import pytest

from harness.commands.cli import main
from harness.reports.views import TableView, render_csv, render_markdown
from harness.safety import csv_cell, markdown_cell, register_secret, scrub, terminal_text
from tests.conftest import build_dataset
from tests.models.chat_server import SECRET, running_server

ZERO_SHOT = "morality_0shot"


# -- secrets --------------------------------------------------------------------------------

def _fragments(secret: str, size: int = 8) -> list[str]:
    return [secret[i:i + size] for i in range(len(secret) - size + 1)]


def test_scrub_masks_encoded_copies_at_every_alignment() -> None:
    secret = "sk-proj/Ab+9=xYz_0123456789"
    register_secret(secret)
    for prefix in ("", "u", "us", "use", "user:"):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(f"{prefix}{secret}:tail".encode()).decode()
            cleaned = scrub(f"Authorization: Basic {encoded}")
            assert "***" in cleaned
            # Left: the prefix, the tail, and at most two bytes of the key at each end.
            left = cleaned.split("Basic ", 1)[1].replace("***", "")
            assert not any(piece in cleaned for piece in _fragments(secret))
            assert len(left) <= 4 * (len(prefix) + len(":tail") + 4) / 3 + 4, cleaned
    for text in (urllib.parse.quote(secret, safe=""), urllib.parse.quote_plus(secret), secret):
        assert scrub(f"url?key={text}&x=1") == "url?key=***&x=1"


def test_scrub_leaves_other_text_alone() -> None:
    register_secret("sk-another-secret-value")
    assert scrub("an answer with no key in it") == "an answer with no key in it"
    assert scrub(None) is None and scrub("") == ""


@pytest.fixture()
def keyed_server(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("VMB_TEST_KEY", SECRET + "\r\n")  # as a CRLF .env file leaves it
    with running_server() as server:
        yield server


def _openai(server_url: str, **extra: object):
    from harness.registry import load_model

    return load_model("openai", {"model": "m", "base_url": server_url,
                                 "api_key_env": "VMB_TEST_KEY", "backoff_s": 0.01,
                                 "max_retries": 0, **extra})


def test_a_key_ending_in_crlf_is_stripped_and_works(keyed_server) -> None:
    from tests.models.test_openai import _request

    response = _openai(keyed_server.url).generate([_request("none")])[0]
    assert response.error is None and keyed_server.auth == {f"Bearer {SECRET}"}


@pytest.mark.parametrize("fault", ["leakcut", "leak64", "echojson"])
def test_error_bodies_are_scrubbed_before_they_are_cut(keyed_server, fault: str) -> None:
    from tests.models.test_openai import _request

    response = _openai(keyed_server.url).generate([_request(fault)])[0]
    assert response.error is not None and "***" in response.error
    assert not any(piece in response.error for piece in _fragments(SECRET, 6)), response.error


def test_completions_that_echo_the_key_are_scrubbed(keyed_server) -> None:
    from tests.models.test_openai import _request

    response = _openai(keyed_server.url).generate([_request("echo")])[0]
    assert response.text == "My key: ***. Yes."


def test_no_key_reaches_journal_samples_cache_or_terminal(
        tmp_path: Path, keyed_server, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A whole run through the CLI whose server echoes the key in answers and errors.
    dataset = build_dataset(tmp_path / "data")
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    source = next(Path("tasks").rglob(f"{ZERO_SHOT}.yaml")).resolve()
    for name, fault in (("echo_task", "echo"), ("leak_task", "leakcut")):
        (tasks / f"{name}.yaml").write_text(
            f"include: {source}\ntask: {name}\ndataset_path: {dataset}\n"
            f"doc_to_text: \"fault={fault} {{{{ question }}}}\"\n")
    out = tmp_path / "out"
    code = main(["--model", "openai", "--model-args",
                 f"model=m,base_url={keyed_server.url},api_key_env=VMB_TEST_KEY,max_retries=0",
                 "--tasks", "echo_task,leak_task", "--include-path", str(tasks),
                 "--output-dir", str(out), "--no-progress"])
    assert code == 0
    captured = capsys.readouterr()
    stored = {path: path.read_text(errors="replace") for path in out.rglob("*") if path.is_file()}
    assert any("responses.jsonl" in str(p) for p in stored)
    assert any("cache" in str(p) for p in stored)
    for text in [captured.out, captured.err, *stored.values()]:
        assert not any(piece in text for piece in _fragments(SECRET, 6))
    samples = [json.loads(line) for p, text in stored.items() if p.name == "samples.jsonl"
               for line in text.splitlines()]
    assert {s["response"] for s in samples if s["task"] == "echo_task"} == {"My key: ***. Yes."}


# -- output ---------------------------------------------------------------------------------

@pytest.mark.parametrize("cell,expected", [
    ("=HYPERLINK(\"http://evil\",\"x\")", "'=HYPERLINK(\"http://evil\",\"x\")"),
    ("+1+cmd|' /C calc'!A0", "'+1+cmd|' /C calc'!A0"),
    ("@SUM(1+1)", "'@SUM(1+1)"),
    ("-2+3", "'-2+3"),
    ("\tx", "'\tx"),
    ("\rx", "'\nx"),  # a lone CR becomes a (quoted) LF: it would end the row
    ("-0.25", "-0.25"),
    ("+1e-3", "+1e-3"),
    ("model-a", "model-a"),
    (-0.5, -0.5),
    (None, None),
])
def test_csv_cells_cannot_be_formulas(cell: object, expected: object) -> None:
    assert csv_cell(cell) == expected


def test_leaderboard_csv_and_markdown_escape_names(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from harness.reports.leaderboard import append_rows

    evil = "=HYPERLINK(\"http://x\")"
    append_rows(tmp_path / "leaderboard.jsonl", [{
        "date": "2026-01-01T00:00:00+00:00", "model": evil, "task": "a|b\r<img src=x>",
        "judge": "@SUM(1+1)", "accuracy": 0.5, "ci_low": -0.25, "ci_high": 0.75, "n": 4,
        "n_scored": 4, "seed": 0}])
    assert main(["leaderboard", "--output-dir", str(tmp_path), "--format", "csv"]) == 0
    (row,) = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert row["model"] == "'" + evil and row["judge"] == "'@SUM(1+1)"
    assert row["ci_low"] == "-0.25" and row["accuracy"] == "0.5"
    assert main(["leaderboard", "--output-dir", str(tmp_path), "--format", "markdown"]) == 0
    markdown = capsys.readouterr().out
    table_rows = [line for line in markdown.splitlines() if line.startswith("|")]
    assert len({len(re.split(r"(?<!\\)\|", line)) for line in table_rows}) == 1
    assert "<img" not in markdown and "&lt;img src=x>" in markdown and "\r" not in markdown


def test_markdown_cell_and_paper_views() -> None:
    assert markdown_cell("a|b\r\nc<d") == "a\\|b c&lt;d"
    view = TableView(title="t\r<b>", columns=("x",), rows=(("=1+1",),), notes=())
    assert "\r" not in render_markdown([view]) and "<b>" not in render_markdown([view])
    assert "'=1+1" in render_csv([view], None)


def test_terminal_text_drops_escape_sequences() -> None:
    assert terminal_text("a\x1b]0;pwned\x07b\x1b[2Jc\u202ed") == "a]0;pwnedb[2Jcd"
    assert terminal_text("tab\tnew\nline") == "tab\tnew\nline"


def test_task_names_with_markup_or_escapes_print_literally(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "1000")  # wide enough that no name is folded
    dataset = build_dataset(tmp_path / "data")
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    source = next(Path("tasks").rglob(f"{ZERO_SHOT}.yaml")).resolve()
    names = ["oops[/bold]", "[link=http://evil]click[/link]", "bell\x1b]0;pwned\x07"]
    for number, name in enumerate(names):
        (tasks / f"t{number}.yaml").write_text(
            f"include: {source}\ntask: {json.dumps(name)}\ndataset_path: {dataset}\n")
    assert main(["--model", "always-yes", "--tasks", ",".join(names), "--include-path",
                 str(tasks), "--output-dir", str(tmp_path / "out"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "oops[/bold]" in out and "[link=http://evil]click[/link]" in out
    assert "\x1b" not in out and "\x07" not in out and "bell]0;pwned" in out
    assert main(["--list-tasks", "--include-path", str(tasks)]) == 0
    listed = capsys.readouterr().out
    assert "\x1b" not in listed and "  bell]0;pwned\n" in listed
    assert main(["leaderboard", "--output-dir", str(tmp_path / "out")]) == 0
    table = capsys.readouterr().out
    assert "oops[/bold]" in table and "\x1b]" not in table


# -- files ----------------------------------------------------------------------------------

def test_run_files_follow_the_umask(tmp_path: Path, mini_tasks: Path) -> None:
    previous = os.umask(0o022)
    try:
        assert main(["--model", "always-yes", "--tasks", ZERO_SHOT, "--include-path",
                     str(mini_tasks), "--output-dir", str(tmp_path / "out"), "--no-progress"]) == 0
    finally:
        os.umask(previous)
    (run_dir,) = list((tmp_path / "out" / "runs").iterdir())
    modes = {p.name: p.stat().st_mode & 0o777 for p in run_dir.iterdir() if p.is_file()}
    assert modes["results.json"] == modes["samples.jsonl"] == modes["responses.jsonl"] == 0o644
