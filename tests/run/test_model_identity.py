"""Results belong to the weights that made them: overwrite a checkpoint at the same path and
the next run is a new run with the new model's answers; an untouched model resumes and hits
the cache. For a MAGMA checkpoint file and an hf folder (weights, and its chat template)."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from harness import evaluate  # noqa: E402
from harness.reports.leaderboard import read_rows  # noqa: E402

TASKS = "morality_0shot,morality_0shot_mc"


def _run(model: str, args: dict[str, Any], include: Path, out: Path, **kw: Any):
    return evaluate(model, TASKS, None, model_args=args, include_paths=[str(include)],
                    output_dir=out, limit=2, **kw)


def _answers(result) -> list[Any]:
    return [(s.request_id, s.response, s.loglikelihoods) for s in result.samples]


def _overwrite_magma(path: Path, seed: int) -> None:
    from transformers import AutoTokenizer

    from harness.models.magma.tiny import (
        EXTRA_HEAD_ROWS,
        TINY_CONFIG,
        random_state_dict,
        write_checkpoint,
    )

    rows = len(AutoTokenizer.from_pretrained(path.parent / "tokenizer"))
    config = replace(TINY_CONFIG, vocab_rows=rows, lm_head_rows=rows + EXTRA_HEAD_ROWS)
    write_checkpoint(random_state_dict(config, seed), config, path)


def test_an_overwritten_magma_checkpoint_is_a_new_model(tmp_path: Path, mini_tasks: Path) -> None:
    from harness.models.magma.tiny import build_tiny

    out = tmp_path / "out"
    changed, _ = build_tiny(tmp_path / "changed", seed=0)
    kept, _ = build_tiny(tmp_path / "kept", seed=5)
    changed_args = {"checkpoint": str(changed), "tokenizer": str(changed.parent / "tokenizer")}
    kept_args = {"checkpoint": str(kept), "tokenizer": str(kept.parent / "tokenizer")}
    before = _run("magma", changed_args, mini_tasks, out)
    kept_first = _run("magma", kept_args, mini_tasks, out)

    size = changed.stat().st_size
    _overwrite_magma(changed, seed=1)  # a retrained model of the same architecture
    assert changed.stat().st_size == size  # the old identity (name, bytes) could not tell

    after = _run("magma", changed_args, mini_tasks, out)
    assert after.run_dir != before.run_dir and after.results["cached_responses"] == 0
    assert _answers(after) != _answers(before)
    fresh = _run("magma", changed_args, mini_tasks, tmp_path / "fresh", use_cache=False)
    assert _answers(after) == _answers(fresh)  # the new model's own answers
    assert (after.results["model"]["identity"]["checkpoint"]["digest"]
            != before.results["model"]["identity"]["checkpoint"]["digest"])

    kept_again = _run("magma", kept_args, mini_tasks, out)  # untouched: the same folder
    assert kept_again.run_dir == kept_first.run_dir and _answers(kept_again) == _answers(kept_first)
    shutil.rmtree(kept_first.run_dir)
    from_cache = _run("magma", kept_args, mini_tasks, out)
    assert from_cache.results["cached_responses"] == len(from_cache.samples) > 0
    assert _answers(from_cache) == _answers(kept_first)

    rows = read_rows(out / "leaderboard.jsonl")
    digests = {row["run_name"]: row["model_identity"] for row in rows}
    assert digests[before.run_dir.name] != digests[after.run_dir.name]
    assert digests[after.run_dir.name] == after.results["model"]["identity_digest"]


def test_an_overwritten_hf_folder_or_template_is_a_new_model(tmp_path: Path, mini_tasks: Path) -> None:
    from tests.models.tiny_vlms import build_tiny_llava

    out = tmp_path / "out"
    folder = build_tiny_llava(tmp_path / "llava", seed=0)
    args = {"pretrained": str(folder), "dtype": "float32", "device": "cpu"}
    first = _run("hf", args, mini_tasks, out)

    weights = folder / "model.safetensors"
    size = weights.stat().st_size
    build_tiny_llava(folder, seed=1)  # new weights, same file names and sizes
    assert weights.stat().st_size == size
    new_weights = _run("hf", args, mini_tasks, out)
    assert new_weights.run_dir != first.run_dir and new_weights.results["cached_responses"] == 0
    assert _answers(new_weights) != _answers(first)
    assert _answers(new_weights) == _answers(_run("hf", args, mini_tasks, tmp_path / "fresh",
                                                  use_cache=False))

    template = folder / "chat_template.jinja"
    original = template.read_text()
    template.write_text(original.replace("ASSISTANT:", "ANSWER:"))  # only the prompt changes
    new_template = _run("hf", args, mini_tasks, out)
    assert new_template.run_dir not in (first.run_dir, new_weights.run_dir)
    assert new_template.results["cached_responses"] == 0
    files = {r.run_dir.name: r.results["model"]["identity"]["files"] for r in (new_weights, new_template)}
    old_files, new_files = files[new_weights.run_dir.name], files[new_template.run_dir.name]
    assert old_files["model.safetensors"] == new_files["model.safetensors"]
    assert old_files["chat_template.jinja"] != new_files["chat_template.jinja"]
    assert _answers(new_template) != _answers(new_weights)

    template.write_text(original)  # the same bytes again: the same model, whatever the mtime
    back = _run("hf", args, mini_tasks, out)
    assert back.run_dir == new_weights.run_dir and _answers(back) == _answers(new_weights)
    shutil.rmtree(back.run_dir)
    cached = _run("hf", args, mini_tasks, out)
    assert cached.results["cached_responses"] == len(cached.samples) > 0
    assert _answers(cached) == _answers(new_weights)
