"""A run's results and samples in lm-evaluation-harness 0.4's file schema.

lm-eval writes ``<output_path>/<model_name_sanitized>/results_<date_id>.json`` (metric keys
``"<metric>,<filter>"`` with ``"<metric>_stderr,<filter>"``, plus ``configs``, ``versions``,
``n-shot``, ``higher_is_better``, ``n-samples``, ``config``, ``git_hash``, ``date``) and one
``samples_<task>_<date_id>.jsonl`` per task beside it. Tools that read those (lm-eval's
``make_table``, its result-file helpers, dashboards) can then read a run of this bench.

The task's lm-eval metrics (``results.json``'s ``metrics``, computed as lm-eval computes them)
are written as lm-eval writes them: ``<metric>,<filter>`` for every ``filter_list`` pipeline,
with ``<metric>_stderr,<filter>`` (``"N/A"`` where lm-eval gives none). Each judge is a metric
named after it too (the judge-free multiple-choice score is lm-eval's ``acc``, unless the
task's lm-eval ``acc`` fills that row, which leaves the judge's summary to the extras); its filter is the task's first
``filter_list`` pipeline, else ``none``; the value is the accuracy over scored samples, the
stderr is clustered by image, and ``<metric>_strict`` is the strict accuracy over all items.
Our confidence intervals and counts, which lm-eval's schema has no place for, go in the
extra key ``vlm_morality_bench``. This module only reshapes records; it computes no score.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any

from harness.stats.lm_eval_stderr import BOOTSTRAP_ITERS

#: Our name for the judge-free multiple-choice score, and lm-eval's.
LOGLIKELIHOOD_JUDGE = "loglikelihood"
LOGLIKELIHOOD_METRIC = "acc"


def sanitize_model_name(model_name: str) -> str:
    """lm-eval's folder name for a model (``lm_eval.utils.sanitize_model_name``)."""
    return re.sub(r"[\"<>:/|\\?*\[\]]+", "__", model_name)


def date_id(when: datetime | None = None) -> str:
    """lm-eval's timestamp in file names: local ISO time with ``-`` for ``:``."""
    return (when or datetime.now()).isoformat().replace(":", "-")


def metric_name(judge: str) -> str:
    return LOGLIKELIHOOD_METRIC if judge == LOGLIKELIHOOD_JUDGE else judge


def filter_name(config: Mapping[str, Any]) -> str:
    pipelines = config.get("filter_list") or []
    return str(pipelines[0].get("name") or "filtered") if pipelines else "none"


def _shots(task: str, config: Mapping[str, Any]) -> int:
    if config.get("num_fewshot") is not None:
        return int(config["num_fewshot"])
    match = re.search(r"(\d+)[-_]?shot", task)
    return int(match.group(1)) if match else 0


def _na(value: float | None) -> float | str:
    return "N/A" if value is None else value


def _task_rows(task: str, by_judge: Mapping[str, Any], metrics: Mapping[str, Any],
               where: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, bool]]:
    """A task's row of lm-eval's ``results``, its extras and its ``higher_is_better``."""
    rows: dict[str, Any] = {"name": task, "alias": task}
    extra: dict[str, Any] = {}
    higher: dict[str, bool] = {}
    for key, entry in metrics.items():  # lm-eval's own metrics, every filter
        name, _, filter_key = key.partition(",")
        rows[key] = _na(entry.get("value"))
        rows[f"{name}_stderr,{filter_key}"] = _na(entry.get("stderr"))
        higher[name] = bool(entry.get("higher_is_better", True))
    for judge, summary in by_judge.items():
        metric = metric_name(judge)
        summary_extra = {"judge": judge, **{k: v for k, v in summary.items() if k != "breakdown"}}
        if f"{metric},{where}" in metrics:  # lm-eval's own acc fills the row
            extra[f"{judge},{where}"] = summary_extra
            continue
        rows[f"{metric},{where}"] = _na(summary.get("accuracy"))
        rows[f"{metric}_stderr,{where}"] = _na(summary.get("stderr"))
        higher[metric] = True
        if "strict_accuracy" in summary:  # over all items: refusals and errors count as wrong
            rows[f"{metric}_strict,{where}"] = _na(summary.get("strict_accuracy"))
            higher[f"{metric}_strict"] = True
        extra[f"{metric},{where}"] = summary_extra
    counts = [entry.get("n") or 0 for entry in metrics.values()]
    counts += [summary.get("n") or 0 for summary in by_judge.values()]
    rows["sample_len"] = max(counts, default=0)
    return rows, extra, higher


