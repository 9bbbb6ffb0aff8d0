"""Where the project's declarative files live (task YAMLs, model cards, shipped data)."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(os.environ.get("VMB_HOME", Path(__file__).resolve().parent.parent))
TASKS_DIR = PROJECT_ROOT / "tasks"
MODEL_CARDS_DIR = PROJECT_ROOT / "models"
DATASETS_DIR = PROJECT_ROOT / "datasets"


def user_cache_dir() -> Path:
    """Where built twins and remembered file hashes live: ``$VMB_CACHE``, else the user cache dir."""
    base = os.environ.get("VMB_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "vlm-morality-bench")
    return Path(base)
