"""MAGMA's own adapter finetuning on a task's aligned answers: the training loop.

One training example per task item (``harness.finetune.data``): the item's prompt parts and,
after them, the ideal answer. Cross-entropy runs on the caption tokens only (image positions
are labelled -100), or on the answer only with ``mask_prompt``. What trains and how it is
set up (accelerate, float32 masters, AdamW) is ``harness.finetune.setup``; the settings and
the schedule ``harness.finetune.config``. Resuming (``harness.finetune.resume``) and the loss
log (``harness.finetune.log``) sit beside the loop, not inside it.

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
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.errors import BenchError
from harness.finetune import resume, setup
from harness.finetune.config import FinetuneConfig, epoch_batches, lr_factor, warmup_steps
from harness.finetune.data import (
    EncodedExample,
    TrainingExample,
    caption_loss_module,
    encode_example,
    examples_hash,
)
from harness.finetune.log import LOSS_PLOT, LossLog
from harness.hashing import derive_seed
from harness.models.base import FinetuneView


@dataclass(frozen=True)
class FinetuneResult:
    """What ``train`` did: its output folder, steps run and whether the run is complete."""

    output: Path
    steps_done: int
    total_steps: int
    finished: bool
    losses: tuple[float, ...]


@dataclass
class _Run:
    """Everything the loop reads, set up once by ``_prepare``."""

    config: FinetuneConfig
    output: Path
    accelerator: Any
    accumulation: int
    module: Any
    model: Any  # the caption loss, wrapped by accelerate
    optimizer: Any
    trained: dict[str, Any]
    encoded: list[EncodedExample]
    identity: dict[str, str]
    steps_per_epoch: int
    total_steps: int
    warmup: int
    start_step: int
    stop_step: int
    losses: LossLog


def train(view: FinetuneView, examples: Sequence[TrainingExample], config: FinetuneConfig,
          output: Path, manifest: dict[str, Any] | None = None,
          log: Callable[[str], None] = print) -> FinetuneResult:
    """Finetune ``view.module`` in place on ``examples``; save to ``output``; resume if there.

    Works in one process or under ``accelerate launch`` (one DDP process per device): every
    process runs this with the same arguments and only the main process writes.
    """
    run = _prepare(view, examples, config, output, log)
    if isinstance(run, FinetuneResult):
        return run
    batches: list[list[int]] = []
    for step in range(run.start_step, run.stop_step):
        epoch, index = divmod(step, run.steps_per_epoch)
        if index == 0 or not batches:
            batches = epoch_batches(len(examples), config.batch_size, config.seed, epoch)
        batch = batches[index]
        for group in run.optimizer.param_groups:
            group["lr"] = group["base_lr"] * lr_factor(step, run.warmup, config.warmup_schedule)
        loss, n_tokens, grad_norm = _optimizer_step(run, step, batch)
        run.losses.add({"step": step + 1, "epoch": epoch + 1, "loss": loss,
                        "lr": run.optimizer.param_groups[0]["lr"], "grad_norm": grad_norm,
                        "examples": len(batch), "tokens": n_tokens,
                        "end_of_epoch": index == run.steps_per_epoch - 1,
                        "skipped": bool(run.accelerator.optimizer_step_was_skipped)})
        if run.accelerator.is_main_process:
            log(f"step {step + 1}/{run.total_steps} epoch {epoch + 1} loss {loss:.4f}")
        _checkpoint(run, step + 1)
    return _finish(run, examples, manifest)


def _optimizer_step(run: _Run, step: int, batch: Sequence[int]) -> tuple[float, int, float]:
    """One optimizer step over ``batch``, split into micro-batches across processes and
    accumulation: (the mean loss per caption token, the tokens, the gradient norm)."""
    import torch

    accelerator, config = run.accelerator, run.config
    world = accelerator.num_processes
    slots = world * run.accumulation
    n_tokens = sum(run.encoded[i].n_label_tokens for i in batch)
    loss_sum = torch.zeros((), device=accelerator.device)
    grad_norm = float("nan")
    for micro_index in range(run.accumulation):
        members = batch[micro_index * world + accelerator.process_index::slots]
        # A process with nothing in this slot still runs a zero-weighted forward, so
        # every process takes part in each gradient all-reduce.
        weight = 1.0 if members else 0.0
        members = members or batch[:1]
        with accelerator.accumulate(run.model):
            token_loss = run.model([run.encoded[i] for i in members],
                                   [derive_seed(config.seed, "dropout", step, i) for i in members])
            # DDP averages over processes and accelerate divides by the accumulation:
            # undo both, so the gradient is that of the mean over the batch's tokens.
            accelerator.backward(token_loss * (weight * slots / n_tokens))
            if accelerator.sync_gradients:
                grad_norm = float(accelerator.clip_grad_norm_(list(run.trained.values()),
                                                              config.grad_clip))
            run.optimizer.step()
            run.optimizer.zero_grad()
        loss_sum += token_loss.detach() * weight
    return float(accelerator.reduce(loss_sum, reduction="sum")) / n_tokens, n_tokens, grad_norm


def _prepare(view: FinetuneView, examples: Sequence[TrainingExample], config: FinetuneConfig,
             output: Path, log: Callable[[str], None]) -> _Run | FinetuneResult:
    """The run set up to start (or resume) its loop, or the result of a run already finished."""
    from harness.models.magma import finetuned

    if not examples:
        raise BenchError("no training examples; check --task and --limit")
    if config.batch_size < 1 or config.epochs < 1:
        raise BenchError("--batch-size and --epochs must be at least 1")
    accelerator, accumulation = setup.accelerator(config)
    module: Any = view.module  # MagmaForCausalLM-like: .lm and .image_prefix
    steps_per_epoch = math.ceil(len(examples) / config.batch_size)
    total_steps = config.epochs * steps_per_epoch
    identity = {"config_hash": config.result_hash(), "examples_hash": examples_hash(examples),
                "base_fingerprint": finetuned.base_fingerprint(module)}  # before anything trains
    steps = resume.finished_steps(output, identity)
    if steps is not None:
        log(f"{output}: already finished ({steps} steps); nothing to do")
        return FinetuneResult(output, steps, total_steps, True, ())

    main_names, encoder_names = setup.select_trainable(module, config.train_image_encoder)
    parameters = setup.float32_masters(module, main_names, encoder_names, config,
                                       accelerator.device)
    if accelerator.is_main_process:
        resume.recover_staging(output)
    accelerator.wait_for_everyone()
    start_step = resume.load_state(output, identity, parameters, log, total_steps)
    optimizer = setup.optimizer(parameters, main_names, encoder_names, config)
    if start_step:
        resume.load_optimizer(output, optimizer)
    if config.gradient_checkpointing:
        setup.set_checkpointing(module.lm, True)
    setup.train_mode(module)
    encoded = [encode_example(ex, view, config.mask_prompt) for ex in examples]
    model, optimizer = accelerator.prepare(caption_loss_module(view), optimizer)
    if start_step:
        resume.load_scaler(output, accelerator.scaler)
    losses = LossLog(output, start_step, accelerator.is_main_process)
    accelerator.wait_for_everyone()
    return _Run(config, output, accelerator, accumulation, module, model, optimizer,
                {n: parameters[n] for n in main_names + encoder_names}, encoded, identity,
                steps_per_epoch, total_steps, warmup_steps(config, len(examples)), start_step,
                min(total_steps, config.max_steps or total_steps), losses)


def _checkpoint(run: _Run, done: int) -> None:
    """Save the resume state every ``save_every`` steps (default: each epoch) and where the
    run stops early (``max_steps``); a finished run saves its weights instead."""
    save_every = run.config.save_every or run.steps_per_epoch
    if done < run.total_steps and (done % save_every == 0 or done == run.stop_step):
        if run.accelerator.is_main_process:
            resume.save_state(run.output, done, run.identity, run.trained, run.optimizer,
                              run.accelerator.scaler)
        run.accelerator.wait_for_everyone()


def _finish(run: _Run, examples: Sequence[TrainingExample],
            manifest: dict[str, Any] | None) -> FinetuneResult:
    """Close the loss log; when every step ran, save the trained weights and drop the resume
    state; put the module back in eval mode."""
    from harness.models.magma import finetuned

    config, output, accelerator = run.config, run.output, run.accelerator
    finished = run.stop_step == run.total_steps
    run.losses.close(plot=output / LOSS_PLOT)
    if finished and accelerator.is_main_process:
        finetuned.save_trained(output, run.module, list(run.trained), {
            **(manifest or {}), **run.identity,
            "variant": (manifest or {}).get("variant") or f"finetuned-{output.resolve().name}",
            "config": asdict(config), "steps": run.total_steps, "epochs": config.epochs,
            "steps_per_epoch": run.steps_per_epoch, "warmup_steps": run.warmup,
            "num_processes": accelerator.num_processes,
            "accumulation_steps": run.accumulation,
            "examples": {"count": len(examples), "ids": [ex.example_id for ex in examples]},
            "caption": "prompt parts, then caption_delimiter + ideal answer + EOS",
            "final_loss": run.losses.records[-1]["loss"] if run.losses.records else None,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "versions": setup.versions()})
        resume.drop_state(output)
    accelerator.wait_for_everyone()
    if config.gradient_checkpointing:
        setup.set_checkpointing(run.module.lm, False)
    run.module.eval()
    return FinetuneResult(output, run.stop_step, run.total_steps, finished, run.losses.losses)
