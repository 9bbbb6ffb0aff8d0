"""MAGMA as torch modules: GPT-J with bottleneck adapters, fed by a CLIP ResNet image prefix.

Reads top to bottom like a transformers modeling file, so it can be checked against the MAGMA
paper (Eichenberg et al. 2021) and CLIP's ModifiedResNet in one sitting:

1. ``ModifiedResNet``: CLIP's ResNet (three-conv stem, anti-aliased strided Bottlenecks with
   BatchNorm) *without* its attention pool: it returns the final feature map.
2. ``ImagePrefix``: feature map (B, C, h, w) -> h*w tokens -> Linear(C -> hidden) -> Dropout ->
   LayerNorm: the image's "prefix" embeddings.
3. ``BottleneckAdapter``: y + W2 ReLU(W1 y), placed after each block's MLP (MAGMA v1 "normal"
   adapter), wrapped as ``nn.Sequential(mlp, adapter)`` exactly as the original does.
4. ``MagmaForCausalLM``: transformers' ``GPTJForCausalLM`` whose input embedding has
   ``vocab_rows`` (GPT-2 + ``<|image|>``) while the untied ``lm_head`` keeps GPT-J's 50400 rows.

Parameter names are stable (the finetuning code selects adapters by the substring "adapter").
This module builds modules only: no file reading, tokenisation or sampling here.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import cast

import torch
from torch import nn

from harness.models.magma.config import MagmaConfig

# --------------------------------------------------------------------------- image encoder


class Bottleneck(nn.Module):
    """CLIP's ResNet block: strides by average pooling before the 1x1 expansion."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.avgpool = nn.AvgPool2d(stride) if stride > 1 else nn.Identity()
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module | None = None
        if stride > 1 or inplanes != planes * self.expansion:
            # "-1" is the pooling, so the checkpoint's downsample.0 / downsample.1 line up
            self.downsample = nn.Sequential(OrderedDict([
                ("-1", nn.AvgPool2d(stride)),
                ("0", nn.Conv2d(inplanes, planes * self.expansion, 1, bias=False)),
                ("1", nn.BatchNorm2d(planes * self.expansion)),
            ]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(self.avgpool(out)))
        return self.relu(out + identity)


class ModifiedResNet(nn.Module):
    """CLIP's image ResNet up to (not including) its attention pool."""

    def __init__(self, layers: tuple[int, int, int, int], width: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, width // 2, 3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width // 2)
        self.conv2 = nn.Conv2d(width // 2, width // 2, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width // 2)
        self.conv3 = nn.Conv2d(width // 2, width, 3, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(width)
        self.avgpool = nn.AvgPool2d(2)
        self.relu = nn.ReLU(inplace=True)
        self._inplanes = width
        self.layer1 = self._make_layer(width, layers[0])
        self.layer2 = self._make_layer(width * 2, layers[1], stride=2)
        self.layer3 = self._make_layer(width * 4, layers[2], stride=2)
        self.layer4 = self._make_layer(width * 8, layers[3], stride=2)

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        stage = [Bottleneck(self._inplanes, planes, stride)]
        self._inplanes = planes * Bottleneck.expansion
        stage += [Bottleneck(self._inplanes, planes) for _ in range(blocks - 1)]
        return nn.Sequential(*stage)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels.to(self.conv1.weight.dtype)
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.avgpool(self.relu(self.bn3(self.conv3(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


class ImagePrefix(nn.Module):
    """Pixels (B, 3, S, S) -> prefix embeddings (B, (S/32)^2, hidden)."""

    def __init__(self, config: MagmaConfig) -> None:
        super().__init__()
        self.enc = ModifiedResNet(config.encoder_layers, config.encoder_width)
        self.proj = nn.Linear(config.encoder_out_dim, config.hidden_size)
        self.dropout = nn.Dropout(config.image_dropout)
        self.ln = nn.LayerNorm(config.hidden_size)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        features = self.enc(pixels)  # (B, C, h, w)
        tokens = features.flatten(2).transpose(1, 2)  # (B, h*w, C), row-major like the original
        return self.ln(self.dropout(self.proj(tokens)))


# --------------------------------------------------------------------------- adapters


class BottleneckAdapter(nn.Module):
    """Residual bottleneck: x + up(ReLU(down(x))). Named ``adapter.0`` / ``adapter.2``."""

    def __init__(self, dim: int, bottleneck: int) -> None:
        super().__init__()
        self.adapter = nn.Sequential(nn.Linear(dim, bottleneck), nn.ReLU(), nn.Linear(bottleneck, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.adapter(x) + x


# --------------------------------------------------------------------------- the whole model


def gptj_config(config: MagmaConfig):  # -> transformers.GPTJConfig
    """The transformers config of MAGMA's language model."""
    from transformers import GPTJConfig

    return GPTJConfig(
        vocab_size=config.lm_head_rows, n_positions=config.max_positions, n_embd=config.hidden_size,
        n_layer=config.n_layer, n_head=config.n_head, rotary_dim=config.rotary_dim,
        n_inner=config.n_inner, activation_function="gelu_new", layer_norm_epsilon=config.layer_norm_eps,
        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, tie_word_embeddings=False,
        bos_token_id=None, eos_token_id=None,
    )


class MagmaForCausalLM(nn.Module):
    """GPT-J + adapters + image prefix. ``lm`` is a transformers ``GPTJForCausalLM``."""

    def __init__(self, config: MagmaConfig) -> None:
        super().__init__()
        from transformers import GPTJForCausalLM

        self.config = config
        self.lm = GPTJForCausalLM(gptj_config(config))
        # MAGMA resized only the input side to GPT-2 + <|image|>; lm_head keeps its 50400 rows
        # (calling resize_token_embeddings would shrink lm_head as well).
        self.lm.transformer.wte = nn.Embedding(config.vocab_rows, config.hidden_size)
        if config.adapter_bottleneck:
            for block in self.lm.transformer.h:
                mlp = cast(nn.Module, block.mlp)
                block.mlp = nn.Sequential(mlp, BottleneckAdapter(config.hidden_size, config.adapter_bottleneck))
        self.image_prefix = ImagePrefix(config)

    @property
    def word_embedding(self) -> nn.Embedding:
        return self.lm.transformer.wte

    def embed_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """Prefix embeddings of preprocessed images, in the language model's dtype."""
        prefix = self.image_prefix(pixels)
        return prefix.to(self.word_embedding.weight.dtype)

    def embed_tokens(self, token_ids: torch.Tensor) -> torch.Tensor:
        return self.word_embedding(token_ids.to(self.word_embedding.weight.device))

    def forward(self, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor | None = None,
                position_ids: torch.Tensor | None = None, cache=None, use_cache: bool = False,
                labels: torch.Tensor | None = None, logits_to_keep: int = 0):
        """Run the language model on already-embedded inputs (text and image prefixes)."""
        # transformers renamed ``past_key_values`` to ``cache`` (5.2x); accept either release.
        cache_kwarg = "cache" if "cache" in _forward_parameters(self.lm) else "past_key_values"
        return self.lm(inputs_embeds=inputs_embeds, attention_mask=attention_mask,
                       position_ids=position_ids, use_cache=use_cache, labels=labels,
                       logits_to_keep=logits_to_keep, **{cache_kwarg: cache})

    def reset_rotary_table(self) -> None:
        """Recompute GPT-J's sin/cos table: it is a non-persistent buffer, so a model built on
        the meta device and filled from a state dict has none."""
        from transformers.models.gptj.modeling_gptj import create_sinusoidal_positions

        # Newer transformers keep one table in ``transformer.rotary_emb``; older ones keep one
        # per attention layer. Refill every module that holds one.
        holders = [m for m in self.lm.modules() if hasattr(m, "embed_positions")
                   and hasattr(m, "pos_embd_dim")]
        if not holders:
            raise RuntimeError("no GPT-J rotary table found in this transformers release")
        for holder in holders:
            device = cast(torch.Tensor, holder.embed_positions).device
            if device.type == "meta":
                device = self.word_embedding.weight.device
            table = create_sinusoidal_positions(int(cast(int, holder.max_positions)),
                                                int(cast(int, holder.pos_embd_dim)))
            holder.register_buffer("embed_positions", table.to(device), persistent=False)


def _forward_parameters(module: nn.Module) -> frozenset[str]:
    import inspect

    return frozenset(inspect.signature(module.forward).parameters)


def output_cache(output):
    """The key/value cache of a language-model output, under either name transformers used."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else getattr(output, "past_key_values", None)
