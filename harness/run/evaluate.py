"""The evaluate loop: tasks -> requests -> model (batched, journaled, cached) -> judges -> scores.

``evaluate`` accepts names or objects for the model, tasks and judges, and returns a
``RunResult``. A run's folder name depends only on what determines its outputs (never on
batch size), so re-running a command resumes it. This module writes through
``harness.run.journal`` and ``harness.run.report``; it renders no prompt and parses no answer itself.
"""

from __future__ import annotations

import functools
import itertools
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.arguments import split_names
from harness.errors import BenchError
from harness.hashing import stable_hash
from harness.judges.base import Judge
from harness.judges.metrics import score_metrics
from harness.models.base import Model
from harness.models.contexts import loglikelihood_by_context
from harness.paths import DEFAULT_OUTPUT_DIR
from harness.registry import add_card_dirs, load_model, model_factory
from harness.run import distributed
from harness.run.folder import Results, RunFolder, cache_dir
from harness.run.journal import Journal, ResponseCache, request_key
from harness.run.overrides import chat_model_args, override_tasks, parse_samples, select_samples
from harness.run.report import append_leaderboard, git_sha, package_versions, write_lm_eval
from harness.run.samples import (
    LOGLIKELIHOOD,
    Sample,
    apply_judges,
    for_scores,
    loglikelihood_verdict,
    scores_by_task,
)
from harness.run.setup import (
    bind_tasks,
    group_metrics,
    load_judges,
    resolve_tasks,
    task_judge_names,
    task_metrics,
)
from harness.run.verdicts import VerdictMemory
from harness.tasks.ablation import NO_ABLATION, check_ablation
from harness.tasks.config import TaskConfig
from harness.tasks.filters import apply_filters, filter_views
from harness.tasks.task import Instance, Task, task_hashes
from harness.types import Request, Response

#: Samples judged per judge call: judges batch within a chunk, and a run holds one chunk.
JUDGE_CHUNK = 4096
#: The model call each output type needs.
CALL_KINDS = {"multiple_choice": "loglikelihood", "loglikelihood": "loglikelihood",
              "loglikelihood_rolling": "loglikelihood_rolling", "generate_until": "generate"}


@dataclass(frozen=True)
class RunResult:
    """What a run produced: its folder, its ``results.json`` content and its samples.

    ``results`` is empty, and ``samples`` too, on the processes of a data-parallel run other
    than the first, which write nothing.
    """

    run_dir: Path
    results: Mapping[str, Any]

    @property
    def scores(self) -> Mapping[str, Mapping[str, Any]]:
        return self.results["scores"]

    @property
    def samples(self) -> tuple[Sample, ...]:
        """The run's samples, read back from its samples.jsonl (a run does not hold them)."""
        return tuple(RunFolder(self.run_dir).iter_samples()) if self.results else ()


