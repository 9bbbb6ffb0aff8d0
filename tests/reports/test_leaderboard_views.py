"""The ``leaderboard`` sub-command on fixture rows written by the tests."""

from __future__ import annotations

import argparse
import csv
import io
import json
from pathlib import Path
from typing import Any

import pytest

from harness.commands import leaderboard as leaderboard_views
from harness.errors import BenchError
from harness.reports import render
from harness.reports.leaderboard import append_rows

EVIL = '<script>window.pwned = 1</script>&"x"'


def make_row(model: str, variant: str, task: str, shots: int, split: str, judge: str,
             accuracy: float, date: str = "2026-11-20T10:00:00Z", **extra: Any) -> dict[str, Any]:
    return {"date": date, "run_name": f"{model}-{task}", "run_dir": "runs/x", "model": model,
            "variant": variant, "model_fingerprint": "fp", "task": task, "shots": shots,
            "split": split, "judge": judge, "judge_version": "1", "judge_settings_hash": "h",
            "accuracy": accuracy, "ci_low": max(0.0, accuracy - 0.2),
            "ci_high": min(1.0, accuracy + 0.2), "strict_accuracy": accuracy,
            "strict_accuracy_ci_low": max(0.0, accuracy - 0.2),
            "strict_accuracy_ci_high": min(1.0, accuracy + 0.2),
            "n": 30, "n_scored": 30, "repeats": 1,
            "refusal_rate": 0.0, "unclear_rate": 0.1, "error_rate": 0.0, "seed": 1234,
            "git_sha": "0123456789abcdef", "task_hash": "t" * 16, "prompt_hash": "p" * 16,
            **extra}


def paper_rows() -> list[dict[str, Any]]:
    rows = []
    table1 = {"ethics-classifier": (0.90, 0.93, 0.93), "reference": (0.56, 0.67, 0.56)}
    for judge, accuracies in table1.items():
        for shots, accuracy in enumerate(accuracies):
            rows.append(make_row("magma", "base", f"morality_{shots}shot_train", shots, "train",
                                 judge, accuracy))
    rows.append(make_row("magma", "base", "morality_0shot", 0, "test", "reference", 0.50))
    rows.append(make_row("magma", "finetuned", "morality_0shot_train", 0, "train", "reference",
                         0.67))
    rows.append(make_row("magma", "finetuned", "morality_0shot", 0, "test", "reference", 0.60))
    return rows


@pytest.fixture()
def output_dir(tmp_path: Path) -> Path:
    # An older row for an entry that is superseded by a later one.
    append_rows(tmp_path / "leaderboard.jsonl",
                [make_row("magma", "base", "morality_1shot_train", 1, "train", "reference", 0.10,
                          date="2026-11-01T10:00:00Z")])
    append_rows(tmp_path / "leaderboard.jsonl", paper_rows())
    append_rows(tmp_path / "leaderboard.jsonl",
                [make_row(EVIL, "", "morality_0shot_train", 0, "train", "reference", 0.3),
                 make_row(EVIL, "", "morality_1shot_train", 1, "train", "reference", 0.4)])
    return tmp_path


def run_leaderboard(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    leaderboard_views.add_arguments(parser)
    return leaderboard_views.run(parser.parse_args(list(argv)))


def test_latest_row_wins_per_entry() -> None:
    old = make_row("m", "", "t", 0, "train", "j", 0.1, date="2026-01-02T00:00:00Z")
    new = make_row("m", "", "t", 0, "train", "j", 0.9, date="2026-01-03T00:00:00Z")
    same_date_later_line = make_row("m", "", "t", 0, "train", "j", 0.5,
                                    date="2026-01-03T00:00:00Z")
    other_seed = make_row("m", "", "t", 0, "train", "j", 0.2, seed=7)
    assert leaderboard_views.latest_rows([new, old]) == [new]
    assert leaderboard_views.latest_rows([old, new, same_date_later_line]) == [
        same_date_later_line]
    assert len(leaderboard_views.latest_rows([old, other_seed])) == 2


def test_csv_rows_are_latest_and_raw(output_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_leaderboard("--output-dir", str(output_dir), "--format", "csv",
                           "--task", "morality_1shot_train", "--judge", "reference") == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["model"], r["accuracy"]) for r in rows] == [("magma", "0.67"), (EVIL, "0.4")]
    assert rows[0]["task_hash"] == "t" * 16 and rows[0]["seed"] == "1234"


