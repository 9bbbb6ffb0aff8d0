"""MAGMA's sizes, read from a checkpoint's tensor shapes.

The original code hard-codes GPT-J 6B + CLIP RN50x16 in a YAML file; we read every size that a
tensor's shape determines from the state dict itself, so one loader serves the real checkpoint
and the tiny twin. Sizes no shape reveals (heads, rotary width, image size) come from an
optional ``magma_config`` entry beside ``module`` in the file, or default to MAGMA v1's.

This module must not import torch at import time or build any module.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any

from harness.errors import BenchError

#: The embedding that every MAGMA checkpoint holds; its absence means "not a MAGMA file".
WTE_KEY = "lm.transformer.wte.weight"


@dataclass(frozen=True)
class MagmaConfig:
    """Architecture of one MAGMA model. Defaults are MAGMA v1 (GPT-J 6B + CLIP RN50x16)."""

    # language model (GPT-J)
    n_layer: int = 28
    hidden_size: int = 4096
    n_head: int = 16
    rotary_dim: int = 64
    n_inner: int = 16384
    vocab_rows: int = 50258  # input embedding rows: GPT-2 + <|image|>
    lm_head_rows: int = 50400  # output rows: GPT-J's padded vocabulary
    max_positions: int = 2048
    layer_norm_eps: float = 1e-5
    # adapters after each MLP (0 = none)
    adapter_bottleneck: int = 1024
    # image encoder (CLIP ModifiedResNet without attention pool)
    encoder_width: int = 96
    encoder_layers: tuple[int, int, int, int] = (6, 8, 18, 8)
    image_size: int = 384
    image_dropout: float = 0.1

    @property
    def encoder_out_dim(self) -> int:
        return self.encoder_width * 32  # 4 stages double the width, then Bottleneck expands x4

    @property
    def image_tokens(self) -> int:
        side = self.image_size // 32  # stem /4, then three stride-2 stages
        return side * side

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["encoder_layers"] = list(self.encoder_layers)
        return out

    def validate(self) -> None:
        """Raise BenchError when sizes cannot make a working model."""
        if self.hidden_size % self.n_head:
            raise BenchError(f"hidden size {self.hidden_size} is not divisible by {self.n_head} heads; "
                             "pass the right count with --model-args num_heads=N")
        head_dim = self.hidden_size // self.n_head
        if self.rotary_dim > head_dim or self.rotary_dim % 2:
            raise BenchError(f"rotary_dim {self.rotary_dim} does not fit head size {head_dim}; "
                             "pass --model-args rotary_dim=N (even, at most the head size)")
        if self.image_size % 32:
            raise BenchError(f"image_size {self.image_size} is not a multiple of 32")


#: Sizes that no tensor shape reveals; they may be stored beside "module" or passed as args.
NON_SHAPE_FIELDS = ("n_head", "rotary_dim", "image_size", "layer_norm_eps", "image_dropout",
                    "max_positions")


def _shape(state: Mapping[str, Any], key: str) -> tuple[int, ...]:
    tensor = state.get(key)
    if tensor is None:
        raise KeyError(key)
    return tuple(tensor.shape)


def _count(state: Mapping[str, Any], pattern: str) -> int:
    regex = re.compile(pattern)
    indices = {int(m.group(1)) for key in state if (m := regex.match(key))}
    if indices and indices != set(range(len(indices))):
        raise BenchError(f"checkpoint has gaps in {pattern!r}: found indices {sorted(indices)}")
    return len(indices)


def infer_config(state: Mapping[str, Any], stored: Mapping[str, Any] | None = None,
                 overrides: Mapping[str, Any] | None = None) -> MagmaConfig:
    """Read a MagmaConfig from a MAGMA state dict's shapes.

    Args:
        state: the checkpoint's state dict (original key names).
        stored: the optional ``magma_config`` mapping saved beside ``module``.
        overrides: user arguments (``num_heads``, ``rotary_dim``, ``image_size``...), which win.
    """
    try:
        vocab_rows, hidden = _shape(state, WTE_KEY)
        lm_head_rows = _shape(state, "lm.lm_head.weight")[0]
        n_inner = _shape(state, "lm.transformer.h.0.mlp.0.c_fc.weight")[0]
        width = _shape(state, "image_prefix.enc.conv3.weight")[0]
        proj_in = _shape(state, "image_prefix.proj.weight")[1]
    except KeyError as missing:
        raise BenchError(f"not a MAGMA checkpoint: it has no tensor {missing}; "
                         "pass the model.pt of Aleph-Alpha/magma-research") from None
    n_layer = _count(state, r"lm\.transformer\.h\.(\d+)\.ln_1\.weight$")
    adapter_key = "lm.transformer.h.0.mlp.1.adapter.0.weight"
    bottleneck = _shape(state, adapter_key)[0] if adapter_key in state else 0
    stages = tuple(_count(state, rf"image_prefix\.enc\.layer{k}\.(\d+)\.conv1\.weight$")
                   for k in range(1, 5))
    if proj_in != width * 32 or 0 in stages:
        raise BenchError(f"image encoder shapes do not match a CLIP ModifiedResNet (width {width}, "
                         f"stages {stages}, projection input {proj_in}); is this a MAGMA v1 file?")
    values: dict[str, Any] = dict(
        n_layer=n_layer, hidden_size=hidden, n_inner=n_inner, vocab_rows=vocab_rows,
        lm_head_rows=lm_head_rows, adapter_bottleneck=bottleneck, encoder_width=width,
        encoder_layers=stages,
    )
    bias_key = "lm.transformer.h.0.attn.attention.bias"
    if bias_key in state:  # the causal-mask buffer is max_positions square
        values["max_positions"] = _shape(state, bias_key)[-1]
    allowed = {f.name for f in fields(MagmaConfig)}
    for source in (stored or {}), (overrides or {}):
        for key, value in source.items():
            if value is None:
                continue
            if key not in NON_SHAPE_FIELDS or key not in allowed:
                raise BenchError(f"cannot set '{key}' for MAGMA: only {', '.join(NON_SHAPE_FIELDS)} "
                                 "are not read from the checkpoint's shapes")
            values[key] = type(getattr(MagmaConfig, key))(value)
    config = MagmaConfig(**values)
    config.validate()
    return config