def _run_name(model: Model, hashes: Mapping[str, tuple[str, str]], seed: int, repeats: int | None,
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


class _Sizing:
    """The batch size in use: fixed, or (``auto``) halving on out-of-memory."""

    def __init__(self, batch_size: int | str) -> None:
        self.auto = batch_size == "auto"
        self.size = AUTO_BATCH_START if self.auto else int(batch_size)
        #: The largest batch that went through (None: nothing asked).
        self.used: int | None = None


def _generate(model: Model, instances: Iterable[Instance], journal: Journal,
              cache: ResponseCache | None, batch_size: int | str, progress: bool,
              kinds: Mapping[str, str], totals: Mapping[str, int],
              image_ablation: str = NO_ABLATION) -> int | None:
    """Fill the journal with a response for every instance (resumed, cached, or generated).

    Instances stream by; each kind's requests wait in a buffer of one batch, so the batches
    are those of the instances in order, whatever else is resumed or cached. With
    ``batch_size == "auto"`` batches start at ``AUTO_BATCH_START`` and halve on out-of-memory
    until one fits; returns the batch size used last (None: nothing asked).
    """
    sizing = _Sizing(batch_size)
    pending: dict[str, list[tuple[Instance, str]]] = {kind: [] for kind in totals}
    with _progress(progress) as bar:
        jobs = {kind: bar.add_task(f"{model.registry_name}: {kind}", total=total)
                for kind, total in totals.items() if total}
        for instance in instances:
            kind = kinds[instance.task]
            if journal.done(instance.key):
                bar.advance(jobs[kind])
                continue
            key = request_key(instance.request, kind, image_ablation)
            hit = cache.get(key, instance.key) if cache is not None else None
            if hit is not None:
                journal.add(hit, cached=True)
                bar.advance(jobs[kind])
                continue
            pending[kind].append((instance, key))
            if len(pending[kind]) >= sizing.size:
                _call(model, kind, pending[kind], journal, cache, sizing)
                bar.advance(jobs[kind], len(pending[kind]))
                pending[kind] = []
        for kind, chunk in pending.items():
            if chunk:
                _call(model, kind, chunk, journal, cache, sizing)
                bar.advance(jobs[kind], len(chunk))
    return sizing.used


def _call(model: Model, kind: str, chunk: Sequence[tuple[Instance, str]], journal: Journal,
          cache: ResponseCache | None, sizing: _Sizing) -> None:
    """One batch to the model (smaller ones on out-of-memory when the size is ``auto``);
    each response journaled (and cached) as it comes back."""
    calls: dict[str, Callable[[Sequence[Request]], list[Response]]] = {
        "generate": model.generate,
        "loglikelihood": functools.partial(loglikelihood_by_context, model.loglikelihood),
        "loglikelihood_rolling": model.loglikelihood_rolling}
    call = calls[kind]
    start = 0
    while start < len(chunk):
        part = chunk[start:start + sizing.size] if sizing.auto else chunk[start:]
        requests: list[Request] = [item.request for item, _ in part]
        try:
            responses: list[Response] = call(requests)
        except Exception as exc:
            if sizing.auto and len(part) > 1 and is_out_of_memory(exc):
                sizing.size = len(part) // 2  # answers never depend on the batch: retry smaller
                continue
            raise
        if len(responses) != len(requests):
            raise RuntimeError(f"model {model.registry_name} returned {len(responses)} "
                               f"responses for {len(requests)} requests")
        for (item, key), response in zip(part, responses):
            if response.request_id != item.key:
                response = replace(response, request_id=item.key)
            journal.add(response)
            if cache is not None:
                cache.put(key, response)
        start += len(part)
        sizing.used = len(part) if sizing.used is None else max(sizing.used, len(part))


def token_usage(responses: Iterable[Response]) -> dict[str, int | None]:
    """Prompt and completion tokens summed over the responses whose server reported them."""
    reported = [r for r in responses if r.prompt_tokens is not None or r.completion_tokens is not None]
    return {"prompt_tokens": sum(r.prompt_tokens or 0 for r in reported) if reported else None,
            "completion_tokens": sum(r.completion_tokens or 0 for r in reported) if reported else None,
            "n_reported": len(reported)}


def _sample(instance: Instance, response: Response, filter_list: Sequence[Mapping[str, Any]]) -> Sample:
    text = response.text
    if response.loglikelihoods is not None and instance.choices:
        scores = response.loglikelihoods[:len(instance.choices)]  # not acc_mutual_info's rows
        text = instance.choices[max(range(len(scores)), key=lambda i: scores[i])]
    return Sample(
        task=instance.task, doc_id=instance.doc_id, repeat=instance.repeat,
        request_id=instance.key, seed=instance.request.seed, prompt=instance.request.text,
        image_ids=instance.image_ids, fewshot_ids=instance.fewshot_ids, target=instance.target,
        expected=instance.expected, choices=instance.choices, gold=instance.gold, response=text,
        loglikelihoods=response.loglikelihoods, error=response.error, doc=instance.doc,
        doc_hash=instance.doc_hash, prompt_hash=instance.prompt_hash,
        target_hash=instance.target_hash,
        filtered_response=apply_filters(filter_list, text, instance.doc) if filter_list else None,
        model_revision=response.model_revision,
        cluster_id=instance.cluster_id,
    )


def evaluate(
    model: str | Model,
    tasks: str | Iterable[str | Task | TaskConfig],
    judges: str | Sequence[str | Judge] | None = None,
    *,
    model_args: Mapping[str, Any] | None = None,
    judge_args: Mapping[str, Mapping[str, Any]] | None = None,
    batch_size: int | str | None = None,
    limit: int | float | None = None,
    repeats: int | None = None,
    seed: int = 0,
    num_fewshot: int | None = None,
    output_dir: str | Path = DEFAULT_OUTPUT_DIR,
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

    def instances_of(task: Task) -> Iterator[Instance]:
        instances = task.iter_instances(run_seed=seed, repeats=repeats, limit=limit,
                                        image_ablation=image_ablation)
        if chosen is None:
            return instances
        return iter(select_samples(task, list(instances), chosen.get(task.name, [])))

    kinds = {t.name: CALL_KINDS[t.config.output_type] for t in task_objs}
    shard = distributed.current_shard()
    # Pass 1: what the run is (its name hashes every prompt), counting as the items go by.
    facts = {t.name: _TaskFacts() for t in task_objs}
    totals = dict.fromkeys(("generate", "loglikelihood", "loglikelihood_rolling"), 0)
    position = 0
    for task in task_objs:
        facts[task.name].count(task, instances_of(task), model_obj)
        if not facts[task.name].n_samples:
            raise BenchError(f"--limit {limit} selects none of the {len(task.eval_docs)} items "
                             f"of task '{task.name}'; raise it")
        if facts[task.name].refused == facts[task.name].n_samples:
            # Every item would fail alike: say so before the run.
            raise BenchError(f"model {model_obj.registry_name} cannot run task {task.name}: "
                             f"{facts[task.name].refusal}; choose a task whose items it can take")
        mine = len(range(position, position + facts[task.name].n_samples)[shard.index::shard.count])
        totals[kinds[task.name]] += mine
        position += facts[task.name].n_samples
    hashes = {name: (fact.task_hash, fact.prompt_hash) for name, fact in facts.items()}
    run_name = _run_name(model_obj, hashes, seed, repeats, limit, image_ablation)
    output_dir = Path(output_dir)
    folder = RunFolder.of(output_dir, run_name)
    folder.create()
    run_dir = folder.path
    with folder.locked(take=shard.is_main):
        # Pass 2: generate what the journal lacks.
        journal = Journal(folder)
        cache = ResponseCache(cache_dir(output_dir), model_obj.fingerprint()) if use_cache else None
        everything = itertools.chain.from_iterable(instances_of(t) for t in task_objs)
        started = time.monotonic()
        try:
            used_batch = _generate(model_obj, shard.take(everything), journal, cache, batch_size,
                                   progress, kinds, totals, image_ablation)
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
                return RunResult(run_dir=run_dir, results={})
            journal = Journal(folder)

        # Pass 3: judge the journal's responses (asking judges that remember their verdicts
        # only what the verdict journal and cache lack) and write samples.jsonl, keeping
        # score inputs only.
        started = time.monotonic()
        judged = _Judged()
        memory = VerdictMemory(run_dir, cache_dir(output_dir) if use_cache else None)
        try:
            folder.write_samples(judged.samples(task_objs, instances_of, journal, judge_objs,
                                                [] if predict_only else given_names, memory))
        finally:
            journal.close()
            memory.close()
        judge_s = time.monotonic() - started
        results = Results(
            run_name=run_name,
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            model=judged.model_info(model_obj),
            tasks={t.name: {"config": t.config.to_dict(), "task_hash": facts[t.name].task_hash,
                            "prompt_hash": facts[t.name].prompt_hash,
                            "n_docs": facts[t.name].n_docs, "n_docs_total": len(t.eval_docs),
                            "n_samples": facts[t.name].n_samples,
                            "judges": [] if predict_only else task_judge_names(t, given_names),
                            "function_dirs": t.config.function_dirs()} for t in task_objs},
            judges={name: judge.describe() for name, judge in judge_objs.items()},
            seed=seed, repeats=repeats, limit=limit, image_ablation=image_ablation,
            batch_size=batch_size,
            batch_sizes=(used_batch,) if batch_size == "auto" and used_batch else (),
            gen_kwargs=dict(gen_kwargs) if gen_kwargs else None, samples=chosen,
            fewshot_seed=fewshot_seed, predict_only=predict_only, num_fewshot=num_fewshot,
            include_paths=tuple(str(Path(p).resolve()) for p in include_paths),
            cached_responses=judged.cached,
            # This invocation's wall time per stage (a resumed run times only what it redid).
            timing={"load_s": round(load_s, 3), "generate_s": round(generate_s, 3),
                    "judge_s": round(judge_s, 3)},
            usage=token_usage(judged.fresh),
            scores=scores_by_task(judged.for_scores, seed),
            metrics={**judged.metrics, **group_metrics(tasks, include_paths, judged.metrics)},
            versions=package_versions(), git_sha=git_sha(), samples_schema=judged.schema,
        )
        folder.write_results(results)
        write_lm_eval(output_dir, results, folder.iter_samples())
        if write_leaderboard:
            append_leaderboard(output_dir, run_dir, results, judge_objs)
        distributed.finish(shard)
        return RunResult(run_dir=run_dir, results=results.to_dict())


class _TaskFacts:
    """What pass 1 learns of a task: its hashes and counts."""

    def __init__(self) -> None:
        self.task_hash = self.prompt_hash = ""
        self.n_docs = self.n_samples = self.refused = 0
        #: Why the model cannot answer a request of the task (the first such), or None.
        self.refusal: str | None = None

    def count(self, task: Task, instances: Iterator[Instance], model: Model) -> None:
        doc_ids: set[str] = set()
        refusal = getattr(model, "refusal", None)

        def counted() -> Iterator[Instance]:
            for instance in instances:
                doc_ids.add(instance.doc_id)
                self.n_samples += 1
                reason = refusal(instance.request) if refusal is not None else None
                if reason:
                    self.refused += 1
                    self.refusal = self.refusal or reason
                yield instance

        self.task_hash, self.prompt_hash = task_hashes(task, counted())
        self.n_docs = len(doc_ids)


class _Judged:
    """Pass 3: samples built from the journal and judged a chunk at a time.

    What is kept of each sample is only what the scores read (``for_scores``); a task with
    lm-eval metrics in its ``metric_list`` keeps its whole samples until they are scored
    (``harness.judges.metrics.score_metrics`` aggregates over all of them).
    """

    def __init__(self) -> None:
        self.for_scores: list[Sample] = []
        #: ``{task: {"metric,filter": {...}}}``: the lm-eval metrics of tasks that name any.
        self.metrics: dict[str, dict[str, Any]] = {}
        self.cached = 0
        #: The responses this invocation asked the model for (not resumed from a cache).
        self.fresh: list[Response] = []
        self.schema: int | None = None
        self.revisions: Counter[str] = Counter()

    def model_info(self, model: Model) -> dict[str, Any]:
        """The model's description, with the revisions a server reported it ran, counted
        (a server may change what it runs mid-run)."""
        info = model.describe()
        if self.revisions:
            info["served_revisions"] = dict(sorted(self.revisions.items()))
        return info

    def samples(self, tasks: Sequence[Task], instances_of: Callable[[Task], Iterator[Instance]],
                journal: Journal, judges: Mapping[str, Judge],
                given_names: Sequence[str] | None,
                memory: VerdictMemory | None = None) -> Iterator[Sample]:
        for task in tasks:
            names = task_judge_names(task, given_names)
            task_judges = [judges[n] for n in names if n in judges]
            metrics = task_metrics(task)[1]
            unjudged: list[Sample] = []
            for chunk in _chunks(instances_of(task), JUDGE_CHUNK):
                task_samples = []
                for instance in chunk:
                    response, cached = journal.read(instance.key)
                    self.cached += cached
                    if not cached:
                        self.fresh.append(response)
                    sample = _sample(instance, response, task.config.filter_list)
                    if LOGLIKELIHOOD in names:
                        sample = sample.with_verdict(LOGLIKELIHOOD, loglikelihood_verdict(sample))
                    task_samples.append(sample)
                if metrics:
                    unjudged.extend(task_samples)
                images = {i.key: i.request.images for i in chunk}
                for sample in apply_judges(task_samples, task_judges, images, memory):
                    if self.schema is None:
                        self.schema = sample.schema
                    if sample.model_revision:
                        self.revisions[sample.model_revision] += 1
                    self.for_scores.append(for_scores(sample))
                    yield sample
            if metrics:
                config = task.config
                process_results = (config.process_results.load(f"{config.source}:process_results")
                                   if config.process_results is not None else None)
                self.metrics[task.name] = {}
                # Each pipeline scores one filtered value per document, as lm-eval's do.
                for name, view in filter_views(config.filter_list, unjudged, config.output_type,
                                               config.source):
                    self.metrics[task.name].update(score_metrics(
                        metrics, view, config.output_type, [(name, _unchanged)], process_results))


def _unchanged(text: str | None) -> str | None:
    return text


def _chunks(items: Iterable[Instance], size: int) -> Iterator[list[Instance]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk
