"""``--write-out`` / ``--show-config``: print the first rendered prompts and the resolved config.

lm-eval's habit of looking before running: the tasks are resolved with every override
(``--num-fewshot``, ``--gen-kwargs``, ``--seed``, ``--samples``, ``--limit``), their first
requests rendered with images shown as ``<image>``, and nothing is generated or judged; the
model is not loaded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, TextIO

from harness.run.overrides import override_tasks, parse_samples, select_samples
from harness.run.setup import resolve_tasks

#: Prompts printed per task by ``--write-out``.
PROMPTS_SHOWN = 3


def preview(tasks: str, *, include_paths: Sequence[str], num_fewshot: int | None,
            gen_kwargs: Mapping[str, Any] | None, seed: int, fewshot_seed: int | None,
            limit: int | float | None, repeats: int | None, sample_ids: str | None,
            run_settings: Mapping[str, Any], write_out: bool, show_config: bool,
            out: TextIO, image_ablation: str = "none") -> None:
    from harness.registry import add_card_dirs

    add_card_dirs(include_paths)
    task_objs = override_tasks(resolve_tasks(tasks, include_paths, num_fewshot), gen_kwargs,
                               fewshot_seed)
    chosen = parse_samples(sample_ids)
    if show_config:
        print("# run", file=out)
        print(json.dumps(dict(run_settings), indent=2, default=str), file=out)
        for task in task_objs:
            print(f"# task {task.name}", file=out)
            print(json.dumps(task.config.to_dict(), indent=2, default=str), file=out)
    if write_out:
        for task in task_objs:
            instances = task.instances(run_seed=seed, repeats=repeats, limit=limit,
                                       image_ablation=image_ablation)
            if chosen is not None:
                instances = select_samples(task, instances, chosen.get(task.name, []))
            for instance in instances[:PROMPTS_SHOWN]:
                request = instance.request
                print(f"# {instance.key}  images: {', '.join(instance.image_ids) or 'none'}"
                      f"  seed: {request.seed}", file=out)
                print(request.text, file=out)
                if instance.choices:
                    print(f"# choices: {list(request.continuations)}  gold: {instance.gold}", file=out)
                else:
                    print(f"# target: {instance.target!r}  generation: {request.generation}", file=out)