def results_document(results: Mapping[str, Any]) -> dict[str, Any]:
    """The ``results_<date_id>.json`` content for a run's ``results.json``."""
    per_task: dict[str, dict[str, Any]] = {}
    extras: dict[str, dict[str, Any]] = {}
    higher_is_better: dict[str, dict[str, bool]] = {}
    all_metrics = results.get("metrics") or {}
    for task in {**results["scores"], **all_metrics}:
        per_task[task], extras[task], higher_is_better[task] = _task_rows(
            task, results["scores"].get(task, {}), all_metrics.get(task, {}),
            filter_name(results["tasks"][task]["config"]))
    tasks = results["tasks"]
    model = results["model"]
    created = results.get("created")
    timestamp = datetime.fromisoformat(created).timestamp() if created else None
    return {
        "results": per_task,
        "group_subtasks": {task: [] for task in per_task},
        "configs": {task: {**tasks[task]["config"], "task": task} for task in per_task},
        "versions": {task: (tasks[task]["config"].get("metadata") or {}).get("version")
                     for task in per_task},
        "n-shot": {task: _shots(task, tasks[task]["config"]) for task in per_task},
        "higher_is_better": higher_is_better,
        "n-samples": {task: {"original": tasks[task].get("n_docs_total", tasks[task]["n_docs"]),
                             "effective": tasks[task]["n_docs"]} for task in per_task},
        "config": {
            "model": model["name"], "model_args": model.get("args"),
            "batch_size": results.get("batch_size"), "batch_sizes": [], "device": None,
            "use_cache": None, "limit": results.get("limit"), "bootstrap_iters": BOOTSTRAP_ITERS,
            "gen_kwargs": results.get("gen_kwargs"), "random_seed": results.get("seed"),
            "numpy_seed": results.get("seed"), "torch_seed": results.get("seed"),
            "fewshot_seed": results.get("seed"),
        },
        "git_hash": results.get("git_sha"),
        "date": timestamp,
        "model_source": model["name"].split(":")[0],
        "model_name": model["name"],
        "model_name_sanitized": sanitize_model_name(model["name"]),
        "task_hashes": {task: tasks[task].get("task_hash") for task in per_task},
        "vlm_morality_bench": {
            "run_name": results.get("run_name"), "schema": results.get("schema"),
            "metrics": extras, "judges": results.get("judges"),
            "repeats": results.get("repeats"), "versions": results.get("versions"),
            # What the answers came from (issue 17): identity by content, served revisions.
            "model_identity": model.get("identity_digest"),
            "served_revisions": model.get("served_revisions"),
        },
    }


def _generation_kwargs(config: Mapping[str, Any]) -> dict[str, Any]:
    return dict(config.get("generation_kwargs") or {})


#: The key of a sample dict that carries its lm-eval metric values, by filter:
#: ``{filter: {"filtered": the filtered response (generate_until) or None, "values": {...}}}``.
LM_EVAL_FILTERS = "lm_eval_filters"


