"""How many of lm-eval's own task YAMLs this harness loads at config level, and why not the rest.

Every ``*.yaml`` file in the installed lm-eval wheel's ``tasks/`` folder (or a folder given
with ``--tasks-dir``, e.g. lmms-eval's) is read as this harness reads a task file: includes
resolved, keys validated, ``!function`` references imported. No data is loaded and no
template rendered. A file without a task name is a template for others (parsed only); a group
file is checked as a group. Prints the count that load and the most common reasons for the
rest, each reason with one example ``file:key`` error.

Run:  python benchmarks/lm_eval_census.py [--tasks-dir DIR] [--top 15]
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.errors import BenchError  # noqa: E402
from harness.judges.metrics import parse_metric_list  # noqa: E402
from harness.registry import judge_names  # noqa: E402
from harness.tasks.config import build_task_config  # noqa: E402
from harness.tasks.filters import check_filters  # noqa: E402
from harness.tasks.generation import generation_settings  # noqa: E402
from harness.tasks.groups import GROUP_KEYS, parse_group  # noqa: E402
from harness.tasks.yaml_io import resolve_includes  # noqa: E402

#: As harness.run.evaluate (not imported: it pulls in the model stages).
METRIC_ALIASES = {"acc": "loglikelihood"}


def check_file(path: Path) -> None:
    """Load one YAML file at config level; raise on anything this harness does not accept."""
    sources: dict[str, str] = {}
    raw = resolve_includes(path, sources=sources)
    name = raw.get("task")
    if isinstance(name, list) and isinstance(raw.get("group"), str):
        parse_group(raw, path)
        return
    if isinstance(name, list) or ("group" in raw and name is None):
        for key in raw:
            if key not in GROUP_KEYS:
                raise BenchError(f"{path}:{key}: unknown group key")
        return
    if name is None:
        return  # a template that other files include
    config = build_task_config(raw, path, sources)
    # What a run checks before it loads data: metrics, filters, generation settings.
    parse_metric_list(config.metric_list, config.output_type, config.source, judge_names(),
                      METRIC_ALIASES, config.process_results is not None)
    check_filters(config)
    generation_settings(config.generation_kwargs, config.source, config.fewshot_delimiter)


def reason_of(message: str, folder: Path) -> str:
    """The error without its file and item-specific values, so alike errors group (an error
    in an included template counts once per file that includes it)."""
    text = re.sub(r"^[^\s:]+:", "FILE:", message.replace(str(folder) + "/", ""))
    text = re.sub(r"/\S+\.(yaml|py)", "FILE", text)
    text = re.sub(r"'[^']*'", "'…'", text)
    return re.sub(r"\d+", "N", text)[:160]


def census(folder: Path) -> tuple[int, int, Counter[str], dict[str, str]]:
    files = sorted(folder.rglob("*.yaml"))
    reasons: Counter[str] = Counter()
    examples: dict[str, str] = {}
    loaded = 0
    for path in files:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                check_file(path)
            loaded += 1
        except BenchError as exc:
            key = reason_of(str(exc), folder)
            reasons[key] += 1
            examples.setdefault(key, str(exc).replace(str(folder) + "/", ""))
        except Exception as exc:  # noqa: BLE001 - a crash is a finding too, counted apart
            key = f"crash: {type(exc).__name__}: {reason_of(str(exc), folder)}"
            reasons[key] += 1
            examples.setdefault(key, f"{path.relative_to(folder)}: {type(exc).__name__}: {exc}"[:300])
    return loaded, len(files), reasons, examples


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks-dir", type=Path, default=None,
                        help="folder of task YAMLs (default: the installed lm-eval's tasks/)")
    parser.add_argument("--top", type=int, default=15, help="how many reasons to show")
    args = parser.parse_args(argv)
    folder = args.tasks_dir
    if folder is None:
        import lm_eval

        folder = Path(lm_eval.__file__).parent / "tasks"
    loaded, total, reasons, examples = census(folder)
    print(f"{loaded} of {total} task YAMLs load ({100 * loaded / max(total, 1):.1f}%) from {folder}")
    for reason, count in reasons.most_common(args.top):
        print(f"{count:6d}  {reason}\n        e.g. {examples[reason]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
