"""The evaluate loop: tasks -> requests -> model (batched, journaled, cached) -> judges -> scores.

``evaluate`` accepts names or objects for the model, tasks and judges, and returns a
``RunResult``. It checks the arguments, loads what they name, and runs the three passes over
each task's instances: what the run is (``harness.run.naming``), generation
(``harness.run.generation``) and judging (``harness.run.judging``); then writes results.json
and the leaderboard row through ``harness.run.folder`` and ``harness.run.report``. It renders
no prompt and parses no answer itself.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.arguments import split_names
from harness.errors import BenchError
from harness.judges.base import Judge
from harness.models.base import Model
from harness.paths import DEFAULT_OUTPUT_DIR
from harness.registry import add_card_dirs, load_model, model_factory
from harness.run import distributed
from harness.run.folder import Results, RunFolder, cache_dir
from harness.run.generation import CALL_KINDS, generate_all
from harness.run.journal import Journal, ResponseCache
from harness.run.judging import JudgingPass
from harness.run.naming import TaskFacts, run_name
from harness.run.overrides import chat_model_args, override_tasks, parse_samples, select_samples
from harness.run.report import append_leaderboard, git_sha, package_versions, write_lm_eval
from harness.run.samples import Sample
from harness.run.scores import scores_of
from harness.run.setup import bind_tasks, load_judges, resolve_tasks, run_groups, task_judge_names
from harness.run.verdicts import VerdictMemory
from harness.tasks.ablation import NO_ABLATION, check_ablation
from harness.tasks.config import TaskConfig
from harness.tasks.groups import group_record
from harness.tasks.task import Instance, Task


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
    tasks = split_names(tasks) if isinstance(tasks, str) else list(tasks)  # read twice below
    task_objs = override_tasks(resolve_tasks(tasks, include_paths, num_fewshot), gen_kwargs,
                               fewshot_seed)
    groups = run_groups(tasks, include_paths)  # lm-eval's group rows, computed at the end
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
    facts = {t.name: TaskFacts() for t in task_objs}
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
    name = run_name(model_obj, hashes, seed, repeats, limit, image_ablation)
    output_dir = Path(output_dir)
    folder = RunFolder.of(output_dir, name)
    folder.create()
    run_dir = folder.path
    with folder.locked(take=shard.is_main):
        # Pass 2: generate what the journal lacks.
        journal = Journal(folder)
        cache = ResponseCache(cache_dir(output_dir), model_obj.fingerprint()) if use_cache else None
        everything = itertools.chain.from_iterable(instances_of(t) for t in task_objs)
        started = time.monotonic()
        try:
            used_batch = generate_all(model_obj, shard.take(everything), journal, cache, batch_size,
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
        judged = JudgingPass()
        memory = VerdictMemory(run_dir, cache_dir(output_dir) if use_cache else None)
        try:
            folder.write_samples(judged.samples(task_objs, instances_of, journal, judge_objs,
                                                [] if predict_only else given_names, memory))
        finally:
            journal.close()
            memory.close()
        judge_s = time.monotonic() - started
        results = Results(
            run_name=name,
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
            usage=judged.usage.to_dict(),
            scores=scores_of(judged.tallies), metrics=judged.metrics,
            groups={name: group_record(group, leaves, judged.metrics)
                    for name, (group, leaves) in groups.items()},
            versions=package_versions(), git_sha=git_sha(), samples_schema=judged.schema,
        )
        folder.write_results(results)
        write_lm_eval(output_dir, results, folder.iter_samples(), judged.scorers)
        if write_leaderboard:
            append_leaderboard(output_dir, run_dir, results, judge_objs)
        distributed.finish(shard)
        return RunResult(run_dir=run_dir, results=results.to_dict())


