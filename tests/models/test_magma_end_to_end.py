"""magma-tiny through the whole harness, and the real card's loading path on a local file."""

from __future__ import annotations

import pytest

from harness.registry import load_model
from harness.types import Request, TextPart


def test_checkpoint_and_tokenizer_arguments_alone_load_an_original_file(tiny_files):
    checkpoint, tokenizer = tiny_files
    # the strings a user types in --model-args: sizes come from the file, not from arguments
    model = load_model("magma", {"checkpoint": str(checkpoint), "tokenizer": str(tokenizer),
                                 "dtype": "float32", "device_map": "cpu", "batch_size": "2"})
    assert model.batch_size == 2 and model.config.n_layer == 2
    [response] = model.generate([Request("x/0/0", (TextPart("Q: Is it kind? A:"),), seed=1)])
    assert response.error is None and isinstance(response.text, str)
    assert model.describe()["architecture"]["hidden_size"] == 64


def test_bad_sampler_is_a_clear_error(tiny_files):
    from harness.errors import BenchError

    with pytest.raises(BenchError, match="original-2021"):
        load_model("magma-tiny", {"sampler": "nucleus"})


def test_leaderboard_rows_name_the_sampler(tiny_files, tmp_path):
    import json

    from harness.run.evaluate import evaluate

    model = load_model("magma-tiny", {"sampler": "original-2021"})
    evaluate(model, "morality_1shot", batch_size=2, limit=2, output_dir=tmp_path, use_cache=False)
    rows = [json.loads(line) for line in (tmp_path / "leaderboard.jsonl").read_text().splitlines()]
    assert rows and all(row["sampler"] == "original-2021, top_p 0.9" for row in rows)


def test_morality_1shot_runs_end_to_end(tiny_files, tmp_path):
    runner = pytest.importorskip("harness.run.evaluate", reason="the runner lands with the core branch")
    model = load_model("magma-tiny")
    first = runner.evaluate(model, "morality_1shot", batch_size=4, limit=6, output_dir=tmp_path,
                            use_cache=False, write_leaderboard=False)
    assert len(first.samples) == 6
    assert all(s.error is None and isinstance(s.response, str) for s in first.samples)
    distinct_images = {i for s in first.samples for i in s.image_ids}
    assert model.image_prefix_computations == len(distinct_images)
    # a fresh folder, so nothing is resumed: one by one must give the batched answers
    again = runner.evaluate(model, "morality_1shot", batch_size=1, limit=6, output_dir=tmp_path / "again",
                            use_cache=False, write_leaderboard=False)
    assert again.run_dir.name == first.run_dir.name
    assert [s.response for s in again.samples] == [s.response for s in first.samples]
    assert model.image_prefix_computations == len(distinct_images)  # still once per image
