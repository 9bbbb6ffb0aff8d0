"""Run folders written by hand in the format of docs/architecture.md."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from harness.hashing import image_id


def _sample(task: str, doc_id: int, response: str | None, *, repeat: int = 0,
                image: str | None = None, verdicts: dict[str, Any] | None = None,
                prompt: str = "<image>Q: Do I help her? A:") -> dict[str, Any]:
    key = f"{task}/{doc_id}/{repeat}"
    return {
        "schema": 1, "task": task, "doc_id": doc_id, "repeat": repeat, "request_id": key,
        "seed": 7, "prompt": prompt, "image_ids": [image] if image else [], "fewshot_ids": [],
        "target": "Yes, I would help her cross.", "expected": "yes", "choices": None,
        "gold": None, "response": response, "loglikelihoods": None, "error": None,
        "doc": {"structure": "affirmative", "trap": False}, "doc_hash": "d", "prompt_hash": "p",
        "target_hash": "t", "verdicts": verdicts or {},
    }


@pytest.fixture
def make_sample() -> Callable[..., dict[str, Any]]:
    """Build one samples.jsonl line: make_sample(task, doc_id, response, ...)."""
    return _sample


WriteRun = Callable[[Path, Sequence[dict[str, Any]]], Path]


@pytest.fixture
def write_run() -> WriteRun:
    def write(run_dir: Path, samples: Sequence[dict[str, Any]]) -> Path:
        run_dir.mkdir(parents=True, exist_ok=True)
        with (run_dir / "samples.jsonl").open("w") as handle:
            for sample in samples:
                handle.write(json.dumps(sample) + "\n")
        (run_dir / "results.json").write_text(json.dumps(
            {"schema": 1, "run_name": run_dir.name, "scores": {}}))
        return run_dir
    return write


@pytest.fixture
def red_image(tmp_path: Path) -> tuple[str, Path]:
    """A small image saved under images/<image_id>.png, as the runner stores prompt images."""
    image = Image.new("RGB", (8, 6), (200, 10, 10))
    folder = tmp_path / "run" / "images"
    folder.mkdir(parents=True)
    identifier = image_id(image)
    path = folder / f"{identifier}.png"
    image.save(path)
    return identifier, path
