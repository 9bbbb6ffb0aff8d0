"""``run_bench.py score RUN_DIR [--judges ...]``: re-score a saved run without generating.

Reads ``samples.jsonl`` and ``results.json``; with ``--judges``, recovers each sample's images
by reloading the run's tasks (the same configs, seed, repeats and limit) and runs the new
judges. Either way it recomputes every task's lm-eval metrics (and their standard errors)
from the stored samples, as the run computed them, and the group rows from those, then
rewrites ``samples.jsonl``, ``results.json`` and the lm-eval-format files, and appends
leaderboard rows for the new judges only. It never calls the run's model.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.arguments import parse_judge_args, split_names
from harness.errors import BenchError
from harness.judges.base import Judge
from harness.judges.metrics import MetricScorer
from harness.registry import add_card_dirs
from harness.run.folder import Results, RunFolder, cache_dir
from harness.run.report import append_leaderboard, print_summary, write_lm_eval
from harness.run.samples import LOGLIKELIHOOD, Sample, apply_judges
from harness.run.scores import scores_by_task
from harness.run.setup import bind_tasks, load_judges, metric_tally
from harness.run.verdicts import VerdictMemory
from harness.tasks.config import TaskConfig
from harness.tasks.groups import regroup
from harness.tasks.task import Task
from harness.types import ImagePart


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", help="a run folder (output/runs/NAME)")
    parser.add_argument("--judges", help="judge names, comma-separated (without: recompute "
                                          "the lm-eval metrics only)")
    parser.add_argument("--judge-args", "--judge_args", dest="judge_args",
                        help="judge.key=value,...")
    parser.add_argument("--output-dir", "--output_dir", dest="output_dir",
                        help="where leaderboard.jsonl is (default: two folders above RUN_DIR)")
    parser.add_argument("--no-leaderboard", dest="no_leaderboard", action="store_true")
    parser.add_argument("--no-cache", "--no_cache", dest="no_cache", action="store_true",
                        help="do not read or write the cross-run verdict cache "
                             "(the run's own verdicts.jsonl is still kept)")
    parser.add_argument("--trust-run", dest="trust_run", action="store_true",
                        help="run the '!function' code a task of this run folder names (only "
                             "for run folders you trust: a run folder is otherwise only data)")


#: What recomputing a task's lm-eval metrics runs of its config (``!function`` metrics,
#: aggregations, filters and ``process_results``); re-judging may run any of its code.
METRIC_KEYS = ("metric_list", "filter_list", "process_results")


def _stored_code(value: Any) -> str | None:
    """The first ``!function`` reference inside a stored config value, or None."""
    if isinstance(value, str):
        return value if value.startswith("!function ") else None
    items = value.values() if isinstance(value, Mapping) else value if isinstance(value, list) else ()
    return next((found for item in items if (found := _stored_code(item)) is not None), None)


def task_from_results(name: str, info: Mapping[str, Any], trust_run: bool = False,
                      where: str = "results.json", metrics_only: bool = False) -> Task:
    """Rebuild a task from the config a run recorded (``TaskConfig.from_dict``).

    A run folder is data: its templates render in the sandbox like any task's, and code it
    names (``!function``, a dataset's remote code) runs only with ``trust_run``. With
    ``metrics_only`` the task is rebuilt to recompute its metrics: only the code of
    ``METRIC_KEYS`` can run, and its data is not loaded.
    """
    config = info["config"]
    function_dirs = info.get("function_dirs") or {}
    if not trust_run:
        purpose = "recomputing its metrics" if metrics_only else "re-judging"
        for key in (METRIC_KEYS if metrics_only else config):
            code = _stored_code(config.get(key))
            if code is not None:
                base_dir = function_dirs.get(key, str(Path(str(config["source"])).parent))
                verb = "is" if code == config.get(key) else "names"
                raise BenchError(f"{where}: task '{name}' {key} {verb} '{code}', code in "
                                 f"{base_dir} that {purpose} would run; pass --trust-run if you "
                                 "trust this run folder")
        kwargs = config.get("dataset_kwargs")
        if not metrics_only and isinstance(kwargs, Mapping) and kwargs.get("trust_remote_code"):
            raise BenchError(f"{where}: task '{name}' sets dataset_kwargs.trust_remote_code, "
                             "code that loading its dataset would run; pass --trust-run if you "
                             "trust this run folder")
    return Task(TaskConfig.from_dict(config, function_dirs))


def rescore_metrics(results: Results, samples: Sequence[Sample], trust_run: bool = False,
                    where: str = "results.json"
                    ) -> tuple[dict[str, Any], dict[str, MetricScorer]]:
    """The lm-eval metrics of every task the run computed them for, recomputed from its stored
    samples (in file order, the run's document order), with the scorers that computed them."""
    metrics: dict[str, Any] = dict(results.metrics)
    scorers: dict[str, MetricScorer] = {}
    for name in results.metrics:
        tally = metric_tally(task_from_results(name, results.tasks[name], trust_run, where,
                                               metrics_only=True))
        if tally is None:
            continue
        for sample in samples:
            if sample.task == name:
                tally.add(sample)
        metrics[name] = tally.results()
        scorers[name] = tally.scorer
    return metrics, scorers


def recover_images(results: Results, samples: Sequence[Sample], tasks: Sequence[str],
                   trust_run: bool = False,
                   where: str = "results.json") -> dict[str, tuple[ImagePart, ...]]:
    """Each sample's prompt images, by request id, from the run's own task configs."""
    images: dict[str, tuple[ImagePart, ...]] = {}
    prompt_hashes: dict[str, str] = {}
    for name in tasks:
        task = task_from_results(name, results.tasks[name], trust_run, where)
        for instance in task.iter_instances(run_seed=results.seed, repeats=results.repeats,
                                            limit=results.limit,
                                            image_ablation=results.image_ablation or "none"):
            images[instance.key] = tuple(p for p in instance.request.parts if isinstance(p, ImagePart))
            prompt_hashes[instance.key] = instance.prompt_hash
    wanted = {s.request_id: s for s in samples if s.task in tasks}
    for key, sample in wanted.items():
        found = images.get(key)
        if found is None:
            raise BenchError(f"sample {key}: its task no longer produces it; the dataset changed")
        own = tuple(p.image_id for p in found)
        if not set(sample.image_ids) <= set(own):
            raise BenchError(f"sample {key}: its images changed since the run (ids differ); "
                             "re-run the benchmark instead")
        if prompt_hashes[key] != sample.prompt_hash:
            raise BenchError(f"sample {key}: its prompt renders differently from the one stored "
                             "(prompt_hash differs); the task, its data or the run folder "
                             "changed since the run: re-run the benchmark instead")
    return images


def rescore(run_dir: Path, judge_names: Sequence[str], judge_args: Mapping[str, Mapping[str, Any]],
            output_dir: Path | None = None, leaderboard: bool = True,
            use_cache: bool = True, trust_run: bool = False) -> Results:
    """Add ``judge_names``' verdicts (none: only recompute the lm-eval metrics) to a saved run;
    returns the new results."""
    folder = RunFolder(Path(run_dir))
    if not folder.results_file.is_file():
        raise BenchError(f"{run_dir}: no results.json; pass a run folder (output/runs/NAME)")
    with folder.locked():
        return _rescore(folder, judge_names, judge_args, output_dir, leaderboard, trust_run,
                        use_cache)


def _judge(folder: RunFolder, results: Results, samples: list[Sample], judge_names: Sequence[str],
           judge_args: Mapping[str, Mapping[str, Any]], target: Path, trust_run: bool,
           use_cache: bool) -> tuple[Results, list[Sample], dict[str, Judge]]:
    """The new judges' verdicts on every sample, and the results that say so."""
    if LOGLIKELIHOOD in judge_names:
        raise BenchError(f"'{LOGLIKELIHOOD}' is computed during the run; choose other judges")
    add_card_dirs(results.include_paths)
    judges = load_judges(judge_names, judge_args)
    for judge in judges.values():
        # Judges that read files kept in the run folder (hand labels) are told where it is.
        if hasattr(judge, "use_run_dir"):
            judge.use_run_dir(folder.path)
    bind_tasks(judges.values(), {name: info["config"].get("metadata") or {}
                                 for name, info in results.tasks.items()})
    needs_images = [t for t in results.tasks
                    if results.tasks[t]["config"].get("doc_to_image") is not None]
    images = recover_images(results, samples, needs_images, trust_run,
                            str(folder.results_file)) if needs_images else {}
    memory = VerdictMemory(folder.path, cache_dir(target) if use_cache else None)
    started = time.monotonic()
    try:
        samples = apply_judges(samples, judges.values(), images, memory)
    finally:
        memory.close()
    timing = {**(results.timing or {}), "score_judge_s": round(time.monotonic() - started, 3)}
    tasks = {}
    for name, info in results.tasks.items():
        listed = list(info.get("judges", []))
        tasks[name] = {**info, "judges": listed + [j for j in judge_names if j not in listed]}
    results = results.with_changes(
        tasks=tasks, judges={**results.judges, **{n: j.describe() for n, j in judges.items()}},
        scores=scores_by_task(samples, results.seed), timing=timing,
        samples_schema=samples[0].schema if samples else None)
    return results, samples, judges


def _rescore(folder: RunFolder, judge_names: Sequence[str],
             judge_args: Mapping[str, Mapping[str, Any]], output_dir: Path | None,
             leaderboard: bool, trust_run: bool, use_cache: bool = True) -> Results:
    results = folder.read_results()
    samples = folder.read_samples()
    target = Path(output_dir) if output_dir is not None else folder.path.parent.parent
    judges: dict[str, Judge] = {}
    if judge_names:
        results, samples, judges = _judge(folder, results, samples, judge_names, judge_args,
                                          target, trust_run, use_cache)
    metrics, scorers = rescore_metrics(results, samples, trust_run, str(folder.results_file))
    results = results.with_changes(metrics=metrics, groups=regroup(results.groups, metrics,
                                                                   str(folder.results_file)))
    if judge_names:
        folder.write(results, samples)
    else:
        folder.write_results(results)
    write_lm_eval(target, results, samples, scorers)
    if leaderboard and judge_names:
        append_leaderboard(target, folder.path, results, judges, only_judges=judge_names)
    return results


def run(args: argparse.Namespace) -> int:
    names = split_names(args.judges or "")
    if args.judges is not None and not names:
        raise BenchError("--judges: name at least one judge (see --list-judges), or leave it "
                         "out to recompute the lm-eval metrics only")
    results = rescore(Path(args.run_dir), names,
                      parse_judge_args(args.judge_args),
                      Path(args.output_dir) if args.output_dir else None,
                      leaderboard=not args.no_leaderboard, use_cache=not args.no_cache,
                      trust_run=args.trust_run)
    print_summary(results, Path(args.run_dir))
    return 0
