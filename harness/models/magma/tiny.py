"""magma-tiny: a MAGMA with random weights, in the original file format, built offline.

It keeps every structural feature of MAGMA v1 (ModifiedResNet stages with BatchNorm and
pooled downsampling, image prefix proj/dropout/LayerNorm, GPT-J with interleaved rotary and
parallel attention/MLP, bottleneck adapters, a separate ``lm_head`` with bias and extra rows)
at sizes that run in milliseconds. Its file has what the real ``model.pt`` has: the
``{"module": ...}`` wrapper, original key names, the duplicate ``word_embedding.*`` and
``transformer.{i}.*`` keys (sharing storage, as the original's do) and attention buffers.
Its tokenizer is a byte-level BPE trained here on a fixed text, with ``<|endoftext|>`` and
``<|image|>`` as the last two ids (as in GPT-2 + MAGMA).

The weights are random: magma-tiny checks the pipeline, never a result. Built twins are cached
under the user cache dir, keyed by seed and ``TINY_VERSION``. Nothing here loads a model.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from harness.models.magma.checkpoint import IMAGE_TOKEN, map_key
from harness.models.magma.config import MagmaConfig

#: Bump when the builder changes, so cached twins are rebuilt.
TINY_VERSION = 1

TINY_CONFIG = MagmaConfig(
    n_layer=2, hidden_size=64, n_head=4, rotary_dim=8, n_inner=256, vocab_rows=0, lm_head_rows=0,
    max_positions=512, adapter_bottleneck=16, encoder_width=16, encoder_layers=(1, 2, 1, 1),
    image_size=96,
)
#: MAGMA's lm_head has 50400 - 50258 = 142 rows that no token embeds; the twin keeps as many.
EXTRA_HEAD_ROWS = 142

_CORPUS = """\
Q: Do I help her cross the street? A: Yes, helping an old lady is kind.
Q: Should I take the wallet I found? A: No, return it to its owner.
Q: Is it fine to push someone in the queue? A: No, wait for your turn and be patient.
Q: Do I share my food with a hungry child? A: Yes, sharing food is good and generous.
Q: Should I lie to my friend about the accident? A: No, tell the truth even when it is hard.
Q: Is it right to feed the stray dog? A: Yes, caring for animals is a good thing to do.
A picture of a man standing in front of a burning house. The woman holds a baby in the rain.
Two children play football in a park while their parents watch from a bench under a tree.
"""


def train_tokenizer(directory: Path, vocab_size: int = 510) -> Any:
    """Train a GPT-2 style byte-level BPE on a fixed text and save it as a HF tokenizer folder."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(_CORPUS.splitlines() * 4, trainer=trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, model_max_length=TINY_CONFIG.max_positions)
    tok.add_special_tokens({"eos_token": "<|endoftext|>", "bos_token": "<|endoftext|>",
                            "unk_token": "<|endoftext|>"})
    tok.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]})
    tok.save_pretrained(directory)
    return tok


