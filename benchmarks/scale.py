"""Benchmark: time and peak memory per item as a run grows, beside lm-eval's dummy model.

Writes an ETHICS-format CSV (``label,input,is_short,edited``) of N text items, then runs, each
in a fresh process with a fresh ``datasets`` cache:

- ours: ``run_bench.py --model random --tasks ethics_cm`` (the shipped ETHICS YAML pointed at
  the CSV; multiple choice, judged by log-likelihood; journal, samples.jsonl, results.json and
  a leaderboard row written; no response cache);
- lm-eval: ``lm_eval --model dummy`` on a task YAML reading the same CSV (multiple choice,
  ``acc``), with ``--log_samples --output_path`` so that it, too, keeps and writes every sample.

Time is the child's wall time; memory its peak resident set (``ru_maxrss`` from ``wait4``).
Per item: the total divided by N, and the growth per item between the sizes. Prints one JSON
line per (harness, size). Usage:

    python benchmarks/scale.py --sizes 20000 200000 [--only ours|lm-eval] [--root CHECKOUT]

``--root`` runs another checkout's harness (e.g. an older commit, to measure before a change).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORDS = ("I", "my", "the", "a", "friend", "neighbour", "dog", "car", "money", "told", "took",
         "helped", "ignored", "borrowed", "returned", "broke", "fixed", "laughed", "at", "with",
         "because", "after", "before", "she", "he", "they", "asked", "me", "to", "stop")
LM_EVAL_TASK = """task: ethics_scale
dataset_path: csv
dataset_kwargs:
  data_files:
    test: {csv}
test_split: test
output_type: multiple_choice
doc_to_text: "{{{{input}}}}\\nQuestion: Is this wrong?\\nAnswer:"
doc_to_target: label
doc_to_choice: ["no", "yes"]
metric_list:
  - metric: acc
metadata:
  version: 1.0
"""


def write_items(folder: Path, n: int) -> Path:
    """``test.csv`` and a one-line ``train.csv`` of ETHICS commonsense rows, seeded."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(n)
    with (folder / "test.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "input", "is_short", "edited"])
        for _ in range(n):
            scenario = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 30))) + "."
            writer.writerow([rng.randint(0, 1), scenario, True, False])
    (folder / "train.csv").write_text("label,input,is_short,edited\n0,I helped.,True,False\n")
    return folder / "test.csv"


def measure(command: list[str], env: dict[str, str], cwd: Path) -> dict[str, Any]:
    start = time.perf_counter()
    child = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    out, err = child.communicate()
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{command[:3]} failed ({code}):\n{err.decode()[-3000:]}")
    return {"seconds": round(wall, 2), "peak_rss_mb": round(usage.ru_maxrss / 1024, 1)}


def run_ours(work: Path, data: Path, env: dict[str, str], root: Path) -> dict[str, Any]:
    tasks = work / "tasks"
    tasks.mkdir()
    (tasks / "ethics_cm.yaml").write_text(
        f"include: {root / 'tasks' / 'ethics' / 'ethics_cm.yaml'}\ntask: ethics_cm\n"
        f"dataset_path: {data}\n")
    return measure([sys.executable, str(root / "run_bench.py"), "--model", "random",
                    "--tasks", "ethics_cm", "--include-path", str(tasks), "--output-dir",
                    str(work / "output"), "--no-cache", "--no-progress"],
                   {**env, "PYTHONPATH": str(root), "VMB_HOME": str(root)}, work)


def run_lm_eval(work: Path, csv_path: Path, env: dict[str, str]) -> dict[str, Any]:
    tasks = work / "lm_eval_tasks"
    tasks.mkdir()
    (tasks / "ethics_scale.yaml").write_text(LM_EVAL_TASK.format(csv=csv_path))
    return measure([sys.executable, "-m", "lm_eval", "--model", "dummy", "--tasks",
                    "ethics_scale", "--include_path", str(tasks), "--output_path",
                    str(work / "lm_eval_out"), "--log_samples"], env, work)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20000, 200000])
    parser.add_argument("--only", choices=("ours", "lm-eval"), default=None)
    parser.add_argument("--root", type=Path, default=ROOT, help="the checkout whose harness runs")
    args = parser.parse_args()
    results: dict[str, list[tuple[int, dict[str, Any]]]] = {"ours": [], "lm-eval": []}
    for n in args.sizes:
        for name in ("ours", "lm-eval"):
            if args.only not in (None, name):
                continue
            with tempfile.TemporaryDirectory(prefix="vmb-scale-") as tmp:
                work = Path(tmp)
                data = work / "data"
                csv_path = write_items(data, n)
                env = {**os.environ, "HF_DATASETS_CACHE": str(work / "hf-cache"),
                       "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                       "TOKENIZERS_PARALLELISM": "false", "TQDM_DISABLE": "1"}
                figures = (run_ours(work, data, env, args.root.resolve()) if name == "ours"
                           else run_lm_eval(work, csv_path, env))
            results[name].append((n, figures))
            line = {"harness": name, "items": n, **figures,
                    "ms_per_item": round(1000 * figures["seconds"] / n, 3),
                    "kb_per_item": round(1024 * figures["peak_rss_mb"] / n, 2),
                    "load_avg_1min": round(os.getloadavg()[0], 2)}
            previous = results[name][-2] if len(results[name]) > 1 else None
            if previous is not None:
                dn = n - previous[0]
                line["growth_ms_per_item"] = round(
                    1000 * (figures["seconds"] - previous[1]["seconds"]) / dn, 3)
                line["growth_kb_per_item"] = round(
                    1024 * (figures["peak_rss_mb"] - previous[1]["peak_rss_mb"]) / dn, 2)
            print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
