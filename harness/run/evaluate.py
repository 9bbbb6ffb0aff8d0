"""The evaluate loop: tasks -> requests -> model (batched, journaled, cached) -> judges -> scores.

``evaluate`` accepts names or objects for the model, tasks and judges, and returns a
``RunResult``. A run's folder name depends only on what determines its outputs (never on
batch size), so re-running a command resumes it. This module writes through
``harness.run.journal`` and ``harness.run.report``; it renders no prompt and parses no answer itself.
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.errors import BenchError, unknown
from harness.hashing import stable_hash
from harness.judges.metrics import Metric, parse_metric_list, score_metrics
from harness.registry import add_card_dirs, judge_names, load_judge, load_model, model_factory
from harness.run import distributed
from harness.run.journal import Journal, ResponseCache, request_key
from harness.run.overrides import chat_model_args, override_tasks, parse_samples, select_samples
from harness.run.samples import (
    LOGLIKELIHOOD,
    Sample,
    apply_judges,
    loglikelihood_verdict,
    scores_by_task,
)
from harness.run.verdicts import VerdictMemory
from harness.tasks.ablation import NO_ABLATION, check_ablation
from harness.tasks.config import TaskConfig, TaskIndex, split_names
from harness.tasks.task import Instance, Task, apply_filters, filter_pipelines, task_hashes
from harness.types import ImagePart, Request, Response

log = logging.getLogger(__name__)

#: lm-eval metric names that also give our judge-free multiple-choice score (a judge row).
METRIC_ALIASES = {"acc": LOGLIKELIHOOD}
#: The judge of a generate_until task whose YAML names none.
DEFAULT_JUDGE = "reference"


@dataclass(frozen=True)
class RunResult:
    """What a run produced: its folder, its ``results.json`` content and its samples."""

    run_dir: Path
    results: Mapping[str, Any]
    samples: tuple[Sample, ...]

    @property
    def scores(self) -> Mapping[str, Mapping[str, Any]]:
        return self.results["scores"]


def resolve_tasks(tasks: str | Iterable[str | Task | TaskConfig], include_paths: Sequence[str],
                  num_fewshot: int | None = None) -> list[Task]:
    """Task objects for names (tasks, groups, tags), configs or tasks."""
    items = split_names(tasks) if isinstance(tasks, str) else list(tasks)
    names = [i for i in items if isinstance(i, str)]
    index = TaskIndex(include_paths) if names else None
    for error in (index.broken.values() if index is not None else ()):
        log.warning("warning: %s; skipped", " ".join(error.split()))
    resolved: list[Task] = []
    for item in items:
        if isinstance(item, Task):
            resolved.append(Task(item.config, num_fewshot=num_fewshot) if num_fewshot is not None else item)
        elif isinstance(item, TaskConfig):
            resolved.append(Task(item, num_fewshot=num_fewshot))
        else:
            assert index is not None
            for name in index.expand([item]):
                resolved.append(Task(index.load(name), num_fewshot=num_fewshot))
    if not resolved:
        raise BenchError("no tasks given; pass --tasks (see --list-tasks)")
    seen: set[str] = set()
    unique = []
    for task in resolved:
        if task.name not in seen:
            seen.add(task.name)
            unique.append(task)
    return unique


def task_metrics(task: Task) -> tuple[list[str], list[Metric]]:
    """The judges and the lm-eval metrics that a task's ``metric_list`` names."""
    return parse_metric_list(task.config.metric_list, task.config.output_type, task.config.source,
                             judge_names(), METRIC_ALIASES, task.config.process_results is not None)


