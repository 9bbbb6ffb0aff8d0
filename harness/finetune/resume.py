"""Resuming a finetune run: what a finished or unfinished output folder already holds.

An unfinished run keeps ``resume/`` (trained parameters, optimizer and scaler state, and
``progress.json`` with the step and the run's identity). A new resume point is written to
``resume.tmp/`` and renamed over ``resume/``, so an interruption never leaves half a state.
A run whose settings, data or base model differ from the folder's is refused, never mixed.
Only the main process writes. Nothing here trains.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from harness.errors import BenchError
from harness.files import write_json_atomic
from harness.models.magma import finetuned

RESUME_DIR = "resume"
PROGRESS_FILE = "progress.json"
STATE_FILE = "trained.safetensors"


def finished_steps(output: Path, identity: Mapping[str, Any]) -> int | None:
    """The step count of a finished run of the same identity in ``output``; None if unfinished."""
    if not (output / finetuned.MANIFEST_FILE).is_file():
        return None
    manifest = finetuned.read_manifest(output)
    if {key: manifest.get(key) for key in identity} != identity:
        raise BenchError(f"{output} already holds a finished finetune run with other "
                         "settings, data or base model; choose another --output")
    return int(manifest["steps"])


def recover_staging(output: Path) -> None:
    """Finish a swap interrupted between dropping the old state and the rename."""
    resume_dir, staging = output / RESUME_DIR, output / (RESUME_DIR + ".tmp")
    if not resume_dir.exists() and (staging / PROGRESS_FILE).is_file():
        staging.replace(resume_dir)


def load_state(output: Path, identity: Mapping[str, Any], parameters: Mapping[str, Any],
               log: Callable[[str], None], total_steps: int) -> int:
    """Load the resume point's trained parameters; return its step (0 without one)."""
    import torch
    from safetensors.torch import load_file

    resume_dir = output / RESUME_DIR
    if not (resume_dir / PROGRESS_FILE).is_file():
        return 0
    progress = json.loads((resume_dir / PROGRESS_FILE).read_text())
    if {key: progress.get(key) for key in identity} != identity:
        raise BenchError(f"{output} holds an unfinished run with other settings, data or "
                         "base model; rerun with those, or choose another --output")
    start_step = int(progress["step"])
    with torch.no_grad():
        for name, tensor in load_file(str(resume_dir / STATE_FILE)).items():
            parameters[name].copy_(tensor)
    log(f"resuming {output} from step {start_step} of {total_steps}")
    return start_step


def load_optimizer(output: Path, optimizer: Any) -> None:
    import torch

    optimizer.load_state_dict(torch.load(output / RESUME_DIR / "optimizer.pt", weights_only=True))


def load_scaler(output: Path, scaler: Any) -> None:
    import torch

    if scaler is not None and (output / RESUME_DIR / "scaler.pt").is_file():
        scaler.load_state_dict(torch.load(output / RESUME_DIR / "scaler.pt", weights_only=True))


def save_state(output: Path, step: int, identity: Mapping[str, Any],
               trained: Mapping[str, Any], optimizer: Any, scaler: Any) -> None:
    """A new resume point at ``step``: staged whole, then swapped in."""
    import torch
    from safetensors.torch import save_file

    resume_dir, staging = output / RESUME_DIR, output / (RESUME_DIR + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    save_file({n: p.detach().cpu().contiguous() for n, p in trained.items()},
              str(staging / STATE_FILE))
    torch.save(optimizer.state_dict(), staging / "optimizer.pt")
    if scaler is not None:
        torch.save(scaler.state_dict(), staging / "scaler.pt")
    write_json_atomic(staging / PROGRESS_FILE, {"step": step, **identity}, sort_keys=True,
                      default=str)
    shutil.rmtree(resume_dir, ignore_errors=True)
    staging.replace(resume_dir)


def drop_state(output: Path) -> None:
    shutil.rmtree(output / RESUME_DIR, ignore_errors=True)
