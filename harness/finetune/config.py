"""A finetune run's settings and the schedule they imply: which examples each optimizer step
sees, at what share of the learning rate.

Nothing here touches a model; ``harness.finetune.train`` runs the loop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields

from harness.hashing import derive_seed, stable_hash


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
        return stable_hash({f.name: getattr(self, f.name) for f in fields(self)
                            if f.metadata.get("result", True)})


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