def task_judge_names(task: Task, judges: Sequence[str] | None) -> list[str]:
    """The judges a task is scored by: the given ones, else its ``metric_list``'s judges."""
    output_type = task.config.output_type
    if output_type in ("loglikelihood", "loglikelihood_rolling"):
        return []  # scored by metrics only: there is no answer to judge
    yaml_judges, metrics = task_metrics(task)
    names = list(judges) if judges is not None else yaml_judges
    if judges is None and not names and not metrics and output_type == "generate_until":
        names = [DEFAULT_JUDGE]
    if output_type == "multiple_choice" and LOGLIKELIHOOD not in names:
        names.append(LOGLIKELIHOOD)
    if output_type != "multiple_choice" and LOGLIKELIHOOD in names:
        if judges is None:
            raise BenchError(f"{task.config.source}:metric_list: '{LOGLIKELIHOOD}' needs "
                             "output_type: multiple_choice")
        names.remove(LOGLIKELIHOOD)
    return names


#: The model call each output type needs.
CALL_KINDS = {"multiple_choice": "loglikelihood", "loglikelihood": "loglikelihood",
              "loglikelihood_rolling": "loglikelihood_rolling", "generate_until": "generate"}


def load_judges(names: Iterable[str], judge_args: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Judges by name, built with their ``--judge-args`` (``loglikelihood`` needs none)."""
    unused = set(judge_args) - set(names)
    if unused:
        name = sorted(unused)[0]
        raise unknown("judge in --judge-args", name, list(names), "Pass it in --judges too.")
    judges: dict[str, Any] = {}
    for name in names:
        if name == LOGLIKELIHOOD or name in judges:
            continue
        if name not in judge_names():
            raise unknown("judge", name, [*judge_names(), LOGLIKELIHOOD], "See --list-judges.")
        judges[name] = load_judge(name, judge_args.get(name))
    return judges


def bind_tasks(judges: Iterable[Any], metadata_by_task: Mapping[str, Mapping[str, Any]]) -> None:
    """Hand each judge that takes per-task settings the tasks' YAML metadata."""
    for judge in judges:
        hook = getattr(judge, "bind_tasks", None)
        if hook is not None:
            hook(metadata_by_task)


def _run_name(model: Any, hashes: Mapping[str, tuple[str, str]], seed: int, repeats: int | None,
              limit: int | float | None, image_ablation: str = NO_ABLATION) -> str:
    identity: dict[str, Any] = {"model": model.fingerprint(), "tasks": sorted(hashes.items()),
                                "seed": seed, "repeats": repeats, "limit": limit}
    label = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(model.registry_name)).strip("-") or "model"
    if image_ablation != NO_ABLATION:  # absent otherwise, so earlier runs keep their folders
        identity["image_ablation"] = image_ablation
        label += f"-{image_ablation}"
    return f"{label}-{stable_hash(identity, 12)}"


def _progress(enabled: bool) -> Any:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeRemainingColumn(), console=Console(file=sys.stderr), disable=not enabled,
                    transient=False)


#: Where ``--batch-size auto`` starts; it halves on out-of-memory until a batch fits.
AUTO_BATCH_START = 64


def is_out_of_memory(exc: BaseException) -> bool:
    """An accelerator or host out-of-memory error, without importing torch."""
    return (isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError"
            or "out of memory" in str(exc).lower())


