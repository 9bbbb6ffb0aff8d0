"""Where the project's declarative files live (task YAMLs, model cards, shipped data), and
where runs go by default."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(os.environ.get("VMB_HOME", Path(__file__).resolve().parent.parent))
TASKS_DIR = PROJECT_ROOT / "tasks"
MODEL_CARDS_DIR = PROJECT_ROOT / "models"
DATASETS_DIR = PROJECT_ROOT / "datasets"
#: Where runs, the cache and the leaderboard go unless --output-dir says otherwise.
DEFAULT_OUTPUT_DIR = "output"
