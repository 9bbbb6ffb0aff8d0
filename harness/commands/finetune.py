"""The ``finetune`` sub-command: flags, a task's items as training examples, the base model.

``run_bench.py finetune ...`` (or ``accelerate launch -m harness.commands.finetune ...``)
finetunes with ``harness.finetune.train``; the result is evaluated by the ordinary run with
``--model magma --model-args finetuned=DIR``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.arguments import parse_key_values
from harness.errors import BenchError
from harness.finetune.config import WARMUP_SCHEDULES, FinetuneConfig
from harness.finetune.data import TrainingExample, examples_from_requests
from harness.finetune.train import train
from harness.models.base import FinetuneView
from harness.run.setup import resolve_tasks


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``finetune`` sub-command's flags (defaults: the paper's protocol)."""
    add = parser.add_argument
    add("--model", default="magma", help="a MAGMA model or card (default: magma)")
    add("--model-args", "--model_args", dest="model_args", default="",
        help="k=v,... for the base model, e.g. checkpoint=PATH,dtype=bfloat16")
    add("--task", required=True, help="a generate_until task whose items are the training "
        "examples, e.g. morality_0shot_train")
    add("--include-path", "--include_path", dest="include_path", action="append", default=[],
        help="a folder of extra task YAMLs (repeatable)")
    add("--limit", type=int, default=None, help="use only the first N items")
    add("--output", required=True, type=Path, help="output folder (rerun to resume)")
    add("--variant", default=None, help="name shown on leaderboard rows "
        "(default: finetuned-<output folder name>)")
    add("--epochs", type=int, default=4)
    add("--batch-size", "--batch_size", dest="batch_size", type=int, default=8,
        help="examples per optimizer step, over all processes (default 8, as the paper)")
    add("--micro-batch-size", dest="micro_batch_size", type=int, default=None,
        help="examples per process per forward; smaller means gradient accumulation")
    add("--lr", type=float, default=8e-4)
    add("--freeze-image-encoder", action="store_true",
        help="keep the CLIP image encoder frozen (default: trained at --image-encoder-lr, as MAGMA_v1)")
    add("--train-image-encoder", action="store_true", help=argparse.SUPPRESS)  # the default now
    add("--image-encoder-lr", type=float, default=2e-6)
    add("--warmup-steps", type=int, default=None,
        help="warmup steps (default: one epoch's optimizer steps)")
    add("--warmup-schedule", choices=WARMUP_SCHEDULES, default="log",
        help="log: DeepSpeed's WarmupLR ramp, as MAGMA (default); linear")
    add("--weight-decay", type=float, default=0.0)
    add("--grad-clip", type=float, default=1.0)
    add("--mask-prompt", action="store_true", help="learn the answer only, not the prompt")
    add("--mixed-precision", choices=("auto", "no", "fp16", "bf16"), default="auto",
        help="auto: bf16/fp16 when the model is loaded in that dtype, else no")
    add("--gradient-checkpointing", action="store_true")
    add("--seed", type=int, default=1234)
    add("--save-every", type=int, default=None,
        help="optimizer steps between resume points (default: each epoch)")
    add("--max-steps", type=int, default=None,
        help="stop after this many optimizer steps in all; rerun without it to finish")


def _task_examples(name: str, include_paths: Sequence[str],
                   limit: int | None) -> list[TrainingExample]:
    tasks = resolve_tasks(name, include_paths)
    if len(tasks) != 1:
        raise BenchError(f"--task {name} names {len(tasks)} tasks; finetune on one task")
    task = tasks[0]
    if task.config.output_type != "generate_until":
        raise BenchError(f"task '{task.name}' is {task.config.output_type}; finetune on a "
                         "generate_until task (e.g. morality_0shot_train)")
    instances = task.instances(run_seed=0, repeats=1, limit=limit)
    return examples_from_requests([i.request for i in instances], task.config.target_delimiter)


def _load_view(model_name: str, model_args: dict[str, Any]) -> tuple[Any, FinetuneView]:
    from accelerate import PartialState

    from harness.registry import load_model

    if "finetuned" in model_args:
        raise BenchError("finetune starts from the base model; drop finetuned= from --model-args")
    # One whole copy per process (DDP), never sharded or offloaded by device_map="auto".
    cpu = os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
    model_args.setdefault("device_map", str(PartialState(cpu=cpu).device))
    model = load_model(model_name, model_args)
    make_view = getattr(model, "finetune_view", None)
    if make_view is None:
        raise BenchError(f"model '{model_name}' cannot be finetuned here; finetune a MAGMA "
                         "model (e.g. --model magma or magma-tiny)")
    return model, make_view()


def run(args: argparse.Namespace) -> int:
    """Finetune as the flags say; 0 when the run is complete, 3 when stopped by --max-steps."""
    import torch

    model_args = parse_key_values(args.model_args, "--model-args")
    examples = _task_examples(args.task, args.include_path, args.limit)
    model, view = _load_view(args.model, model_args)
    mixed_precision = args.mixed_precision
    if mixed_precision == "auto":
        dtypes = {p.dtype for p in view.module.parameters()}
        mixed_precision = ("bf16" if torch.bfloat16 in dtypes else
                           "fp16" if torch.float16 in dtypes else "no")
    if args.freeze_image_encoder and args.train_image_encoder:
        raise BenchError("--freeze-image-encoder and --train-image-encoder contradict each other; "
                         "the encoder is trained by default, so pass only --freeze-image-encoder")
    config = FinetuneConfig(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
        train_image_encoder=not args.freeze_image_encoder, image_encoder_lr=args.image_encoder_lr,
        weight_decay=args.weight_decay, warmup_steps=args.warmup_steps,
        warmup_schedule=args.warmup_schedule, grad_clip=args.grad_clip,
        mask_prompt=args.mask_prompt, seed=args.seed, mixed_precision=mixed_precision,
        gradient_checkpointing=args.gradient_checkpointing,
        micro_batch_size=args.micro_batch_size, save_every=args.save_every,
        max_steps=args.max_steps)
    manifest = {"base_model": args.model, "base_model_args": model_args, "task": args.task,
                "variant": args.variant}
    result = train(view, examples, config, args.output, manifest)
    from accelerate import PartialState

    if not PartialState().is_main_process:
        return 0 if result.finished else 3
    if not result.finished:
        print(f"stopped after step {result.steps_done} of {result.total_steps}; rerun the same "
              "command without --max-steps to finish", file=sys.stderr)
        return 3
    print(f"finetuned weights in {args.output}; evaluate with --model {args.model} "
          f"--model-args finetuned={args.output}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m harness.commands.finetune`` / ``accelerate launch -m harness.commands.finetune``."""
    parser = argparse.ArgumentParser(prog="finetune", description=__doc__.split("\n")[0])
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except BenchError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
