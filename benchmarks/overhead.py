"""Benchmark: the share of a run's wall time spent outside the model.

Runs ``harness.run.evaluate.evaluate`` (tasks, few-shot rendering, batching, journal, judges,
reports) on magma-tiny, timing every call into the model's ``generate`` / ``loglikelihood``.
The share outside the model is ``1 - model_time / run_time``; loading the model is reported
apart. Use magma-tiny on the CPU: its model calls are cheap, so the harness's own cost shows.
Prints one JSON line. Usage:

    python benchmarks/overhead.py [--tasks morality_1shot] [--repeats 3] [--limit 14]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def timed(call: Callable[..., Any], totals: dict[str, float], key: str) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return call(*args, **kwargs)
        finally:
            totals[key] += time.perf_counter() - start

    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="magma-tiny")
    parser.add_argument("--tasks", default="morality_1shot")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=None, help="samples per document")
    # 14 documents: the size of dataset v1's test split, so that figures stay comparable
    # with those recorded in docs/benchmarks.md (v2's test split is about 17 times larger).
    parser.add_argument("--limit", type=int, default=14, help="documents per task (0: all)")
    args = parser.parse_args()
    try:
        from harness.run.evaluate import evaluate
    except ImportError:
        sys.exit("harness.run.evaluate is not available in this checkout; merge main first")
    from harness.registry import load_model

    start = time.perf_counter()
    model = load_model(args.model)
    load_s = time.perf_counter() - start
    totals = {"generate": 0.0, "loglikelihood": 0.0}
    model.generate = timed(model.generate, totals, "generate")
    model.loglikelihood = timed(model.loglikelihood, totals, "loglikelihood")
    with tempfile.TemporaryDirectory() as output_dir:
        start = time.perf_counter()
        result = evaluate(model, args.tasks, batch_size=args.batch_size, repeats=args.repeats,
                          limit=args.limit or None,
                          output_dir=output_dir, use_cache=False, write_leaderboard=True)
        run_s = time.perf_counter() - start
    model_s = totals["generate"] + totals["loglikelihood"]
    print(json.dumps({
        "benchmark": "overhead", "model": args.model, "tasks": args.tasks,
        "samples": len(result.samples), "batch_size": args.batch_size,
        "model_load_s": round(load_s, 2), "run_s": round(run_s, 2), "model_s": round(model_s, 2),
        "share_outside_model": round(1 - model_s / run_s, 3),
        "image_prefixes_computed": getattr(model, "image_prefix_computations", None),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }))


if __name__ == "__main__":
    main()
