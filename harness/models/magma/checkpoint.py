"""Read an original MAGMA checkpoint into ``MagmaForCausalLM`` without a second copy.

The original ``Magma.from_checkpoint`` builds the model, loads the whole pickle beside it and
calls ``load_state_dict(strict=False)``, which silently drops any key that does not match.
Here every key of the file is either mapped onto a parameter, known to be ignorable
(duplicates and attention buffers), or reported in an error; every parameter must be filled.

Loading: ``torch.load(weights_only=True, mmap=True)`` -> build the model on the meta device ->
``load_state_dict(assign=True)`` so parameters *are* the file's memory-mapped tensors (no copy
when the dtype matches) -> dispatch with accelerate. Also resolves hub downloads and tokenizers.
This module does no tokenisation or sampling.
"""

from __future__ import annotations

import os
import pickle
import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from harness.errors import BenchError
from harness.models.magma.config import MagmaConfig, infer_config
from harness.models.magma.modeling import MagmaForCausalLM

IMAGE_TOKEN = "<|image|>"

# Original name -> ours. Only GPT-J's attention and MLP were renamed between the 2021 fork of
# transformers that MAGMA used and today's GPTJForCausalLM.
_RENAMES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"^(lm\.transformer\.h\.\d+\.attn)\.attention\.(q_proj|k_proj|v_proj|out_proj)\.weight$"),
     r"\1.\2.weight"),
    (re.compile(r"^(lm\.transformer\.h\.\d+\.mlp\.0)\.c_fc\.(weight|bias)$"), r"\1.fc_in.\2"),
    (re.compile(r"^(lm\.transformer\.h\.\d+\.mlp\.0)\.c_proj\.(weight|bias)$"), r"\1.fc_out.\2"),
)

# Keys the original file holds that carry nothing to load: ``word_embedding`` and
# ``transformer.{i}`` are the same tensors registered twice by ``Magma.__init__``; the attention
# buffers (causal mask, masked bias, scale, rotary sin/cos) are recomputed by transformers.
_IGNORABLE: tuple[re.Pattern[str], ...] = (
    re.compile(r"^word_embedding\.weight$"),
    re.compile(r"^transformer\.\d+\."),
    re.compile(r"^lm\.transformer\.h\.\d+\.attn\.attention\.(.+\.)?(bias|masked_bias|scale_attn|sin|cos)$"),
)


@dataclass(frozen=True)
class KeyMapping:
    """How each key of a checkpoint was accounted for."""

    mapped: dict[str, str]  # original -> ours
    ignored: tuple[str, ...]
    unexpected: tuple[str, ...]
    missing: tuple[str, ...]


def map_key(key: str) -> str:
    """Our parameter name for an original checkpoint key (identity when unchanged)."""
    for pattern, replacement in _RENAMES:
        if pattern.match(key):
            return pattern.sub(replacement, key)
    return key


def is_ignorable(key: str) -> bool:
    return any(pattern.search(key) for pattern in _IGNORABLE)


def account_for_keys(checkpoint_keys: list[str], model_keys: set[str]) -> KeyMapping:
    """Sort every checkpoint key into mapped / ignored / unexpected, and list missing ones."""
    mapped: dict[str, str] = {}
    ignored: list[str] = []
    unexpected: list[str] = []
    for key in checkpoint_keys:
        target = map_key(key)
        if target in model_keys:
            mapped[key] = target
        elif is_ignorable(key):
            ignored.append(key)
        else:
            unexpected.append(key)
    missing = sorted(model_keys - set(mapped.values()))
    return KeyMapping(mapped, tuple(ignored), tuple(unexpected), tuple(missing))


def _listing(keys: tuple[str, ...], limit: int = 6) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" and {len(keys) - limit} more" if len(keys) > limit else "")