def _generate(model: Any, instances: Sequence[Instance], journal: Journal,
              cache: ResponseCache | None, batch_size: int | str, progress: bool,
              kinds: Mapping[str, str], image_ablation: str = NO_ABLATION) -> int | None:
    """Fill the journal with a response for every instance (resumed, cached, then generated).

    With ``batch_size == "auto"`` the first batches start at ``AUTO_BATCH_START`` and halve
    on out-of-memory until one fits; returns the batch size used last (None: nothing asked).
    """
    missing = [i for i in instances if not journal.done(i.key)]
    todo: list[tuple[Instance, str, str]] = []
    for instance in missing:
        kind = kinds[instance.task]
        key = request_key(instance.request, kind, image_ablation)
        hit = cache.get(key, instance.key) if cache is not None else None
        if hit is not None:
            journal.add(hit, cached=True)
        else:
            todo.append((instance, kind, key))
    auto = batch_size == "auto"
    size = AUTO_BATCH_START if auto else int(batch_size)
    used: int | None = None
    with _progress(progress) as bar:
        for kind in ("generate", "loglikelihood", "loglikelihood_rolling"):
            batch_items = [t for t in todo if t[1] == kind]
            if not batch_items:
                continue
            job = bar.add_task(f"{model.registry_name}: {kind}", total=len(batch_items))
            start = 0
            while start < len(batch_items):
                chunk = batch_items[start:start + size]
                requests: list[Request] = [item.request for item, _, _ in chunk]
                call = {"generate": model.generate, "loglikelihood": model.loglikelihood,
                        "loglikelihood_rolling": model.loglikelihood_rolling}[kind]
                try:
                    responses: list[Response] = call(requests)
                except Exception as exc:
                    if auto and len(chunk) > 1 and is_out_of_memory(exc):
                        size = len(chunk) // 2  # answers never depend on the batch: retry smaller
                        continue
                    raise
                if len(responses) != len(requests):
                    raise RuntimeError(f"model {model.registry_name} returned {len(responses)} "
                                       f"responses for {len(requests)} requests")
                for (item, _, key), response in zip(chunk, responses):
                    if response.request_id != item.key:
                        response = replace(response, request_id=item.key)
                    journal.add(response)
                    if cache is not None:
                        cache.put(key, response)
                bar.advance(job, len(chunk))
                start += len(chunk)
                used = len(chunk) if used is None else max(used, len(chunk))
    return used


def token_usage(responses: Sequence[Response]) -> dict[str, int | None]:
    """Prompt and completion tokens summed over the responses whose server reported them."""
    reported = [r for r in responses if r.prompt_tokens is not None or r.completion_tokens is not None]
    return {"prompt_tokens": sum(r.prompt_tokens or 0 for r in reported) if reported else None,
            "completion_tokens": sum(r.completion_tokens or 0 for r in reported) if reported else None,
            "n_reported": len(reported)}


def _sample(instance: Instance, response: Response, filter_list: Sequence[Mapping[str, Any]]) -> Sample:
    text = response.text
    if response.loglikelihoods is not None and instance.choices:
        scores = response.loglikelihoods
        text = instance.choices[max(range(len(scores)), key=lambda i: scores[i])]
    return Sample(
        task=instance.task, doc_id=instance.doc_id, repeat=instance.repeat,
        request_id=instance.key, seed=instance.request.seed, prompt=instance.request.text,
        image_ids=instance.image_ids, fewshot_ids=instance.fewshot_ids, target=instance.target,
        expected=instance.expected, choices=instance.choices, gold=instance.gold, response=text,
        loglikelihoods=response.loglikelihoods, error=response.error, doc=instance.doc,
        doc_hash=instance.doc_hash, prompt_hash=instance.prompt_hash,
        target_hash=instance.target_hash,
        filtered_response=apply_filters(filter_list, text) if filter_list else None,
        model_revision=response.model_revision,
        cluster_id=instance.cluster_id,
    )


