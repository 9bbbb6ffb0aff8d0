"""Where MAGMA's weights go: the dtype to load in and a device per module, planned on the meta
model before any weight is read. This module reads no checkpoint.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch

from harness.errors import BenchError, unknown

if TYPE_CHECKING:
    from harness.models.magma.modeling import MagmaForCausalLM


def resolve_dtype(dtype: str, device_map: Any) -> torch.dtype:
    """``auto``: float16 on a GPU (MAGMA's own precision), float32 on the CPU."""
    names = {"float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
             "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float32": torch.float32, "fp32": torch.float32, "float": torch.float32}
    if dtype != "auto":
        if dtype not in names:
            raise unknown("dtype", dtype, [*names, "auto"])
        return names[dtype]
    if str(device_map) == "cpu" or not torch.cuda.is_available():
        return torch.float32
    return torch.float16


def place(tensor: torch.Tensor, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``tensor`` on ``device``; floating-point tensors also in ``dtype``."""
    if not tensor.is_floating_point():
        return tensor.to(device)
    return tensor.to(device=device, dtype=dtype)


def device_of(name: str, plan: Mapping[str, torch.device]) -> torch.device:
    """The device of the longest module prefix of ``name`` in ``plan`` ("" matches all)."""
    parts = name.split(".")
    for cut in range(len(parts), -1, -1):
        prefix = ".".join(parts[:cut])
        if prefix in plan:
            return plan[prefix]
    raise RuntimeError(f"device plan does not cover {name}")


def accelerate_device(device: torch.device) -> int | str:
    """A device as accelerate's device maps write it (a GPU index, else its name)."""
    return device.index if device.type == "cuda" and device.index is not None else str(device)


def plan_devices(model: MagmaForCausalLM, device_map: Any, dtype: torch.dtype) -> dict[str, torch.device]:
    """Module name -> device, decided on the meta model before any weight is read.

    ``cpu`` / ``cuda`` / ``cuda:N`` put everything on one device; ``auto`` / ``balanced`` spread
    the model over all GPUs (then CPU) with accelerate; a dict is an accelerate device map.
    """
    if device_map in ("auto", "balanced", "sequential") and not torch.cuda.is_available():
        device_map = "cpu"
    if isinstance(device_map, str) and device_map not in ("auto", "balanced", "sequential"):
        try:
            device = torch.device(device_map)
        except RuntimeError:
            raise BenchError(f"device_map {device_map!r} is not a device; use cpu, cuda, cuda:N, auto "
                             "or balanced") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise BenchError("device_map asks for CUDA but no GPU is visible; use device_map=cpu")
        return {"": device}
    if isinstance(device_map, str):
        from accelerate import infer_auto_device_map
        from accelerate.utils import get_balanced_memory

        no_split = ["GPTJBlock", "ImagePrefix"]
        max_memory = None
        if device_map != "sequential":
            max_memory = get_balanced_memory(model, dtype=dtype, no_split_module_classes=no_split,
                                             low_zero=False)
        device_map = infer_auto_device_map(model, max_memory=max_memory, dtype=dtype,
                                           no_split_module_classes=no_split)
    if "disk" in set(device_map.values()):
        raise BenchError("MAGMA does not fit in GPU and CPU memory here; use a machine with more memory")
    return {name: torch.device("cuda", d) if isinstance(d, int) else torch.device(d)
            for name, d in device_map.items()}