def read_checkpoint(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Memory-map a MAGMA pickle. Returns (state dict with original keys, stored config)."""
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except FileNotFoundError:
        raise BenchError(f"checkpoint {path} does not exist; pass --model-args checkpoint=PATH") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as exc:
        reason = str(exc).splitlines()[0][:160]
        if "mmap" in reason or "zipfile" in reason.lower() and "legacy" in reason.lower():
            # torch says "legacy format" for anything that is not a zip, text files included;
            # only a pickle (protocol byte 0x80) is really a pre-1.6 checkpoint.
            with open(path, "rb") as handle:
                if handle.read(1) != b"\x80":
                    raise BenchError(f"{path} is not a torch checkpoint (neither a zip archive "
                                     "nor a pickle); pass MAGMA's model.pt") from None
            raise BenchError(f"{path} uses torch's pre-1.6 format, which cannot be memory-mapped; "
                             "re-save it with torch.save(torch.load(path), path)") from None
        raise BenchError(f"{path} is damaged or truncated ({reason}); download it again") from None
    except pickle.UnpicklingError as exc:
        if "Weights only load failed" not in str(exc):
            raise BenchError(f"{path} is not a torch checkpoint ({str(exc)[:120]}); pass MAGMA's model.pt") from None
        # e.g. a DeepSpeed file that also pickles its training arguments: never unpickle code
        raise BenchError(f"{path} holds Python objects besides tensors, which are not loaded for safety; "
                         "if you trust it, keep only its weights: python -c \"import torch; "
                         "torch.save({'module': torch.load('IN', weights_only=False)['module']}, 'OUT')\""
                         ) from None
    except Exception as exc:  # files that are not torch checkpoints at all
        raise BenchError(f"{path} is not a torch checkpoint ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0][:120] if str(exc) else ''}); pass MAGMA's model.pt") from None
    if not isinstance(raw, Mapping):
        raise BenchError(f"{path} holds a {type(raw).__name__}, not a state dict; pass MAGMA's model.pt")
    stored = raw.get("magma_config") if isinstance(raw.get("magma_config"), Mapping) else {}
    state = raw.get("module", raw)
    if not isinstance(state, Mapping):
        raise BenchError(f"{path}: 'module' is not a state dict; pass MAGMA's model.pt")
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    others = sorted(k for k in state if k not in tensors and k != "magma_config")
    if others:
        raise BenchError(f"{path}: entries that are not tensors: {_listing(tuple(others))}")
    return tensors, dict(stored or {})


def resolve_dtype(dtype: str, device_map: Any) -> torch.dtype:
    """``auto``: float16 on a GPU (MAGMA's own precision), float32 on the CPU."""
    names = {"float16": torch.float16, "fp16": torch.float16, "half": torch.float16,
             "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float32": torch.float32, "fp32": torch.float32, "float": torch.float32}
    if dtype != "auto":
        if dtype not in names:
            from harness.errors import unknown

            raise unknown("dtype", dtype, [*names, "auto"])
        return names[dtype]
    if str(device_map) == "cpu" or not torch.cuda.is_available():
        return torch.float32
    return torch.float16


def load_magma(path: str | os.PathLike[str], dtype: str = "auto", device_map: Any = "auto",
               overrides: Mapping[str, Any] | None = None) -> MagmaForCausalLM:
    """Load an original-format MAGMA checkpoint onto ``device_map`` in ``dtype``.

    Args:
        path: a local ``model.pt`` (``{"module": state_dict}`` or a bare state dict).
        dtype: float16 / bfloat16 / float32 / auto.
        device_map: "cpu", "cuda", "cuda:N", "auto" (all GPUs, then CPU), or an accelerate map.
        overrides: sizes the shapes cannot tell (``n_head``, ``rotary_dim``, ``image_size``).
    """
    path = Path(path)
    state, stored = read_checkpoint(path)
    config = infer_config(state, stored, overrides)
    torch_dtype = resolve_dtype(dtype, device_map)
    with torch.device("meta"):
        model = MagmaForCausalLM(config)
    model_keys = set(model.state_dict())
    accounting = account_for_keys(list(state), model_keys)
    if accounting.unexpected:
        raise BenchError(f"{path}: {len(accounting.unexpected)} unexpected key(s) "
                         f"({_listing(accounting.unexpected)}); is this a MAGMA v1 checkpoint?")
    if accounting.missing:
        raise BenchError(f"{path}: {len(accounting.missing)} missing key(s) "
                         f"({_listing(accounting.missing)}); the file is incomplete")
    plan = plan_devices(model, device_map, torch_dtype)
    # Each tensor goes straight from the memory-mapped file to its device and dtype; on the CPU
    # in the file's dtype ``.to`` returns the mmap'd tensor itself, so nothing is copied.
    renamed = {target: _place(state[key], torch_dtype, _device_of(target, plan))
               for key, target in accounting.mapped.items()}
    try:
        model.load_state_dict(renamed, strict=True, assign=True)
    except RuntimeError as exc:
        detail = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line),
                      str(exc).splitlines()[0])
        raise BenchError(f"{path}: tensor shapes do not fit one MAGMA model ({detail[:200]})") from None
    model.reset_rotary_table()
    model.eval()
    devices = set(plan.values())
    if len(devices) == 1:
        return model.to(devices.pop())
    from accelerate import dispatch_model

    return dispatch_model(model, device_map={name: _accelerate_device(d) for name, d in plan.items()})


