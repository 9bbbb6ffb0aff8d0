"""The ``finetune`` sub-command: MAGMA's own adapter finetuning on a task's aligned answers.

One training example per task item: the item's prompt parts (its image, then its text) and,
after them, the ideal answer; the caption is ``prompt + " " + answer + EOS`` (see
``caption_delimiter``). Cross-entropy runs on the caption tokens only (image positions are
labelled -100), or on the answer only with ``--mask-prompt``. What trains is what MAGMA
trained: the adapters, the image projection and its LayerNorm, optionally the image encoder
at its own learning rate; the language model is frozen explicitly. accelerate does the
plumbing (devices, DDP over ``accelerate launch`` processes, mixed precision, gradient
accumulation); gradient checkpointing is the language model's own.

Every result depends only on the settings and the seed, not on the process count or the
micro-batch size (up to float rounding): the data order is seeded per epoch, the image
prefix's dropout mask per (step, example), and each optimizer step's loss is the mean over all
caption tokens of its whole batch. (This holds while the language model has no dropout of its
own, as MAGMA's has none.)

Output folder: ``trained.safetensors`` + ``finetune.json`` (see
``harness.models.magma.finetuned``), ``loss.jsonl`` (one line per optimizer step),
``loss.png``, and ``resume/`` while a run is unfinished.

This module must not evaluate anything: the finetuned model is evaluated by the ordinary run
with ``--model magma --model-args finetuned=DIR``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import BenchError
from harness.finetune.data import (
    IGNORE_INDEX,
    EncodedExample,
    FinetuneView,
    TrainingExample,
    caption_delimiter,
    caption_loss_module,
    encode_example,
    examples_from_requests,
    examples_hash,
)
from harness.hashing import derive_seed, stable_hash

if TYPE_CHECKING:
    from torch import nn

__all__ = ["IGNORE_INDEX", "EncodedExample", "FinetuneConfig", "FinetuneView", "TrainingExample",
           "add_arguments", "caption_delimiter", "encode_example", "examples_from_requests",
           "run", "train"]

LOSS_LOG = "loss.jsonl"
LOSS_PLOT = "loss.png"
RESUME_DIR = "resume"


@dataclass(frozen=True)
class FinetuneConfig:
    """Every setting of a finetune run; the fields marked ``result=False`` do not change it."""

    epochs: int = 4
    batch_size: int = 8
    lr: float = 8e-4
    train_image_encoder: bool = True  # MAGMA_v1.yml: freeze_img_encoder false, at image_enc_lr
    image_encoder_lr: float = 2e-6
    betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.0
    #: None: one epoch of optimizer steps (see docs/finetuning.md for why).
    warmup_steps: int | None = None
    #: "log": DeepSpeed's WarmupLR ramp, as MAGMA trained; "linear": (step + 1) / (warmup + 1).
    warmup_schedule: str = "log"
    grad_clip: float = 1.0
    mask_prompt: bool = False
    seed: int = 1234
    mixed_precision: str = "no"
    gradient_checkpointing: bool = False
    micro_batch_size: int | None = field(default=None, metadata={"result": False})
    save_every: int | None = field(default=None, metadata={"result": False})
    max_steps: int | None = field(default=None, metadata={"result": False})

    def result_hash(self) -> str:
        """Hash of the settings that change the trained weights (resume checks it)."""
        from dataclasses import fields

        return stable_hash({f.name: getattr(self, f.name) for f in fields(self)
                            if f.metadata.get("result", True)})


def select_trainable(module: nn.Module, train_image_encoder: bool) -> tuple[list[str], list[str]]:
    """Freeze everything, then unfreeze MAGMA's trained parts; return (main, encoder) names.

    The original code means to freeze the language model but its freeze never takes effect;
    here every parameter's ``requires_grad`` is set explicitly, and a language-model
    parameter outside the adapters can never end up trainable.
    """
    main, encoder = [], []
    for name, parameter in module.named_parameters():
        if name.startswith(("image_prefix.proj.", "image_prefix.ln.")) or (
                name.startswith("lm.") and ".adapter" in name):
            main.append(name)
        elif name.startswith("image_prefix.enc.") and train_image_encoder:
            encoder.append(name)
        parameter.requires_grad_(False)
    if not any(".adapter" in name for name in main) or not any("proj" in name for name in main):
        raise BenchError("this model has no MAGMA adapters and image projection to train "
                         "(parameters lm.*.adapter*, image_prefix.proj.*); finetune supports "
                         "MAGMA-layout models only")
    parameters = dict(module.named_parameters())
    for name in main + encoder:
        parameters[name].requires_grad_(True)
    return main, encoder


def warmup_steps(config: FinetuneConfig, n_examples: int) -> int:
    """The configured warmup, or one epoch's optimizer steps by default."""
    if config.warmup_steps is not None:
        return config.warmup_steps
    return math.ceil(n_examples / config.batch_size)


