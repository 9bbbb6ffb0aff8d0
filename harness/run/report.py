"""What a finished run reports beyond its folder: provenance, leaderboard rows, a summary table.

Reports only read records; they compute no score and write no file themselves (the run folder
is ``harness.run.folder``'s, the leaderboard ``harness.reports.leaderboard``'s).
"""

from __future__ import annotations

import itertools
import json
import platform
import re
import subprocess
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from harness.files import atomic_file, write_atomic
from harness.judges.base import Judge
from harness.judges.metrics import MetricScorer
from harness.paths import PROJECT_ROOT
from harness.reports import lm_eval_format
from harness.reports.leaderboard import append_rows
from harness.run.folder import Results, leaderboard_file
from harness.run.metrics import METRICS
from harness.run.samples import (
    LOGLIKELIHOOD,
    LOGLIKELIHOOD_VERSION,
    Sample,
    loglikelihood_settings_hash,
)
from harness.safety import terminal_text
from harness.stats.intervals import RELIABLE_MIN_CLUSTERS
from harness.tasks.ablation import variant_with_ablation

VERSIONED_PACKAGES = ("vlm-morality-bench", "torch", "transformers", "accelerate", "datasets",
                      "numpy", "Pillow", "Jinja2", "PyYAML")


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_sha() -> str | None:
    """The checkout's commit (with ``-dirty`` when it has changes), or None outside git."""
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return sha + ("-dirty" if dirty.strip() else "") if sha else None


def write_lm_eval(output_dir: Path, results: Results, samples: Iterable[Sample],
                  scorers: Mapping[str, MetricScorer] | None = None) -> Path:
    """lm-eval 0.4's ``results_<date>.json`` and ``samples_<task>_<date>.jsonl`` for a run.

    Laid out as lm-eval lays them out under ``--output-path``:
    ``<output-dir>/<model name, sanitized>/``. ``samples`` stream by in run order, each
    task's together; none is held. ``scorers`` give each sample's lm-eval metric values,
    filter by filter, for the samples files (the results file reads ``results``).
    Returns the results file.
    """
    full = results.to_dict()
    folder = Path(output_dir) / lm_eval_format.sanitize_model_name(full["model"]["name"])
    stamp = lm_eval_format.date_id()
    wanted = {**full["scores"], **(full.get("metrics") or {})}
    unwritten = dict.fromkeys(wanted)
    for task, task_samples in itertools.groupby(samples, key=lambda sample: sample.task):
        if task not in wanted:
            continue
        if task not in unwritten:
            raise RuntimeError(f"the samples of task {task} are not all together")
        del unwritten[task]
        _write_samples_document(folder / f"samples_{task}_{stamp}.jsonl",
                                full["tasks"][task]["config"], task_samples,
                                (scorers or {}).get(task))
    for task in unwritten:
        _write_samples_document(folder / f"samples_{task}_{stamp}.jsonl",
                                full["tasks"][task]["config"], (), None)
    path = folder / f"results_{stamp}.json"
    write_atomic(path, json.dumps(lm_eval_format.results_document(full), indent=2,
                                  ensure_ascii=False, default=str) + "\n")
    return path


def _write_samples_document(path: Path, config: Mapping[str, Any], samples: Iterable[Sample],
                            scorer: MetricScorer | None) -> None:
    def lines() -> Iterator[dict[str, Any]]:
        for sample in samples:
            line = sample.to_dict()
            if scorer is not None:
                line[lm_eval_format.LM_EVAL_FILTERS] = scorer.per_filter(sample)
            yield line

    with atomic_file(path) as handle:
        for line in lm_eval_format.samples_document(config, lines()):
            handle.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")


def shots(task: str, config: Mapping[str, Any]) -> int | None:
    """How many shots a task gives: its num_fewshot, or the ``Nshot`` in its name."""
    if config.get("num_fewshot"):
        return int(config["num_fewshot"])
    match = re.search(r"(\d+)[-_]?shot", task)
    return int(match.group(1)) if match else None