def _place(tensor: torch.Tensor, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    if not tensor.is_floating_point():
        return tensor.to(device)
    return tensor.to(device=device, dtype=dtype)


def _device_of(name: str, plan: Mapping[str, torch.device]) -> torch.device:
    """The device of the longest module prefix of ``name`` in ``plan`` ("" matches all)."""
    parts = name.split(".")
    for cut in range(len(parts), -1, -1):
        prefix = ".".join(parts[:cut])
        if prefix in plan:
            return plan[prefix]
    raise RuntimeError(f"device plan does not cover {name}")


def _accelerate_device(device: torch.device) -> int | str:
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


# --------------------------------------------------------------------------- downloads


def resolve_checkpoint(checkpoint: str | None, hub_repo: str, hub_file: str,
                       mirrors: tuple[str, ...] = ()) -> Path:
    """A local path for ``checkpoint``: the file itself, or a hub download when None/``hf://``."""
    if checkpoint and not checkpoint.startswith("hf://"):
        path = Path(checkpoint).expanduser()
        if path.is_dir():
            raise BenchError(f"checkpoint {path} is a folder; pass the checkpoint file in it "
                             "(MAGMA's model.pt): --model-args checkpoint=PATH")
        if not path.is_file():
            raise BenchError(f"checkpoint file {path} does not exist; pass --model-args checkpoint=PATH")
        return path
    repos = [hub_repo, *mirrors]
    if checkpoint:  # hf://owner/name/file.pt
        owner_name, _, hub_file = checkpoint[len("hf://"):].rpartition("/")
        repos = [owner_name]
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    failures = []
    for repo in repos:
        try:
            return Path(hf_hub_download(repo_id=repo, filename=hub_file))
        except LocalEntryNotFoundError:  # no connection and no cached copy: mirrors fail too
            raise BenchError(f"cannot reach the Hugging Face hub to download {repo}/{hub_file} (offline?); "
                             "download it elsewhere and pass --model-args checkpoint=/path/to/model.pt") from None
        except Exception as exc:  # missing, gated, renamed: try the next mirror, then explain
            failures.append(f"{repo}: {type(exc).__name__}")
    raise BenchError(f"could not download {hub_file} ({'; '.join(failures)}); download it elsewhere and "
                     "pass --model-args checkpoint=/path/to/model.pt")


def load_tokenizer(tokenizer: str | None, vocab_rows: int):  # -> PreTrainedTokenizerBase
    """GPT-2's tokenizer (or a local folder) with ``<|image|>`` added, checked against the model."""
    from transformers import AutoTokenizer

    source = tokenizer or "gpt2"
    try:
        tok = AutoTokenizer.from_pretrained(source)
    except Exception as exc:
        where = "folder" if tokenizer else "GPT-2 tokenizer from the hub"
        raise BenchError(f"could not load the {where} {source!r} ({type(exc).__name__}); pass a Hugging "
                         "Face tokenizer folder with --model-args tokenizer=DIR") from None
    if IMAGE_TOKEN not in tok.get_vocab():
        tok.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]})
    if len(tok) > vocab_rows:
        raise BenchError(f"tokenizer {source!r} has {len(tok)} tokens but the model embeds only "
                         f"{vocab_rows}; pass the tokenizer the checkpoint was trained with")
    if tok.eos_token_id is None:
        raise BenchError(f"tokenizer {source!r} has no end-of-text token; pass a GPT-2 style tokenizer")
    return tok


def describe_config(config: MagmaConfig) -> dict[str, Any]:
    return config.to_dict()