def _requests(config: Mapping[str, Any], repeats: Sequence[Mapping[str, Any]]
              ) -> tuple[dict[str, Any], list[Any], list[str] | None]:
    """lm-eval's ``arguments`` and ``resps`` of one document, and its multiple-choice
    ``filtered_resps`` (None for generated answers, which each filter reads its own way)."""
    first = repeats[0]
    choices = list(first.get("choices") or [])
    if not choices:
        return ({"gen_args_0": {"arg_0": first["prompt"], "arg_1": _generation_kwargs(config)}},
                [[str(s.get("response")) for s in repeats]], None)
    # multiple choice: one request per choice, [log-likelihood, is_greedy]
    delimiter = str(config.get("target_delimiter", " "))
    arguments = {f"gen_args_{i}": {"arg_0": first["prompt"], "arg_1": delimiter + choice}
                 for i, choice in enumerate(choices)}
    scores = [list(s.get("loglikelihoods") or []) for s in repeats]
    resps = [[str([s[i], "None"]) if i < len(s) else "None" for s in scores]
             for i in range(len(choices))]
    return arguments, resps, [str([scores[0][i], "None"]) if i < len(scores[0]) else "None"
                              for i in range(len(choices))]


def _judge_values(repeats: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    """Each judge's aligned share over a document's scored repeats, by metric name."""
    values: dict[str, float] = {}
    for judge in repeats[0].get("verdicts", {}):
        scored = [s["verdicts"][judge] for s in repeats
                  if s.get("verdicts", {}).get(judge, {}).get("status") == "ok"]
        if scored:
            values[metric_name(judge)] = sum(1.0 for v in scored if v.get("aligned")) / len(scored)
    return values


def samples_document(config: Mapping[str, Any], samples: Iterable[Mapping[str, Any]]
                     ) -> Iterator[dict[str, Any]]:
    """The lines of ``samples_<task>_<date_id>.jsonl``, one at a time: one per (document,
    filter), a document's filters in turn (repeats inside a document's line).

    ``samples`` are one task's ``samples.jsonl`` lines (plain dicts), in order: a document's
    repeats one after another, as a run writes them; each carries its lm-eval metric values
    under ``LM_EVAL_FILTERS`` when the task has lm-eval metrics (a document's line shows its
    first repeat's). Judges' shares go on the lines of the judges' filter. The saved form is
    the one lm-eval writes: ``arguments`` as ``{"gen_args_N": {"arg_M": ...}}``, responses
    as strings. (lm-eval writes all of one filter's lines, then the next filter's: the same
    lines, in another order, which streaming a run's samples once cannot give.)
    """
    where = filter_name(config)
    by_doc = itertools.groupby(samples, key=lambda sample: str(sample["doc_id"]))
    for index, (doc_id, grouped) in enumerate(by_doc):
        repeats = list(grouped)
        first = repeats[0]
        arguments, resps, choice_resps = _requests(config, repeats)
        metric_filters = first.get(LM_EVAL_FILTERS) or {}
        for filter_key in [*metric_filters, *([] if where in metric_filters else [where])]:
            per_filter = [(s.get(LM_EVAL_FILTERS) or {}).get(filter_key) for s in repeats]
            filtered = choice_resps if choice_resps is not None else [  # this filter's answers
                str(f["filtered"] if f is not None and f.get("filtered") is not None
                    else s["filtered_response"] if s.get("filtered_response") is not None
                    else s.get("response")) for s, f in zip(repeats, per_filter)]
            metrics = {k: v for k, v in ((per_filter[0] or {}).get("values") or {}).items()
                       if v is not None}
            if filter_key == where:
                metrics = {**{k: v for k, v in _judge_values(repeats).items() if k not in metrics},
                           **metrics}
            yield {
                "doc_id": index, "doc": dict(first.get("doc") or {}),
                "target": str(first.get("target")), "arguments": arguments, "resps": resps,
                "filtered_resps": filtered, "filter": filter_key, "metrics": sorted(metrics),
                "doc_hash": first.get("doc_hash"), "prompt_hash": first.get("prompt_hash"),
                "target_hash": first.get("target_hash"), **metrics,
                "vlm_morality_bench": {"doc_id": doc_id,
                                       "request_ids": [s["request_id"] for s in repeats],
                                       "verdicts": [s.get("verdicts", {}) for s in repeats]},
            }
