"""Finetuned MAGMA weights on disk: what a finetune run saves, and how a base model takes them.

A finetune output folder holds only the parameters that were trained (``trained.safetensors``)
and a manifest (``finetune.json``: the base checkpoint's fingerprint, the training config and
the variant name). ``apply_finetuned`` loads them onto a freshly loaded base model and refuses
weights that were made for another base.

This module must not train anything and must not know about tasks or the CLI: the training
loop lives in ``harness.finetune.train``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness.errors import BenchError
from harness.files import temporary_beside, write_json_atomic
from harness.models.base import FinetuneView

MANIFEST_FILE = "finetune.json"
WEIGHTS_FILE = "trained.safetensors"
MANIFEST_SCHEMA = 1
#: Values sampled per tensor for the fingerprint: enough to tell checkpoints apart, cheap on 6B.
_SAMPLES_PER_TENSOR = 1024


@dataclass(frozen=True)
class FinetunedInfo:
    """What ``apply_finetuned`` tells the adapter about the weights it loaded."""

    variant: str
    directory: str
    weights_sha256: str
    parameter_names: tuple[str, ...]


def base_fingerprint(module: nn.Module) -> str:
    """A fingerprint of a model's weights that ignores the dtype it was loaded in.

    Hashes every state-dict entry's name and shape (parameters and persistent buffers such
    as BatchNorm statistics; not tables the code recomputes) and a strided sample of its values
    rounded to bfloat16, so the same checkpoint loaded in float16, bfloat16 or float32 gives
    the same fingerprint, and another checkpoint (or a model that was already finetuned) a
    different one. Call it on the base model *before* any training or loading of trained
    weights.
    """
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict(keep_vars=True).items()):
        if not tensor.is_floating_point():
            continue  # integer buffers (e.g. BatchNorm's batch counter) are not weights
        if tensor.device.type == "meta":
            raise BenchError(
                f"cannot fingerprint '{name}': it is offloaded (meta device); load the base "
                "model fully onto one device (e.g. --model-args device_map=cuda:0) to finetune "
                "or to load finetuned weights"
            )
        flat = tensor.detach().reshape(-1)
        count = flat.numel()
        if count > _SAMPLES_PER_TENSOR:
            # Integer positions computed on the CPU: the same on every device (a float
            # linspace over 67 M elements rounds differently on CPU and GPU).
            index = torch.arange(_SAMPLES_PER_TENSOR) * (count - 1) // (_SAMPLES_PER_TENSOR - 1)
            flat = flat[index.to(flat.device)]
        sample = flat.to(torch.bfloat16).to(torch.float32).cpu()
        digest.update(f"{name}:{tuple(tensor.shape)}:".encode())
        digest.update(sample.numpy().tobytes())
    return "w-" + digest.hexdigest()[:16]


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_trained(
    directory: Path,
    module: nn.Module,
    parameter_names: Iterable[str],
    manifest: Mapping[str, Any],
) -> Path:
    """Write the named parameters (float32 safetensors) and the manifest, each atomically.

    The weights file is written first and the manifest last: a folder with a manifest always
    has complete weights.
    """
    from safetensors.torch import save_file

    directory.mkdir(parents=True, exist_ok=True)
    parameters = dict(module.named_parameters())
    tensors = {name: parameters[name].detach().to(torch.float32).cpu().contiguous()
               for name in parameter_names}
    weights_path = directory / WEIGHTS_FILE
    temporary = temporary_beside(weights_path)
    try:
        save_file(tensors, str(temporary), metadata={"format": "pt"})
        with open(temporary, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, weights_path)
    finally:
        temporary.unlink(missing_ok=True)
    record = {"schema": MANIFEST_SCHEMA, **manifest,
              "weights_file": WEIGHTS_FILE, "weights_sha256": file_sha256(weights_path),
              "parameters": {name: list(tensor.shape) for name, tensor in tensors.items()}}
    write_json_atomic(directory / MANIFEST_FILE, record, sort_keys=True, default=str)
    return weights_path


def read_manifest(directory: Path) -> dict[str, Any]:
    """The manifest of a finetune output folder, or a BenchError saying what is wrong."""
    path = directory / MANIFEST_FILE
    if not directory.is_dir():
        raise BenchError(f"finetuned={directory}: no such folder; pass the --output folder of "
                         "a finished 'run_bench.py finetune' run")
    if not path.is_file():
        hint = (" (the run has not finished: rerun the same finetune command to resume it)"
                if (directory / "resume").is_dir() else "")
        raise BenchError(f"finetuned={directory}: no {MANIFEST_FILE} in it{hint}; pass the "
                         "--output folder of a finished 'run_bench.py finetune' run")
    try:
        manifest = json.loads(path.read_text())
    except json.JSONDecodeError:
        raise BenchError(f"{path}: not valid JSON; rerun the finetune command") from None
    if manifest.get("schema") != MANIFEST_SCHEMA:
        raise BenchError(f"{path}: schema {manifest.get('schema')!r}, this version reads "
                         f"{MANIFEST_SCHEMA}; rerun the finetune command")
    return manifest


def apply_finetuned(module: nn.Module, directory: str | Path) -> FinetunedInfo:
    """Load a finetune run's trained parameters into a freshly loaded base ``module``.

    Raises:
        BenchError: the folder is not a finished finetune run, its weights were trained on
            another base checkpoint, or they do not fit this model's parameters.
    """
    from safetensors.torch import load_file

    directory = Path(directory)
    manifest = read_manifest(directory)
    expected = manifest.get("base_fingerprint")
    actual = base_fingerprint(module)
    if expected != actual:
        raise BenchError(
            f"finetuned={directory}: these weights were trained on another base model "
            f"(fingerprint {expected}, base '{manifest.get('base_model')}' "
            f"{manifest.get('base_model_args', {})}), but the loaded base has fingerprint "
            f"{actual}; load the same base checkpoint that was finetuned"
        )
    weights_path = directory / str(manifest.get("weights_file", WEIGHTS_FILE))
    if not weights_path.is_file():
        raise BenchError(f"finetuned={directory}: {weights_path.name} is missing; rerun the "
                         "finetune command")
    weights_sha = file_sha256(weights_path)
    if weights_sha != manifest.get("weights_sha256"):
        raise BenchError(f"{weights_path}: does not match its manifest (changed or damaged "
                         "after the run); rerun the finetune command")
    trained = load_file(str(weights_path))
    parameters = dict(module.named_parameters())
    problems = [name for name in trained if name not in parameters]
    problems += [f"{name} {tuple(tensor.shape)} != {tuple(parameters[name].shape)}"
                 for name, tensor in trained.items()
                 if name in parameters and tensor.shape != parameters[name].shape]
    if problems:
        raise BenchError(f"{weights_path}: does not fit this model: {', '.join(problems[:5])}")
    with torch.no_grad():
        for name, tensor in trained.items():
            target = parameters[name]
            target.copy_(tensor.to(device=target.device, dtype=target.dtype))
    variant = str(manifest.get("variant") or f"finetuned-{directory.name}")
    return FinetunedInfo(variant=f"{variant}@{weights_sha[:8]}", directory=str(directory),
                         weights_sha256=weights_sha, parameter_names=tuple(sorted(trained)))


def magma_view(model: nn.Module, tokenizer: Any, image_pixels: Any) -> FinetuneView:
    """The ``FinetuneView`` of a loaded ``MagmaForCausalLM``.

    Text is tokenised as the adapter does for prompts: no BOS or EOS added.
    """
    def encode_text(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    return FinetuneView(module=model, encode_text=encode_text, image_pixels=image_pixels,
                        eos_token_id=int(tokenizer.eos_token_id))