def test_all_keeps_superseded_rows(output_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run_leaderboard("--output-dir", str(output_dir), "--format", "csv", "--all",
                    "--task", "morality_1shot_train", "--model", "magma", "--judge", "reference")
    accuracies = [r["accuracy"] for r in csv.DictReader(io.StringIO(capsys.readouterr().out))]
    assert sorted(accuracies) == ["0.1", "0.67"]


def test_markdown_escapes_pipes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    append_rows(tmp_path / "leaderboard.jsonl",
                [make_row("a|b", "", "t", 0, "train", "reference", 0.5)])
    run_leaderboard("--output-dir", str(tmp_path), "--format", "markdown")
    table_lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| a")]
    assert table_lines[0].startswith("| a\\|b | - | t | 0 | train | reference | 50% [30–70] | 50% [30–70] | 30/30 |")


def test_table_format_prints_every_entry(output_dir: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    run_leaderboard("--output-dir", str(output_dir), "--model", "magma")
    out = capsys.readouterr().out
    assert "morality_2shot_train" in out and "ethics-classifier" in out
    assert "93% [73–100]" in out
    assert "10% [0–30]" not in out  # the superseded row
    assert sum(line.startswith("│ magma ") for line in out.splitlines()) == 9


def test_paper_view_matches_the_papers_tables(output_dir: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    run_leaderboard("--output-dir", str(output_dir), "--view", "paper", "--format", "csv",
                    "--model", "magma")
    out = capsys.readouterr().out
    sections = [list(csv.reader(io.StringIO(block))) for block in out.strip().split("\n\n")]
    table1_base = next(s for s in sections if s[0][0].startswith("Table 1: magma (base)"))
    assert table1_base[1] == ["judge", "0-shot train", "1-shot train", "2-shot train"]
    assert table1_base[2] == ["ethics-classifier", "90% [70–100] n=30", "93% [73–100] n=30",
                              "93% [73–100] n=30"]
    assert table1_base[3] == ["reference", "56% [36–76] n=30", "67% [47–87] n=30",
                              "56% [36–76] n=30"]
    table2 = next(s for s in sections if s[0][0].startswith("Table 2: judge reference"))
    assert table2[1] == ["model", "0-shot train", "0-shot test"]
    assert table2[2:] == [["magma (base)", "56% [36–76] n=30", "50% [30–70] n=30"],
                          ["magma (finetuned)", "67% [47–87] n=30", "60% [40–80] n=30"]]


def test_paper_view_names_each_rows_sampler(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rows = [make_row("magma", "", "morality_0shot_train", 0, "train", "reference", 0.5,
                     sampler="original, top_p 0.9"),
            make_row("magma", "", "morality_0shot_train", 0, "train", "reference", 0.7,
                     sampler="original-2021, top_p 0.9"),
            make_row("magma", "", "morality_0shot", 0, "test", "reference", 0.4,
                     sampler="original, top_p 0.9")]
    append_rows(tmp_path / "leaderboard.jsonl", rows)
    run_leaderboard("--output-dir", str(tmp_path), "--view", "paper", "--format", "csv")
    out = capsys.readouterr().out
    sections = [list(csv.reader(io.StringIO(block))) for block in out.strip().split("\n\n")]
    table2 = next(s for s in sections if s[0][0].startswith("Table 2"))
    # two samplers are two model rows, not one cell where the latest wins
    assert table2[2:] == [["magma [sampler: original, top_p 0.9]", "50% [30–70] n=30", "40% [20–60] n=30"],
                          ["magma [sampler: original-2021, top_p 0.9]", "70% [50–90] n=30", "'-"]]
    run_leaderboard("--output-dir", str(tmp_path), "--format", "csv")
    assert "original-2021, top_p 0.9" in capsys.readouterr().out


def test_unknown_filter_suggests_a_close_name(output_dir: Path) -> None:
    with pytest.raises(BenchError, match="unknown task 'morality_1shot_tran'.*morality_1shot_train"):
        run_leaderboard("--output-dir", str(output_dir), "--task", "morality_1shot_tran")


def test_missing_leaderboard_is_a_bench_error(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="no leaderboard at"):
        run_leaderboard("--output-dir", str(tmp_path / "nowhere"))


def test_damaged_line_is_reported_with_its_number(output_dir: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = output_dir / "leaderboard.jsonl"
    with path.open("a") as handle:
        handle.write('{"model": "half-writ')
    n_lines = len(path.read_text().splitlines())
    assert run_leaderboard("--output-dir", str(output_dir), "--format", "csv") == 0
    captured = capsys.readouterr()
    assert f"leaderboard.jsonl:{n_lines}: damaged line skipped" in captured.err
    assert "half-writ" not in captured.out


def test_html_escapes_model_text_and_embeds_the_plot(output_dir: Path) -> None:
    target = output_dir / "page.html"
    run_leaderboard("--output-dir", str(output_dir), "--format", "html", "--out", str(target))
    page = target.read_text()
    assert "<script>" not in page
    assert "&lt;script&gt;window.pwned = 1&lt;/script&gt;&amp;&#34;x&#34;" in page
    assert 'src="data:image/png;base64,' in page
    assert "http://" not in page and "https://" not in page  # self-contained


def test_plot_png_is_a_png_even_with_mathtext_in_names() -> None:
    rows = [make_row("cost$1$ model", "", "t", s, "train", "j", 0.5) for s in (0, 1, 2)]
    png = render.accuracy_plot_png(rows)
    assert png is not None and png.startswith(b"\x89PNG")


def test_rows_missing_fields_survive_every_format(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    # Old or foreign rows may lack fields; they show as "-" rather than crash the view.
    (tmp_path / "leaderboard.jsonl").write_text(json.dumps({"model": "bare", "task": "t"}) + "\n")
    for fmt in ("table", "markdown", "csv"):
        assert run_leaderboard("--output-dir", str(tmp_path), "--format", fmt) == 0
        assert "bare" in capsys.readouterr().out


def test_plot_survives_missing_or_inconsistent_ci() -> None:
    rows = [make_row("m", "", "t", 0, "train", "j", 0.5, ci_low=None, ci_high=None),
            make_row("m", "", "t", 1, "train", "j", 0.5, ci_low=0.6, ci_high=0.7)]
    png = render.accuracy_plot_png(rows)
    assert png is not None and png.startswith(b"\x89PNG")


def test_html_rows_link_to_their_run_or_its_exported_viewer(tmp_path: Path) -> None:
    plain, viewed = tmp_path / "runs" / "plain", tmp_path / "runs" / "viewed"
    (viewed / "view").mkdir(parents=True)
    (viewed / "view" / "index.html").write_text("<!doctype html>")
    plain.mkdir()
    append_rows(tmp_path / "leaderboard.jsonl", [
        make_row("m1", "", "morality_0shot", 0, "test", "reference", 0.5, run_dir=str(plain)),
        make_row("m2", "", "morality_0shot", 0, "test", "reference", 0.6, run_dir=str(viewed)),
        make_row("m3", "", "morality_0shot", 0, "test", "reference", 0.7)])  # relative: no link
    target = tmp_path / "page.html"
    run_leaderboard("--output-dir", str(tmp_path), "--format", "html", "--out", str(target))
    page = target.read_text()
    assert f'<a class="run-link" href="{plain.as_uri()}">m1</a>' in page
    assert f'<a class="run-link" href="{(viewed / "view" / "index.html").as_uri()}">m2</a>' in page
    assert page.count('class="run-link"') == 2


def instrument_row(model: str, strict: float, scored: float, **extra: Any) -> dict[str, Any]:
    row = make_row(model, "", "morality_0shot", 0, "test", "reference", scored, **extra)
    row.update({"strict_accuracy": strict, "strict_accuracy_ci_low": strict - 0.1,
                "strict_accuracy_ci_high": strict + 0.1, "n_scored": 20,
                "pair_consistency": 0.25, "pair_consistency_ci_low": 0.1,
                "pair_consistency_ci_high": 0.4, "yes_bias": 0.5, "yes_bias_ci_low": 0.41,
                "yes_bias_ci_high": 0.6})
    return row


def test_paper_view_shows_strict_accuracy_over_all_items(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    # 20 of 30 items scored, 15 of them right: scored 75%, strict 50%.
    old = make_row("old", "", "morality_0shot", 0, "test", "reference", 0.6)
    for key in ("strict_accuracy", "strict_accuracy_ci_low", "strict_accuracy_ci_high"):
        old.pop(key)
    append_rows(tmp_path / "leaderboard.jsonl", [instrument_row("new", 0.5, 0.75), old])
    run_leaderboard("--output-dir", str(tmp_path), "--format", "markdown", "--view", "paper")
    out = capsys.readouterr().out
    assert "| new | - | 50% [40–60] n=30 |" in out
    # A row written before strict accuracy existed shows scored accuracy, marked so.
    assert "| old | - | 60% [40–80] n=30 (scored) |" in out


def test_rows_view_shows_both_accuracies_and_the_instrument(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    append_rows(tmp_path / "leaderboard.jsonl", [instrument_row("m", 0.5, 0.75)])
    run_leaderboard("--output-dir", str(tmp_path), "--format", "markdown")
    header, _, line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("|")][:3]
    cells = dict(zip([c.strip() for c in header.split("|")], [c.strip() for c in line.split("|")]))
    assert cells["strict accuracy [95% CI]"] == "50% [40–60]"
    assert cells["scored accuracy [95% CI]"] == "75% [55–95]"
    assert cells["pair consistency"] == "25% [10–40]"
    assert cells["yes bias"] == "+0.50 [+0.41, +0.60]"
    assert "image reliance" not in cells  # no row has it: no empty column


def test_csv_carries_every_metric_and_the_ablation(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    append_rows(tmp_path / "leaderboard.jsonl",
                [instrument_row("m", 0.5, 0.75, image_ablation="blank")])
    run_leaderboard("--output-dir", str(tmp_path), "--format", "csv")
    (row,) = csv.DictReader(io.StringIO(capsys.readouterr().out))
    assert (row["strict_accuracy"], row["accuracy"], row["image_ablation"]) == ("0.5", "0.75", "blank")
    assert (row["yes_bias"], row["yes_bias_ci_low"], row["echo_rate"]) == ("0.5", "0.41", "")


def test_sorting_ranks_by_strict_accuracy() -> None:
    rows = [instrument_row("scored-high", 0.4, 0.9), instrument_row("strict-high", 0.6, 0.6)]
    assert [r["model"] for r in leaderboard_views.sort_rows(rows)] == ["strict-high", "scored-high"]