WARMUP_SCHEDULES = ("log", "linear")


def lr_factor(step: int, warmup: int, schedule: str = "log") -> float:
    """The share of the full learning rate at optimizer step ``step`` (0-based).

    ``log`` is DeepSpeed's ``WarmupLR`` / ``WarmupDecayLR`` warmup (its default ``warmup_type``,
    which MAGMA's training used): ln(step + 1) / ln(warmup), with warmup at least 2, so the
    first step runs at 0. ``linear``: (step + 1) / (warmup + 1). Both are 1 from step
    ``warmup`` on (MAGMA's linear decay spans 300k steps, so it is left out).
    """
    if step >= warmup:
        return 1.0
    if schedule == "log":
        return math.log(step + 1) / math.log(max(2, warmup))
    if schedule == "linear":
        return (step + 1) / (warmup + 1)
    raise ValueError(f"unknown warmup schedule {schedule!r}")


def epoch_batches(n_examples: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """The example indices of each optimizer step of one epoch, in a seeded order."""
    import torch

    generator = torch.Generator().manual_seed(derive_seed(seed, "order", epoch))
    order = torch.randperm(n_examples, generator=generator).tolist()
    return [order[start:start + batch_size] for start in range(0, n_examples, batch_size)]


def _loss_plot(records: Sequence[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 3.5))
    axis.plot([r["step"] for r in records], [r["loss"] for r in records], marker=".")
    for record in records:
        if record["end_of_epoch"]:
            axis.axvline(record["step"], color="0.85", linewidth=0.8, zorder=0)
    axis.set(xlabel="optimizer step", ylabel="caption cross-entropy", title="finetune loss")
    figure.tight_layout()
    temporary = path.with_name(path.name + ".tmp.png")
    figure.savefig(temporary, dpi=120)
    plt.close(figure)
    temporary.replace(path)


def _read_loss_log(path: Path, up_to_step: int) -> list[dict[str, Any]]:
    records = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                break  # a line cut by an interruption; everything after it is redone
            if record["step"] <= up_to_step:
                records.append(record)
    return records


@dataclass(frozen=True)
class FinetuneResult:
    """What ``train`` did: its output folder, steps run and whether the run is complete."""

    output: Path
    steps_done: int
    total_steps: int
    finished: bool
    losses: tuple[float, ...]


def train(view: FinetuneView, examples: Sequence[TrainingExample], config: FinetuneConfig,
          output: Path, manifest: dict[str, Any] | None = None,
          log: Callable[[str], None] = print) -> FinetuneResult:
    """Finetune ``view.module`` in place on ``examples``; save to ``output``; resume if there.

    Works in one process or under ``accelerate launch`` (one DDP process per device): every
    process runs this with the same arguments and only the main process writes.
    """
    import torch
    from accelerate import Accelerator
    from safetensors.torch import load_file, save_file

    from harness.models.magma import finetuned

    if not examples:
        raise BenchError("no training examples; check --task and --limit")
    if config.batch_size < 1 or config.epochs < 1:
        raise BenchError("--batch-size and --epochs must be at least 1")
    # The Accelerator first: it reads the launcher's environment (ACCELERATE_USE_CPU too),
    # which a bare PartialState() would not, and would then pin a single-process state.
    accelerator = Accelerator(mixed_precision=config.mixed_precision)
    kind = accelerator.distributed_type.value
    if kind in ("DEEPSPEED", "FSDP", "XLA", "MEGATRON_LM"):
        # DeepSpeed / FSDP scale losses and shard parameters their own way; the per-token
        # loss normalisation below assumes plain data parallelism.
        raise BenchError(f"finetune runs on one device or with data parallelism (DDP), not "
                         f"{kind}; launch with --multi_gpu or a single process")
    world = accelerator.num_processes
    micro = config.micro_batch_size or math.ceil(config.batch_size / world)
    accumulation = math.ceil(config.batch_size / (micro * world))
    accelerator.gradient_accumulation_steps = accumulation
    module: Any = view.module  # MagmaForCausalLM-like: .lm and .image_prefix
    fingerprint = finetuned.base_fingerprint(module)  # before anything trains or loads
    data_hash = examples_hash(examples)
    steps_per_epoch = math.ceil(len(examples) / config.batch_size)
    total_steps = config.epochs * steps_per_epoch
    warmup = warmup_steps(config, len(examples))
    identity = {"config_hash": config.result_hash(), "examples_hash": data_hash,
                "base_fingerprint": fingerprint}

    if (output / finetuned.MANIFEST_FILE).is_file():
        finished_manifest = finetuned.read_manifest(output)
        if {key: finished_manifest.get(key) for key in identity} != identity:
            raise BenchError(f"{output} already holds a finished finetune run with other "
                             "settings, data or base model; choose another --output")
        steps = int(finished_manifest["steps"])
        log(f"{output}: already finished ({steps} steps); nothing to do")
        return FinetuneResult(output, steps, total_steps, True, ())

    main_names, encoder_names = select_trainable(module, config.train_image_encoder)
    parameters = dict(module.named_parameters())
    low_precision = {parameters[n].dtype for n in parameters} - {torch.float32}
    if low_precision and config.mixed_precision == "no":
        raise BenchError(f"the model is loaded in {sorted(map(str, low_precision))}; pass "
                         "--mixed-precision bf16 (or fp16), or load it with dtype=float32")
    module.to(accelerator.device)
    for name in main_names + encoder_names:  # float32 master weights for AdamW
        parameters[name].data = parameters[name].data.float()
    if encoder_names:  # a BatchNorm's statistics must share its float32 weights' dtype
        for submodule in module.modules():
            if isinstance(submodule, torch.nn.modules.batchnorm._BatchNorm):
                submodule.float()

    resume_dir = output / RESUME_DIR
    staging = output / (RESUME_DIR + ".tmp")
    if accelerator.is_main_process and not resume_dir.exists() and (
            staging / "progress.json").is_file():
        staging.replace(resume_dir)  # interrupted between dropping the old state and the rename
    accelerator.wait_for_everyone()
    start_step = 0
    if (resume_dir / "progress.json").is_file():
        progress = json.loads((resume_dir / "progress.json").read_text())
        if {key: progress.get(key) for key in identity} != identity:
            raise BenchError(f"{output} holds an unfinished run with other settings, data or "
                             "base model; rerun with those, or choose another --output")
        start_step = int(progress["step"])
        with torch.no_grad():
            for name, tensor in load_file(str(resume_dir / "trained.safetensors")).items():
                parameters[name].copy_(tensor)
        log(f"resuming {output} from step {start_step} of {total_steps}")

    groups = [{"params": [parameters[n] for n in main_names], "lr": config.lr,
               "base_lr": config.lr}]
    if encoder_names:
        groups.append({"params": [parameters[n] for n in encoder_names],
                       "lr": config.image_encoder_lr, "base_lr": config.image_encoder_lr})
    optimizer = torch.optim.AdamW(groups, betas=config.betas, weight_decay=config.weight_decay)
    if start_step:
        optimizer.load_state_dict(torch.load(resume_dir / "optimizer.pt", weights_only=True))

    if config.gradient_checkpointing:
        _set_checkpointing(module.lm, True)
    module.train()
    for submodule in module.modules():
        # BatchNorm statistics are buffers, not trained parameters, and batch 8 is too small
        # to re-estimate them: keep the checkpoint's, so the saved weights say it all.
        if isinstance(submodule, torch.nn.modules.batchnorm._BatchNorm):
            submodule.eval()
    encoded = [encode_example(ex, view, config.mask_prompt) for ex in examples]
    model, optimizer = accelerator.prepare(caption_loss_module(view), optimizer)
    if start_step and accelerator.scaler is not None and (resume_dir / "scaler.pt").is_file():
        accelerator.scaler.load_state_dict(torch.load(resume_dir / "scaler.pt",
                                                      weights_only=True))
    trainable = [parameters[n] for n in main_names + encoder_names]
    slots = world * accumulation
    stop_step = min(total_steps, config.max_steps or total_steps)
    save_every = config.save_every or steps_per_epoch
    log_path = output / LOSS_LOG
    records = _read_loss_log(log_path, start_step)
    if accelerator.is_main_process:
        output.mkdir(parents=True, exist_ok=True)
        log_path.write_text("".join(json.dumps(r) + "\n" for r in records))
    accelerator.wait_for_everyone()

    batches: list[list[int]] = []
    for step in range(start_step, stop_step):
        epoch, index = divmod(step, steps_per_epoch)
        if index == 0 or not batches:
            batches = epoch_batches(len(examples), config.batch_size, config.seed, epoch)
        batch = batches[index]
        n_tokens = sum(encoded[i].n_label_tokens for i in batch)
        for group in optimizer.param_groups:
            group["lr"] = group["base_lr"] * lr_factor(step, warmup, config.warmup_schedule)
        loss_sum = torch.zeros((), device=accelerator.device)
        grad_norm = float("nan")
        for micro_index in range(accumulation):
            slot = micro_index * world + accelerator.process_index
            members = batch[slot::slots]
            # A process with nothing in this slot still runs a zero-weighted forward, so
            # every process takes part in each gradient all-reduce.
            weight = 1.0 if members else 0.0
            members = members or batch[:1]
            with accelerator.accumulate(model):
                token_loss = model([encoded[i] for i in members],
                                   [derive_seed(config.seed, "dropout", step, i) for i in members])
                # DDP averages over processes and accelerate divides by the accumulation:
                # undo both, so the gradient is that of the mean over the batch's tokens.
                accelerator.backward(token_loss * (weight * slots / n_tokens))
                if accelerator.sync_gradients:
                    grad_norm = float(accelerator.clip_grad_norm_(trainable, config.grad_clip))
                optimizer.step()
                optimizer.zero_grad()
            loss_sum += token_loss.detach() * weight
        step_loss = float(accelerator.reduce(loss_sum, reduction="sum")) / n_tokens
        record = {"step": step + 1, "epoch": epoch + 1, "loss": step_loss,
                  "lr": optimizer.param_groups[0]["lr"], "grad_norm": grad_norm,
                  "examples": len(batch), "tokens": n_tokens,
                  "end_of_epoch": index == steps_per_epoch - 1,
                  "skipped": bool(accelerator.optimizer_step_was_skipped)}
        records.append(record)
        if accelerator.is_main_process:
            with open(log_path, "a") as handle:
                handle.write(json.dumps(record) + "\n")
            log(f"step {step + 1}/{total_steps} epoch {epoch + 1} loss {step_loss:.4f}")
        done = step + 1
        if done < total_steps and (done % save_every == 0 or done == stop_step):
            if accelerator.is_main_process:
                shutil.rmtree(staging, ignore_errors=True)
                staging.mkdir()
                save_file({n: parameters[n].detach().cpu().contiguous()
                           for n in main_names + encoder_names},
                          str(staging / "trained.safetensors"))
                torch.save(optimizer.state_dict(), staging / "optimizer.pt")
                if accelerator.scaler is not None:
                    torch.save(accelerator.scaler.state_dict(), staging / "scaler.pt")
                finetuned.write_json_atomic(staging / "progress.json", {"step": done, **identity})
                shutil.rmtree(resume_dir, ignore_errors=True)
                staging.replace(resume_dir)
            accelerator.wait_for_everyone()

    finished = stop_step == total_steps
    if accelerator.is_main_process and records:
        _loss_plot(records, output / LOSS_PLOT)
    if finished and accelerator.is_main_process:
        finetuned.save_trained(output, module, main_names + encoder_names, {
            **(manifest or {}), **identity,
            "variant": (manifest or {}).get("variant") or f"finetuned-{output.resolve().name}",
            "config": asdict(config), "steps": total_steps, "epochs": config.epochs,
            "steps_per_epoch": steps_per_epoch, "warmup_steps": warmup,
            "num_processes": world, "accumulation_steps": accumulation,
            "examples": {"count": len(examples), "ids": [ex.example_id for ex in examples]},
            "caption": "prompt parts, then caption_delimiter + ideal answer + EOS",
            "final_loss": records[-1]["loss"] if records else None,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "versions": _versions()})
        shutil.rmtree(resume_dir, ignore_errors=True)
    accelerator.wait_for_everyone()
    if config.gradient_checkpointing:
        _set_checkpointing(module.lm, False)
    module.eval()
    return FinetuneResult(output, stop_step, total_steps, finished,
                          tuple(r["loss"] for r in records))


def _set_checkpointing(lm: Any, enabled: bool) -> None:
    """The LM's own activation checkpointing, non-reentrant: the adapters inside the blocks
    train while the blocks' own weights do not."""
    if hasattr(lm, "activation_checkpointing_enable"):  # transformers >= 5.x
        if enabled:
            lm.activation_checkpointing_enable({"use_reentrant": False})
        else:
            lm.activation_checkpointing_disable()
    elif enabled:
        lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    else:
        lm.gradient_checkpointing_disable()


def _versions() -> dict[str, str]:
    from importlib import metadata

    versions = {}
    for package in ("torch", "transformers", "accelerate", "safetensors"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return versions


# --------------------------------------------------------------------------- command line


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


def _parse_model_args(text: str) -> dict[str, Any]:
    try:
        from harness.commands.cli import parse_key_values
    except ImportError:  # pragma: no cover - the CLI module lands with the core runner
        return dict(item.split("=", 1) for item in text.split(",") if item.strip())
    return parse_key_values(text, "--model-args")


def _task_examples(name: str, include_paths: Sequence[str],
                   limit: int | None) -> list[TrainingExample]:
    from harness.run.evaluate import resolve_tasks

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

    model_args = _parse_model_args(args.model_args)
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
    """``python -m harness.finetune.train`` / ``accelerate launch -m harness.finetune.train``."""
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