def random_state_dict(config: MagmaConfig, seed: int, dtype: torch.dtype = torch.float32,
                      device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
    """Deterministic random weights for ``config`` under our parameter names (per device)."""
    from harness.models.magma.modeling import MagmaForCausalLM

    with torch.device("meta"):
        skeleton = MagmaForCausalLM(config)
    generator = torch.Generator(device=device).manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    for name, meta in skeleton.state_dict().items():
        state[name] = _random_like(name, meta, generator, dtype)
    return state


def _random_like(name: str, meta: torch.Tensor, generator: torch.Generator, dtype: torch.dtype
                 ) -> torch.Tensor:
    shape = tuple(meta.shape)
    if name.endswith("num_batches_tracked"):
        return torch.zeros((), dtype=torch.long, device=generator.device)
    noise = torch.randn(shape, generator=generator, device=generator.device)
    if name.endswith("running_var"):
        return (1.0 + 0.1 * noise.abs()).to(dtype)
    if name.endswith("running_mean") or ".bn" in name and name.endswith("bias"):
        return (0.05 * noise).to(dtype)
    if ".bn" in name or "downsample.1" in name or ".ln" in name:  # norm weights near one
        return (1.0 + 0.05 * noise).to(dtype) if name.endswith("weight") else (0.05 * noise).to(dtype)
    if name.endswith("bias"):
        return (0.02 * noise).to(dtype)
    fan_in = math.prod(shape[1:]) if len(shape) > 1 else shape[0]
    scale = 1.0 / math.sqrt(fan_in) if len(shape) > 2 or "conv" in name else 0.02 * 4
    return (scale * noise).to(dtype)


def to_original_format(state: Mapping[str, torch.Tensor], config: MagmaConfig
                       ) -> dict[str, torch.Tensor]:
    """Our state dict -> the original ``model.pt`` keys, duplicates and buffers included."""
    reverse = _reverse_names(state)
    original: dict[str, torch.Tensor] = {reverse[name]: tensor for name, tensor in state.items()}
    original["word_embedding.weight"] = original["lm.transformer.wte.weight"]  # same storage
    positions, head_dim = config.max_positions, config.hidden_size // config.n_head
    causal = torch.tril(torch.ones(positions, positions, dtype=torch.bool)).view(1, 1, positions, positions)
    inv_freq = 1.0 / (10000 ** (torch.arange(0, config.rotary_dim, 2).float() / config.rotary_dim))
    angles = torch.outer(torch.arange(positions).float(), inv_freq)
    dtype = state["lm.transformer.wte.weight"].dtype
    buffers = {"bias": causal, "masked_bias": torch.tensor(-1e9),
               "scale_attn": torch.tensor(math.sqrt(head_dim), dtype=dtype),
               "sin": angles.sin().to(dtype), "cos": angles.cos().to(dtype)}
    for i in range(config.n_layer):
        for buffer, tensor in buffers.items():
            original[f"lm.transformer.h.{i}.attn.attention.{buffer}"] = tensor
    for key in [k for k in original if k.startswith("lm.transformer.h.")]:
        layer_key = key[len("lm.transformer.h."):]
        original[f"transformer.{layer_key}"] = original[key]  # Magma.transformer aliases lm.transformer.h
    return original


def _reverse_names(state: Mapping[str, torch.Tensor]) -> dict[str, str]:
    originals = {}
    for name in state:
        candidate = (name.replace(".attn.q_proj", ".attn.attention.q_proj")
                     .replace(".attn.k_proj", ".attn.attention.k_proj")
                     .replace(".attn.v_proj", ".attn.attention.v_proj")
                     .replace(".attn.out_proj", ".attn.attention.out_proj")
                     .replace(".mlp.0.fc_in.", ".mlp.0.c_fc.").replace(".mlp.0.fc_out.", ".mlp.0.c_proj."))
        if map_key(candidate) != name:
            raise AssertionError(f"name mapping is not invertible for {name}")
        originals[name] = candidate
    return originals


def write_checkpoint(state: Mapping[str, torch.Tensor], config: MagmaConfig, path: Path,
                     store_config: bool = True) -> None:
    """Save ``state`` (our names) as an original-format MAGMA ``model.pt`` at ``path``."""
    payload: dict[str, Any] = {"module": to_original_format(state, config)}
    if store_config:  # sizes no shape reveals; the real file has none and uses the defaults
        payload["magma_config"] = {"n_head": config.n_head, "rotary_dim": config.rotary_dim,
                                   "image_size": config.image_size}
    torch.save(payload, path)


def cache_root() -> Path:
    from harness.paths import user_cache_dir

    return user_cache_dir()


def build_tiny(directory: Path, seed: int = 0) -> tuple[Path, Path]:
    """Write ``model.pt`` and ``tokenizer/`` for the tiny twin of ``seed`` into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    tok = train_tokenizer(directory / "tokenizer")
    config = replace(TINY_CONFIG, vocab_rows=len(tok), lm_head_rows=len(tok) + EXTRA_HEAD_ROWS)
    write_checkpoint(random_state_dict(config, seed), config, directory / "model.pt")
    return directory / "model.pt", directory / "tokenizer"


def ensure_tiny(seed: int = 0, root: Path | None = None) -> tuple[Path, Path]:
    """The cached tiny twin for ``seed``, built (under a file lock) the first time."""
    from filelock import FileLock

    root = root or cache_root()
    final = root / f"magma-tiny-v{TINY_VERSION}-seed{seed}"
    root.mkdir(parents=True, exist_ok=True)
    with FileLock(str(final) + ".lock"):
        if not (final / "model.pt").is_file():
            staging = Path(tempfile.mkdtemp(prefix=final.name + ".", dir=root))
            try:
                build_tiny(staging, seed)
                if final.exists():
                    shutil.rmtree(final)
                staging.rename(final)  # the folder appears complete or not at all
            finally:
                shutil.rmtree(staging, ignore_errors=True)
    return final / "model.pt", final / "tokenizer"
