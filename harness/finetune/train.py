"""MAGMA's own adapter finetuning on a task's aligned answers: the training loop.

One training example per task item (``harness.finetune.data``): the item's prompt parts and,
after them, the ideal answer. Cross-entropy runs on the caption tokens only (image positions
are labelled -100), or on the answer only with ``mask_prompt``. What trains is what MAGMA
trained: the adapters, the image projection and its LayerNorm, optionally the image encoder
at its own learning rate; the language model is frozen explicitly. accelerate does the
plumbing (devices, DDP over ``accelerate launch`` processes, mixed precision, gradient
accumulation); gradient checkpointing is the language model's own. Resuming
(``harness.finetune.resume``) and the loss log (``harness.finetune.log``) sit beside the loop.

Every result depends only on the settings and the seed, not on the process count or the
micro-batch size (up to float rounding): the data order is seeded per epoch, the image
prefix's dropout mask per (step, example), and each optimizer step's loss is the mean over all
caption tokens of its whole batch. (This holds while the language model has no dropout of its
own, as MAGMA's has none.)

Output folder: ``trained.safetensors`` + ``finetune.json`` (see
``harness.models.magma.finetuned``), ``loss.jsonl`` (one line per optimizer step),
``loss.png``, and ``resume/`` while a run is unfinished.

This module must not evaluate anything, nor parse flags (``harness.commands.finetune`` does).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.errors import BenchError
from harness.finetune import resume
from harness.finetune.data import (
    IGNORE_INDEX,
    EncodedExample,
    TrainingExample,
    caption_delimiter,
    caption_loss_module,
    encode_example,
    examples_from_requests,
    examples_hash,
)
from harness.finetune.log import LOSS_PLOT, LossLog
from harness.hashing import derive_seed, stable_hash
from harness.models.base import FinetuneView

if TYPE_CHECKING:
    from torch import nn

__all__ = ["IGNORE_INDEX", "EncodedExample", "FinetuneConfig", "FinetuneView", "TrainingExample",
           "caption_delimiter", "encode_example", "examples_from_requests", "train"]


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

    from harness.models.magma import finetuned

    if not examples:
        raise BenchError("no training examples; check --task and --limit")
    if config.batch_size < 1 or config.epochs < 1:
        raise BenchError("--batch-size and --epochs must be at least 1")
    accelerator, accumulation = _accelerator(config)
    world = accelerator.num_processes
    module: Any = view.module  # MagmaForCausalLM-like: .lm and .image_prefix
    steps_per_epoch = math.ceil(len(examples) / config.batch_size)
    total_steps = config.epochs * steps_per_epoch
    warmup = warmup_steps(config, len(examples))
    identity = {"config_hash": config.result_hash(), "examples_hash": examples_hash(examples),
                "base_fingerprint": finetuned.base_fingerprint(module)}  # before anything trains
    steps = resume.finished_steps(output, identity)
    if steps is not None:
        log(f"{output}: already finished ({steps} steps); nothing to do")
        return FinetuneResult(output, steps, total_steps, True, ())

    main_names, encoder_names = select_trainable(module, config.train_image_encoder)
    parameters = _float32_masters(module, main_names, encoder_names, config, accelerator.device)
    if accelerator.is_main_process:
        resume.recover_staging(output)
    accelerator.wait_for_everyone()
    start_step = resume.load_state(output, identity, parameters, log, total_steps)
    optimizer = _optimizer(parameters, main_names, encoder_names, config)
    if start_step:
        resume.load_optimizer(output, optimizer)
    if config.gradient_checkpointing:
        _set_checkpointing(module.lm, True)
    _train_mode(module)
    encoded = [encode_example(ex, view, config.mask_prompt) for ex in examples]
    model, optimizer = accelerator.prepare(caption_loss_module(view), optimizer)
    if start_step:
        resume.load_scaler(output, accelerator.scaler)
    trained = {n: parameters[n] for n in main_names + encoder_names}
    slots = world * accumulation
    stop_step = min(total_steps, config.max_steps or total_steps)
    save_every = config.save_every or steps_per_epoch
    losses = LossLog(output, start_step, accelerator.is_main_process)
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
                    grad_norm = float(accelerator.clip_grad_norm_(list(trained.values()),
                                                                  config.grad_clip))
                optimizer.step()
                optimizer.zero_grad()
            loss_sum += token_loss.detach() * weight
        step_loss = float(accelerator.reduce(loss_sum, reduction="sum")) / n_tokens
        losses.add({"step": step + 1, "epoch": epoch + 1, "loss": step_loss,
                    "lr": optimizer.param_groups[0]["lr"], "grad_norm": grad_norm,
                    "examples": len(batch), "tokens": n_tokens,
                    "end_of_epoch": index == steps_per_epoch - 1,
                    "skipped": bool(accelerator.optimizer_step_was_skipped)})
        if accelerator.is_main_process:
            log(f"step {step + 1}/{total_steps} epoch {epoch + 1} loss {step_loss:.4f}")
        done = step + 1
        if done < total_steps and (done % save_every == 0 or done == stop_step):
            if accelerator.is_main_process:
                resume.save_state(output, done, identity, trained, optimizer, accelerator.scaler)
            accelerator.wait_for_everyone()

    finished = stop_step == total_steps
    losses.close(plot=output / LOSS_PLOT)
    if finished and accelerator.is_main_process:
        finetuned.save_trained(output, module, list(trained), {
            **(manifest or {}), **identity,
            "variant": (manifest or {}).get("variant") or f"finetuned-{output.resolve().name}",
            "config": asdict(config), "steps": total_steps, "epochs": config.epochs,
            "steps_per_epoch": steps_per_epoch, "warmup_steps": warmup,
            "num_processes": world, "accumulation_steps": accumulation,
            "examples": {"count": len(examples), "ids": [ex.example_id for ex in examples]},
            "caption": "prompt parts, then caption_delimiter + ideal answer + EOS",
            "final_loss": losses.records[-1]["loss"] if losses.records else None,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "versions": _versions()})
        resume.drop_state(output)
    accelerator.wait_for_everyone()
    if config.gradient_checkpointing:
        _set_checkpointing(module.lm, False)
    module.eval()
    return FinetuneResult(output, stop_step, total_steps, finished, losses.losses)


def _accelerator(config: FinetuneConfig) -> tuple[Any, int]:
    """The Accelerator, with the gradient accumulation that makes up ``config.batch_size``."""
    from accelerate import Accelerator

    # The Accelerator first: it reads the launcher's environment (ACCELERATE_USE_CPU too),
    # which a bare PartialState() would not, and would then pin a single-process state.
    accelerator = Accelerator(mixed_precision=config.mixed_precision)
    kind = accelerator.distributed_type.value
    if kind in ("DEEPSPEED", "FSDP", "XLA", "MEGATRON_LM"):
        # DeepSpeed / FSDP scale losses and shard parameters their own way; the per-token
        # loss normalisation in the loop assumes plain data parallelism.
        raise BenchError(f"finetune runs on one device or with data parallelism (DDP), not "
                         f"{kind}; launch with --multi_gpu or a single process")
    world = accelerator.num_processes
    micro = config.micro_batch_size or math.ceil(config.batch_size / world)
    accumulation = math.ceil(config.batch_size / (micro * world))
    accelerator.gradient_accumulation_steps = accumulation
    return accelerator, accumulation


def _float32_masters(module: Any, main_names: Sequence[str], encoder_names: Sequence[str],
                     config: FinetuneConfig, device: Any) -> dict[str, Any]:
    """The module on ``device`` with its trained parameters in float32 (AdamW's masters)."""
    import torch

    parameters = dict(module.named_parameters())
    low_precision = {parameters[n].dtype for n in parameters} - {torch.float32}
    if low_precision and config.mixed_precision == "no":
        raise BenchError(f"the model is loaded in {sorted(map(str, low_precision))}; pass "
                         "--mixed-precision bf16 (or fp16), or load it with dtype=float32")
    module.to(device)
    for name in [*main_names, *encoder_names]:
        parameters[name].data = parameters[name].data.float()
    if encoder_names:  # a BatchNorm's statistics must share its float32 weights' dtype
        for submodule in module.modules():
            if isinstance(submodule, torch.nn.modules.batchnorm._BatchNorm):
                submodule.float()
    return parameters


def _optimizer(parameters: dict[str, Any], main_names: Sequence[str],
               encoder_names: Sequence[str], config: FinetuneConfig) -> Any:
    import torch

    groups = [{"params": [parameters[n] for n in main_names], "lr": config.lr,
               "base_lr": config.lr}]
    if encoder_names:
        groups.append({"params": [parameters[n] for n in encoder_names],
                       "lr": config.image_encoder_lr, "base_lr": config.image_encoder_lr})
    return torch.optim.AdamW(groups, betas=config.betas, weight_decay=config.weight_decay)


def _train_mode(module: Any) -> None:
    import torch

    module.train()
    for submodule in module.modules():
        # BatchNorm statistics are buffers, not trained parameters, and batch 8 is too small
        # to re-estimate them: keep the checkpoint's, so the saved weights say it all.
        if isinstance(submodule, torch.nn.modules.batchnorm._BatchNorm):
            submodule.eval()


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