def evaluate(
    model: str | Any,
    tasks: str | Iterable[str | Task | TaskConfig],
    judges: str | Sequence[str | Any] | None = None,
    *,
    model_args: Mapping[str, Any] | None = None,
    judge_args: Mapping[str, Mapping[str, Any]] | None = None,
    batch_size: int | str | None = None,
    limit: int | float | None = None,
    repeats: int | None = None,
    seed: int = 0,
    num_fewshot: int | None = None,
    output_dir: str | Path = "output",
    include_paths: Sequence[str] = (),
    use_cache: bool = True,
    progress: bool = False,
    write_leaderboard: bool = True,
    gen_kwargs: Mapping[str, Any] | None = None,
    sample_ids: str | Mapping[str, Sequence[Any]] | None = None,
    fewshot_seed: int | None = None,
    predict_only: bool = False,
    apply_chat_template: bool = False,
    system_instruction: str | None = None,
    image_ablation: str = NO_ABLATION,
) -> RunResult:
    """Run ``tasks`` on ``model``, judge the answers, write the run folder and leaderboard rows.

    Args:
        model: a registered model or model card name, or a ``Model`` instance.
        tasks: task, group or tag names (a list or ``"a,b"``), or ``Task`` / ``TaskConfig`` objects.
        judges: judge names or ``Judge`` instances; None uses each task's ``metric_list``.
        batch_size: requests per model call (None: the model's ``preferred_batch_size``;
            ``"auto"``: the largest that fits, halving from 64 on out-of-memory); never
            changes the results.
        limit: the first N documents of each task (or a fraction below 1.0).
        repeats: samples per document (overrides the tasks' ``repeats``).
        seed: the run seed every request's seed derives from.
        gen_kwargs: generation settings over each generate_until task's own.
        sample_ids: ``{task: [item ids or positions]}``: only those items (not with ``limit``).
        fewshot_seed: the few-shot draw seed of every task (lm-eval's fourth ``--seed``).
        predict_only: generate and save the responses; no judge runs.
        apply_chat_template, system_instruction: for adapters with a chat template.
        image_ablation: what prompts show in place of images: ``none``, ``blank``,
            ``shuffle`` or ``describe`` (``harness.tasks.ablation``); part of the run's identity.
    """

    if batch_size is not None and batch_size != "auto" and (
            not isinstance(batch_size, int) or batch_size < 1):
        raise BenchError(f"--batch-size must be at least 1 or 'auto', got {batch_size}")
    if num_fewshot is not None and num_fewshot < 0:
        raise BenchError(f"--num-fewshot must be 0 or more, got {num_fewshot}")
    if repeats is not None and repeats < 1:
        raise BenchError(f"--repeats must be at least 1, got {repeats}")
    if limit is not None and limit <= 0:
        raise BenchError(f"--limit must be positive, got {limit}")
    add_card_dirs(include_paths)  # model cards kept beside the user's task YAMLs
    image_ablation = check_ablation(image_ablation)
    # Tasks and judges first: a misspelt name should not wait for a 13 GB model to load.
    task_objs = override_tasks(resolve_tasks(tasks, include_paths, num_fewshot), gen_kwargs,
                               fewshot_seed)
    chosen = parse_samples(sample_ids)
    if chosen is not None:
        if limit is not None:
            raise BenchError("--samples and --limit choose items two ways; pass one of them")
        unknown_tasks = sorted(set(chosen) - {t.name for t in task_objs})
        if unknown_tasks:
            raise BenchError(f"--samples names task(s) not in the run: {', '.join(unknown_tasks)}")
    judge_list = split_names(judges) if isinstance(judges, str) else judges
    judge_args = dict(judge_args or {})
    given_names = None if judge_list is None else [
        j if isinstance(j, str) else j.registry_name for j in judge_list]
    given_objs = {j.registry_name: j for j in judge_list or () if not isinstance(j, str)}
    wanted = [n for t in task_objs for n in task_judge_names(t, given_names)]
    if predict_only:
        given_names, given_objs, wanted = [], {}, []
    judge_objs = {**load_judges([n for n in wanted if n not in given_objs], judge_args), **given_objs}
    bind_tasks(judge_objs.values(), {t.name: t.config.metadata for t in task_objs})
    started = time.monotonic()
    if isinstance(model, str):
        model_args = chat_model_args(model_factory(model), model_args or {}, apply_chat_template,
                                     system_instruction, model)
        model_obj = load_model(model, model_args)
    elif apply_chat_template or system_instruction is not None:
        raise BenchError("--apply-chat-template / --system-instruction: pass the model by name")
    else:
        model_obj = model
    load_s = time.monotonic() - started
    if batch_size is None:
        batch_size = max(1, int(getattr(model_obj, "preferred_batch_size", 1)))

    instances: dict[str, list[Instance]] = {}
    hashes: dict[str, tuple[str, str]] = {}
    for task in task_objs:
        instances[task.name] = task.instances(run_seed=seed, repeats=repeats, limit=limit,
                                              image_ablation=image_ablation)
        if not instances[task.name]:
            raise BenchError(f"--limit {limit} selects none of the {len(task.eval_docs)} items "
                             f"of task '{task.name}'; raise it")
        if chosen is not None:
            instances[task.name] = select_samples(task, instances[task.name],
                                                  chosen.get(task.name, []))
        hashes[task.name] = task_hashes(task, instances[task.name])
    refusal = getattr(model_obj, "refusal", None) or (lambda request: None)
    for task in task_objs:
        reasons = [refusal(i.request) for i in instances[task.name]]
        if reasons and all(reasons):  # every item would fail alike: say so before the run
            raise BenchError(f"model {model_obj.registry_name} cannot run task {task.name}: "
                             f"{reasons[0]}; choose a task whose items it can take")
    run_name = _run_name(model_obj, hashes, seed, repeats, limit, image_ablation)
    output_dir = Path(output_dir)
    run_dir = output_dir / "runs" / run_name
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BenchError(f"cannot create the run folder {run_dir}: {exc.strerror}; "
                         "choose a writable --output-dir") from None
    shard = distributed.current_shard()
    with run_folder_lock(run_dir, shard.is_main):
        return _run_locked(model_obj, task_objs, instances, hashes, judge_objs, given_names,
                           run_name, run_dir, output_dir, shard, use_cache=use_cache,
                           batch_size=batch_size, progress=progress, seed=seed, repeats=repeats,
                           limit=limit, num_fewshot=num_fewshot, include_paths=include_paths,
                           write_leaderboard=write_leaderboard, image_ablation=image_ablation,
                           predict_only=predict_only, gen_kwargs=gen_kwargs, chosen=chosen,
                           fewshot_seed=fewshot_seed, load_s=load_s)


