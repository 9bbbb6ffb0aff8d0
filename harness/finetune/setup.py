"""Getting MAGMA ready to train: which parameters train, their float32 masters, the optimizer,
the accelerator and the modes the modules train in.

What trains is what MAGMA trained: the adapters, the image projection and its LayerNorm,
optionally the image encoder at its own learning rate; the language model is frozen
explicitly. accelerate does the plumbing (devices, DDP over ``accelerate launch`` processes,
mixed precision, gradient accumulation). Nothing here runs a training step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from harness.errors import BenchError
from harness.finetune.config import FinetuneConfig

if TYPE_CHECKING:
    from torch import nn


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


def accelerator(config: FinetuneConfig) -> tuple[Any, int]:
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


def float32_masters(module: Any, main_names: Sequence[str], encoder_names: Sequence[str],
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


def optimizer(parameters: dict[str, Any], main_names: Sequence[str],
               encoder_names: Sequence[str], config: FinetuneConfig) -> Any:
    import torch

    groups = [{"params": [parameters[n] for n in main_names], "lr": config.lr,
               "base_lr": config.lr}]
    if encoder_names:
        groups.append({"params": [parameters[n] for n in encoder_names],
                       "lr": config.image_encoder_lr, "base_lr": config.image_encoder_lr})
    return torch.optim.AdamW(groups, betas=config.betas, weight_decay=config.weight_decay)


def train_mode(module: Any) -> None:
    import torch

    module.train()
    for submodule in module.modules():
        # BatchNorm statistics are buffers, not trained parameters, and batch 8 is too small
        # to re-estimate them: keep the checkpoint's, so the saved weights say it all.
        if isinstance(submodule, torch.nn.modules.batchnorm._BatchNorm):
            submodule.eval()


def set_checkpointing(lm: Any, enabled: bool) -> None:
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


def versions() -> dict[str, str]:
    from importlib import metadata

    versions = {}
    for package in ("torch", "transformers", "accelerate", "safetensors"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return versions