def leaderboard_rows(run_dir: Path, results: Results, judges: Mapping[str, Judge],
                     only_judges: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """One row per (task, judge) of a run; ``only_judges`` limits which judges."""
    wanted = set(only_judges) if only_judges is not None else None
    model = results.model
    rows = []
    date = datetime.now(timezone.utc).isoformat(timespec="seconds")
    for task, by_judge in results.scores.items():
        info = results.tasks[task]
        config = info["config"]
        for judge, summary in by_judge.items():
            if wanted is not None and judge not in wanted:
                continue
            version: str | None
            settings_hash: str | None
            if judge == LOGLIKELIHOOD:
                version, settings_hash = LOGLIKELIHOOD_VERSION, loglikelihood_settings_hash()
            else:
                described = judges[judge].describe() if judge in judges else results.judges.get(judge, {})
                version, settings_hash = described.get("version"), described.get("settings_hash")
            rows.append({
                "date": date, "run_name": results.run_name, "run_dir": str(run_dir.resolve()),
                "model": model["name"],
                "variant": variant_with_ablation(model.get("variant"), results.image_ablation),
                "image_ablation": results.image_ablation or "none",
                "sampler": model.get("sampler"),
                "model_fingerprint": model.get("fingerprint"),
                "model_identity": model.get("identity_digest"),
                "model_revisions": sorted(model["served_revisions"]) if model.get("served_revisions") else None,
                "task": task,
                "shots": shots(task, config), "split": config.get("test_split") or config.get("validation_split"),
                "judge": judge, "judge_version": version, "judge_settings_hash": settings_hash,
                **{k: summary.get(k) for k in ("accuracy", "ci_low", "ci_high", "n_clusters",
                                               "ci_method", "n", "n_scored", "refusal_rate",
                                               "unclear_rate", "error_rate")},
                **{f"{metric}{suffix}": summary.get(f"{metric}{suffix}")
                   for metric in METRICS
                   for suffix in ("", "_ci_low", "_ci_high", "_n_clusters")},
                "repeats": results.repeats or config.get("repeats", 1),
                **{k: (summary.get("repeat_stats") or {}).get(k)
                   for k in ("majority_accuracy", "consistency")},
                "seed": results.seed, "git_sha": results.git_sha,
                "task_hash": info["task_hash"], "prompt_hash": info["prompt_hash"],
            })
    return rows


def append_leaderboard(output_dir: Path, run_dir: Path, results: Results,
                       judges: Mapping[str, Judge], only_judges: Iterable[str] | None = None) -> None:
    append_rows(leaderboard_file(output_dir),
                leaderboard_rows(run_dir, results, judges, only_judges))


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _images(n_clusters: int | None) -> str:
    """How many images an interval rests on, flagged below the reliable floor."""
    if n_clusters is None:
        return "-"
    return f"{n_clusters}" + ("" if n_clusters >= RELIABLE_MIN_CLUSTERS else " unreliable")


def metric_cell(summary: Mapping[str, Any], metric: str, images: bool = True) -> str:
    """``"50.0 [40.0-60.0] img=9"`` (percent), or ``"+0.50 [+0.41,+0.60] img=9"`` for
    ``yes_bias``: the value, its 95% CI and (with ``images``) the images the CI rests on."""
    value = summary.get(metric)
    if value is None:
        return "-"
    low, high = summary.get(f"{metric}_ci_low"), summary.get(f"{metric}_ci_high")
    n_clusters = summary.get(f"{metric}_n_clusters")
    suffix = f" img={_images(n_clusters)}" if images and n_clusters is not None else ""
    if metric == "yes_bias":
        bounds = f" [{low:+.2f},{high:+.2f}]" if low is not None and high is not None else ""
        return f"{value:+.2f}{bounds}{suffix}"
    return f"{_pct(value)} [{_pct(low)}-{_pct(high)}]{suffix}"


def print_summary(results: Results, run_dir: Path, file: Any = None) -> None:
    """Rich tables, one row per (task, judge): strict accuracy (the headline) beside scored
    accuracy and the rates, then the instrument's other metrics where a task has them; then
    the tasks' lm-eval metrics and group rows, if any."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    ablation = results.image_ablation or "none"
    title = f"{results.model['name']} - {results.run_name}"
    if ablation != "none":
        title += f" (image ablation: {ablation})"
    # Names come from task files and run folders: no markup, no escape sequences.
    table = Table(title=Text(terminal_text(title)))
    for column in ("task", "judge", "strict accuracy % [95% CI]", "scored accuracy % [95% CI]",
                   "images", "n scored / n", "refusal %", "unclear %", "error %"):
        table.add_column(column, justify="left" if column in ("task", "judge") else "right")
    details = Table(title="pairs, bias, image, traps and echoes (95% CI clustered by image)")
    for column in ("task", "judge", "pair consistency %", "yes rate %", "yes bias",
                   "image reliance %", "trap accuracy %", "echo rate %"):
        # Metric cells may wrap before "img="; names never wrap.
        details.add_column(column, justify="left" if column in ("task", "judge") else "right",
                           no_wrap=column in ("task", "judge"))
    for task, by_judge in results.scores.items():
        for judge, s in by_judge.items():
            names = (Text(terminal_text(task)), Text(terminal_text(judge)))
            table.add_row(*names, metric_cell(s, "strict_accuracy", images=False),
                          f"{_pct(s['accuracy'])} [{_pct(s['ci_low'])}-{_pct(s['ci_high'])}]",
                          _images(s.get("strict_accuracy_n_clusters", s.get("n_clusters"))),
                          f"{s['n_scored']} / {s['n']}", _pct(s["refusal_rate"]),
                          _pct(s["unclear_rate"]), _pct(s["error_rate"]))
            cells = [metric_cell(s, m) for m in METRICS[1:]]
            if any(cell != "-" for cell in cells):  # text tasks have no pairs, images or traps
                details.add_row(*names, *cells)
    console = Console(file=file, width=160)
    console.print(table)
    console.print(f"95% CI: Wilson on the effective sample size, clustered by image; "
                  f"unreliable below {RELIABLE_MIN_CLUSTERS} images (docs/statistics.md)")
    if details.row_count:
        console.print(details)
    if results.metrics:
        console.print(metric_table(results.metrics))
    if results.groups:
        console.print(group_table(results.groups))
    console.print(Text(terminal_text(f"run folder: {run_dir}")))


def metric_table(metrics: Mapping[str, Mapping[str, Any]]) -> Any:
    """The tasks' lm-eval metrics as lm-eval prints them: one row per task, metric and filter,
    with lm-eval's standard error (N/A where lm-eval has none)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title="lm-eval metrics (metric_list; stderr as lm-eval computes it)")
    for column in ("task", "filter", "metric", "value", "stderr", "n"):
        table.add_column(column, justify="left" if column in ("task", "filter", "metric") else "right")
    for task, by_key in metrics.items():
        for key, row in by_key.items():
            metric, _, filter_key = key.partition(",")
            value, stderr = row.get("value"), row.get("stderr")
            table.add_row(Text(terminal_text(task)), Text(terminal_text(filter_key)),
                          Text(terminal_text(metric)), "-" if value is None else f"{value:.4f}",
                          "N/A" if stderr is None else f"{stderr:.4f}", str(row.get("n", "-")))
    return table


def group_table(groups: Mapping[str, Mapping[str, Any]]) -> Any:
    """lm-eval's group rows (``make_table(..., "groups")``): one per group, metric and filter."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title="groups (lm-eval aggregate_metric_list: weighted mean of the tasks)")
    for column in ("group", "filter", "metric", "value", "stderr", "n", "tasks"):
        table.add_column(column, justify="left" if column in ("group", "filter", "metric") else "right")
    for name, record in groups.items():
        for key, row in record["rows"].items():
            metric, _, filter_key = key.partition(",")
            stderr = row.get("stderr")
            table.add_row(Text(terminal_text(str(record.get("alias") or name))),
                          Text(terminal_text(filter_key)), Text(terminal_text(metric)),
                          f"{row['value']:.4f}", "N/A" if stderr is None else f"{stderr:.4f}",
                          str(row["n"]), str(row["tasks"]))
    return table