@contextmanager
def run_folder_lock(run_dir: Path, take: bool = True) -> Iterator[None]:
    """Hold ``run_dir``'s lock while it is written; a second writer is told, not let in.

    Two copies of one command would otherwise both generate every item and both append
    leaderboard rows for the same run. The helper ranks of a data-parallel run share the
    folder with their rank 0, which alone takes the lock (``take``).
    """
    if not take:
        yield
        return
    from filelock import FileLock, Timeout

    lock = FileLock(str(run_dir / ".lock"), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise BenchError(f"{run_dir} is being written by another process (the same command "
                         "is running); wait for it to finish, then run again to reuse its "
                         "results") from None
    except OSError as exc:
        raise BenchError(f"cannot lock the run folder {run_dir}: {exc.strerror}; choose a "
                         "writable --output-dir") from None
    try:
        yield
    finally:
        lock.release()


def _run_locked(model_obj: Any, task_objs: Sequence[Task], instances: Mapping[str, list[Instance]],
                hashes: Mapping[str, tuple[str, str]], judge_objs: Mapping[str, Any],
                given_names: Sequence[str] | None, run_name: str, run_dir: Path,
                output_dir: Path, shard: Any, *, use_cache: bool, batch_size: int | str,
                progress: bool, seed: int, repeats: int | None, limit: int | float | None,
                num_fewshot: int | None, include_paths: Sequence[str],
                write_leaderboard: bool, image_ablation: str, predict_only: bool,
                gen_kwargs: Mapping[str, Any] | None, chosen: Mapping[str, Any] | None,
                fewshot_seed: int | None, load_s: float) -> RunResult:
    """Generate, judge and write one run folder (its lock held)."""
    from harness.run import report

    journal = Journal(run_dir)
    cache = ResponseCache(output_dir / "cache", model_obj.fingerprint()) if use_cache else None
    kinds = {t.name: CALL_KINDS[t.config.output_type] for t in task_objs}
    everything = [i for t in task_objs for i in instances[t.name]]
    started = time.monotonic()
    try:
        used_batch = _generate(model_obj, shard.select(everything), journal, cache, batch_size,
                               progress, kinds, image_ablation)
    finally:
        journal.close()
        if cache is not None:
            cache.close()
    generate_s = time.monotonic() - started
    if shard.distributed:
        # Every process appended its share to the one journal: wait, then read it whole.
        distributed.wait_for_everyone(shard)
        if not shard.is_main:
            distributed.finish(shard)
            return RunResult(run_dir=run_dir, results={}, samples=())
        journal = Journal(run_dir)
        journal.close()

    started = time.monotonic()
    memory = VerdictMemory(run_dir, output_dir / "cache" if use_cache else None)
    samples: list[Sample] = []
    metric_scores: dict[str, dict[str, Any]] = {}
    for task in task_objs:
        task_samples = [_sample(i, journal.responses[i.key], task.config.filter_list)
                        for i in instances[task.name]]
        names = [] if predict_only else task_judge_names(task, given_names)
        if LOGLIKELIHOOD in names:
            task_samples = [s.with_verdict(LOGLIKELIHOOD, loglikelihood_verdict(s)) for s in task_samples]
        images = {i.key: tuple(p for p in i.request.parts if isinstance(p, ImagePart))
                  for i in instances[task.name]}
        metrics = task_metrics(task)[1]
        if metrics:
            process_results = task.config.process_results
            metric_scores[task.name] = score_metrics(
                metrics, task_samples, task.config.output_type,
                filter_pipelines(task.config.filter_list),
                process_results.load(f"{task.config.source}:process_results")
                if process_results is not None else None)
        try:
            samples.extend(apply_judges(task_samples,
                                        [judge_objs[n] for n in names if n in judge_objs],
                                        images, memory))
        except BaseException:
            memory.close()
            raise
    memory.close()
    judge_s = time.monotonic() - started
    model_info = model_obj.describe()
    revisions = Counter(s.model_revision for s in samples if s.model_revision)
    if revisions:  # a server may change what it runs mid-run: say so, with counts
        model_info["served_revisions"] = dict(sorted(revisions.items()))
    results = {
        "run_name": run_name,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "model": model_info,
        "tasks": {t.name: {"config": t.config.to_dict(), "task_hash": hashes[t.name][0],
                           "prompt_hash": hashes[t.name][1],
                           "n_docs": len({i.doc_id for i in instances[t.name]}),
                           "n_docs_total": len(t.eval_docs),
                           "n_samples": len(instances[t.name]),
                           "judges": [] if predict_only else task_judge_names(t, given_names),
                           "function_dirs": t.config.function_dirs()} for t in task_objs},
        "judges": {name: judge.describe() for name, judge in judge_objs.items()},
        "seed": seed, "repeats": repeats, "limit": limit, "image_ablation": image_ablation,
        "batch_size": batch_size,
        "batch_sizes": [used_batch] if batch_size == "auto" and used_batch else [],
        "gen_kwargs": dict(gen_kwargs) if gen_kwargs else None, "samples": chosen,
        "fewshot_seed": fewshot_seed, "predict_only": predict_only,
        "num_fewshot": num_fewshot, "include_paths": [str(Path(p).resolve()) for p in include_paths],
        "cached_responses": sum(1 for i in everything if journal.cached.get(i.key)),
        # This invocation's wall time per stage (a resumed run times only what it redid).
        "timing": {"load_s": round(load_s, 3), "generate_s": round(generate_s, 3),
                   "judge_s": round(judge_s, 3)},
        "usage": token_usage([journal.responses[i.key] for i in everything
                              if not journal.cached.get(i.key)]),
        "scores": scores_by_task(samples, seed),
        "metrics": metric_scores,
    }
    results = report.write_run(run_dir, results, samples)
    report.write_lm_eval(output_dir, results, samples)
    if write_leaderboard:
        report.append_leaderboard(output_dir, run_dir, results, judge_objs)
    distributed.finish(shard)
    return RunResult(run_dir=run_dir, results=results, samples=tuple(samples))
