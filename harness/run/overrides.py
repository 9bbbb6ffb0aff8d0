"""lm-eval's command-line overrides, applied to tasks, instances and model arguments.

``--gen-kwargs`` (generation settings over each generate_until task's own), the few-shot
seed of ``--seed``'s comma form, ``--samples`` (chosen documents per task), and
``--apply-chat-template`` / ``--system-instruction`` (for adapters that take them). Each
changes what the run asks, so each is part of the task config or model arguments that a
run's name is derived from. Nothing here runs a model.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from harness.errors import BenchError
from harness.tasks.config import FewshotConfig
from harness.tasks.generation import generation_settings
from harness.tasks.task import Instance, Task

LENGTH_KEYS = frozenset({"max_gen_toks", "max_new_tokens"})


def parse_seed(text: str | int) -> tuple[int, int | None]:
    """``--seed N`` or lm-eval's ``--seed python,numpy,torch,fewshot``: (run seed, few-shot seed).

    Every random choice of a run derives from the run seed (the first value), so the numpy
    and torch positions are accepted but have nothing further to seed; the fourth sets the
    tasks' few-shot seed. ``None`` in a position keeps the default.
    """
    if isinstance(text, int):
        return text, None
    values = [v.strip() for v in str(text).split(",")]
    if len(values) not in (1, 4):
        raise BenchError(f"--seed: '{text}' must be one integer or four (python,numpy,torch,"
                         "fewshot), e.g. --seed 0,1234,1234,1234")
    parsed: list[int | None] = []
    for value in values:
        if value.lower() == "none":
            parsed.append(None)
            continue
        try:
            parsed.append(int(value))
        except ValueError:
            raise BenchError(f"--seed: '{value}' is not an integer or None") from None
    run_seed = parsed[0] if parsed[0] is not None else 0
    return run_seed, parsed[3] if len(parsed) == 4 else None


def override_tasks(tasks: Sequence[Task], gen_kwargs: Mapping[str, Any] | None,
                   fewshot_seed: int | None) -> list[Task]:
    """Tasks with ``gen_kwargs`` over their generation settings and a new few-shot seed."""
    result = []
    for task in tasks:
        config = task.config
        if gen_kwargs and config.output_type == "generate_until":
            base = dict(config.generation_kwargs)
            if LENGTH_KEYS & set(gen_kwargs):  # lm-eval's and transformers' names for one setting
                base = {k: v for k, v in base.items() if k not in LENGTH_KEYS}
            merged = {**base, **gen_kwargs}
            generation_settings(merged, "--gen-kwargs")  # a bad value fails here, named
            config = replace(config, generation_kwargs=merged)
        if fewshot_seed is not None:
            fewshot = config.fewshot_config
            config = replace(config, fewshot_config=FewshotConfig(
                sampler=fewshot.sampler, seed=fewshot_seed, split=fewshot.split))
        result.append(task if config is task.config else Task(config))
    return result


def parse_samples(text: str | Mapping[str, Sequence[Any]] | None) -> dict[str, list[Any]] | None:
    """``--samples '{"task": [ids]}'`` as a mapping (ids: item ids or positions in the split)."""
    if text is None or isinstance(text, Mapping):
        return {str(k): list(v) for k, v in text.items()} if text is not None else None
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise BenchError("--samples must be JSON mapping tasks to lists of item ids, e.g. "
                         "'{\"morality_0shot\": [\"item-001\", 3]}'") from None
    if not isinstance(value, dict) or not all(isinstance(v, list) for v in value.values()):
        raise BenchError("--samples must map each task name to a list of item ids")
    return {str(k): list(v) for k, v in value.items()}


def select_samples(task: Task, instances: Sequence[Instance], wanted: Sequence[Any]) -> list[Instance]:
    """The instances of the items in ``wanted``: an item id, or an integer position in the split."""
    ids = [task.doc_id(doc, index) for index, doc in enumerate(task.eval_docs)]
    chosen: set[str] = set()
    for item in wanted:
        if isinstance(item, int) and not isinstance(item, bool) and str(item) not in ids:
            if not 0 <= item < len(ids):
                raise BenchError(f"--samples: task '{task.name}' has {len(ids)} items; "
                                 f"position {item} is out of range")
            chosen.add(ids[item])
        elif str(item) in ids:
            chosen.add(str(item))
        else:
            raise BenchError(f"--samples: task '{task.name}' has no item '{item}'")
    return [i for i in instances if i.doc_id in chosen]


def chat_model_args(factory: Any, model_args: Mapping[str, Any], apply_chat_template: bool,
                    system_instruction: str | None, name: str) -> dict[str, Any]:
    """``model_args`` plus the adapter's own arguments for a chat template and system message."""
    args = dict(model_args)
    params = inspect.signature(factory).parameters
    if apply_chat_template:
        if "use_chat_template" in params:
            if params["use_chat_template"].default is not True:
                args.setdefault("use_chat_template", True)
        elif "system_prompt" not in params:  # chat APIs (openai) always use the server's template
            raise BenchError(f"--apply-chat-template: model '{name}' has no chat template; "
                             "drop the flag")
    if system_instruction is not None:
        if "system_prompt" not in params:
            raise BenchError(f"--system-instruction: model '{name}' takes no system message "
                             "(it has no chat template)")
        args["system_prompt"] = system_instruction
    return args
