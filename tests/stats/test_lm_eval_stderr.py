"""lm-eval's resamples and standard errors, drawn and computed exactly as lm-eval does."""

from __future__ import annotations

import random

import numpy as np
import pytest

from harness.stats.lm_eval_stderr import bootstrap_indices, bootstrap_stderr, mean_stderr


@pytest.mark.parametrize(("n", "iters"), [(7, 2500), (1, 3), (13, 40)])
def test_draws_are_random_choices_of_each_seeded_chunk(n: int, iters: int) -> None:
    items = list(range(n))
    chunk = min(1000, iters)
    expected = []
    for seed in range(iters // chunk):  # lm-eval's _bootstrap_internal_no_mp
        rnd = random.Random(seed)
        expected += [rnd.choices(items, k=n) for _ in range(chunk)]
    drawn = np.concatenate(list(bootstrap_indices(n, iters)))
    assert drawn.tolist() == expected  # 2500 draws: two chunks of 1000, the rest dropped


def test_large_corpora_are_drawn_in_blocks_of_the_same_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    whole = np.concatenate(list(bootstrap_indices(50, 300)))
    monkeypatch.setattr("harness.stats.lm_eval_stderr.BLOCK_INDICES", 120)  # 2 rows a block
    blocks = list(bootstrap_indices(50, 300))
    assert {len(b) for b in blocks} == {2} and (np.concatenate(blocks) == whole).all()


def test_bootstrap_and_mean_stderr_equal_lm_eval_s(monkeypatch: pytest.MonkeyPatch) -> None:
    lm_metrics = pytest.importorskip("lm_eval.api.metrics")
    monkeypatch.setenv("DISABLE_MULTIPROC", "1")
    values = [random.Random(1).gauss(0, 1) * i for i in range(25)]
    theirs = lm_metrics.bootstrap_stderr(lm_metrics.mean, values, 2100)
    ours = bootstrap_stderr(lambda rows: [sum(r) / len(r) for r in np.array(values)[rows].tolist()],
                            len(values), 2100)
    assert ours == theirs
    assert mean_stderr(values) == lm_metrics.mean_stderr(values)
    assert bootstrap_stderr(lambda rows: rows.sum(axis=1), 3, 1) is None  # one replicate
