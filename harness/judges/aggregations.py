"""lm-eval's aggregations (per-sample values to one number) and that number's standard error.

Each aggregation computes what ``lm_eval.api.metrics`` computes under the same name; the
standard error is what lm-eval 0.4.13 reports as ``<metric>_stderr,<filter>``
(``stderr_for_metric`` and ``evaluator_utils._compute_task_aggregations``):

- ``mean``: ``mean_stderr`` (the sample standard deviation over sqrt(n));
- ``median``, ``matthews_corrcoef``, ``f1``, ``perplexity``, ``bleu``, ``chrf``, ``chrf++``,
  ``ter``, ``nanmean``: the bootstrap, with lm-eval's draws (``harness.stats.lm_eval_stderr``)
  and iteration count (100,000; at most 100 for the metrics named bleu, chrf, chrf++, ter);
- anything else (``weighted_perplexity``, ``bits_per_byte``, a ``!function``): none, lm-eval's
  ``"N/A"``; so too below two values, or with no iterations.

The bootstrap evaluates the counting aggregations (f1, mcc, median, perplexity) on whole
blocks of resamples at once, with the same arithmetic as the one-sample form, so a replicate
equals the one lm-eval computes. Nothing here reads a file or calls a model.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from harness.errors import BenchError
from harness.stats.lm_eval_stderr import BOOTSTRAP_ITERS, bootstrap_stderr, mean_stderr

Aggregation = Callable[[Sequence[Any]], float]


def _mean(items: Sequence[float]) -> float:
    return sum(items) / len(items)


def _weighted_mean(items: Sequence[tuple[float, float]]) -> float:
    return sum(a for a, _ in items) / sum(b for _, b in items)


def _f1(items: Sequence[tuple[Any, Any]]) -> float:
    """sklearn's binary ``f1_score(golds, preds)`` (positive label 1)."""
    labels = {x for pair in items for x in pair}
    if not labels <= {0, 1}:
        raise BenchError(f"f1: lm-eval's f1 is binary, but the labels are {sorted(labels, key=str)}; "
                         "use acc or a !function aggregation")
    tp = sum(1 for g, p in items if g == 1 and p == 1)
    fp = sum(1 for g, p in items if g != 1 and p == 1)
    fn = sum(1 for g, p in items if g == 1 and p != 1)
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0


def _mcc(items: Sequence[tuple[Any, Any]]) -> float:
    """sklearn's ``matthews_corrcoef(golds, preds)`` (multi-class form)."""
    labels = sorted({x for pair in items for x in pair}, key=str)
    index = {label: i for i, label in enumerate(labels)}
    k = len(labels)
    confusion = [[0] * k for _ in range(k)]
    for gold, pred in items:
        confusion[index[gold]][index[pred]] += 1
    t = [sum(row) for row in confusion]               # true occurrences per class
    p = [sum(confusion[r][c] for r in range(k)) for c in range(k)]  # predictions per class
    c, s = sum(confusion[i][i] for i in range(k)), len(items)
    cov_ytyp = c * s - sum(p[i] * t[i] for i in range(k))
    cov_ypyp = s * s - sum(x * x for x in p)
    cov_ytyt = s * s - sum(x * x for x in t)
    if cov_ypyp * cov_ytyt == 0:
        return 0.0
    return cov_ytyp / math.sqrt(cov_ytyt * cov_ypyp)


def _sacre(items: Sequence[tuple[Any, Any]]) -> tuple[list[list[str]], list[str]]:
    """lm-eval's ``_sacreformat``: references transposed to sacrebleu's streams."""
    refs = [r if isinstance(r, list | tuple) else [r] for r, _ in items]
    preds = [p[0] if isinstance(p, list | tuple) else p for _, p in items]
    return [list(stream) for stream in zip(*refs)], preds


def _sacrebleu() -> Any:
    try:
        import sacrebleu
    except ImportError:
        raise BenchError("bleu / chrf / ter need sacrebleu: pip install sacrebleu") from None
    return sacrebleu


AGGREGATIONS: dict[str, Aggregation] = {
    "mean": _mean,
    "median": lambda items: sorted(items)[len(items) // 2],
    "perplexity": lambda items: math.exp(-_mean(items)),
    "weighted_perplexity": lambda items: math.exp(-_weighted_mean(items)),
    "bits_per_byte": lambda items: -_weighted_mean(items) / math.log(2),
    "f1": _f1,
    "matthews_corrcoef": _mcc,
    "bleu": lambda items: _sacrebleu().corpus_bleu(_sacre(items)[1], _sacre(items)[0]).score,
    "chrf": lambda items: _sacrebleu().corpus_chrf(_sacre(items)[1], _sacre(items)[0]).score,
    "ter": lambda items: _sacrebleu().corpus_ter(_sacre(items)[1], _sacre(items)[0]).score,
}

# -- standard errors (lm_eval.api.metrics.stderr_for_metric) -------------------------------------
#: Aggregations lm-eval bootstraps (its ``bootstrappable`` list, by registered name).
BOOTSTRAPPED = frozenset({"median", "matthews_corrcoef", "f1", "perplexity", "bleu", "chrf",
                          "chrf++", "ter", "nanmean"})
#: Metrics (by name, whatever their aggregation) lm-eval bootstraps at most ``SACREBLEU_ITERS``.
SACREBLEU_METRICS = frozenset({"bleu", "chrf", "chrf++", "ter"})
SACREBLEU_ITERS = 100


def stderr_iters(metric: str, aggregation: str | Aggregation, iters: int = BOOTSTRAP_ITERS
                 ) -> int | None:
    """How lm-eval gets the stderr of ``metric`` aggregated by ``aggregation``: the bootstrap
    iterations, 0 for ``mean_stderr``, None for none (``"N/A"``)."""
    if iters <= 0 or not isinstance(aggregation, str):
        return None
    if aggregation == "mean":
        return 0
    if aggregation in BOOTSTRAPPED:
        return min(iters, SACREBLEU_ITERS) if metric in SACREBLEU_METRICS else iters
    return None


def _pairs(values: Sequence[Any]) -> tuple[np.ndarray, np.ndarray, int] | None:
    """(gold codes, prediction codes, number of labels) of hashable pairs, else None."""
    if not all(isinstance(v, list | tuple) and len(v) == 2 for v in values):
        return None
    try:
        labels = {label: i for i, label in enumerate({x for pair in values for x in pair})}
    except TypeError:
        return None
    codes = np.array([[labels[g], labels[p]] for g, p in values], dtype=np.int64)
    return codes[:, 0], codes[:, 1], len(labels)


def _f1_rows(values: Sequence[Any]) -> Callable[[np.ndarray], Any] | None:
    if not all(isinstance(v, list | tuple) and len(v) == 2 and {*v} <= {0, 1} for v in values):
        return None
    golds = np.array([g == 1 for g, _ in values])
    preds = np.array([p == 1 for _, p in values])
    hit, extra, missed = golds & preds, ~golds & preds, golds & ~preds

    def rows(index: np.ndarray) -> Any:
        tp, fp, fn = (mask[index].sum(axis=1) for mask in (hit, extra, missed))
        denominator = 2 * tp + fp + fn
        return np.where(tp + fp + fn > 0, 2 * tp / np.maximum(denominator, 1), 0.0)
    return rows


def _mcc_rows(values: Sequence[Any]) -> Callable[[np.ndarray], Any] | None:
    found = _pairs(values)
    if found is None:
        return None
    golds, preds, k = found
    cells = golds * k + preds

    def rows(index: np.ndarray) -> Any:
        count, n = index.shape
        offsets = (np.arange(count) * k * k)[:, None]
        confusion = np.bincount((cells[index] + offsets).ravel(),
                                minlength=count * k * k).reshape(count, k, k)
        t, p = confusion.sum(axis=2), confusion.sum(axis=1)
        c = np.trace(confusion, axis1=1, axis2=2)
        cov_ytyp = c * n - (p * t).sum(axis=1)
        cov_ypyp = n * n - (p * p).sum(axis=1)
        cov_ytyt = n * n - (t * t).sum(axis=1)
        product = cov_ytyt * cov_ypyp
        return np.where(product == 0, 0.0, cov_ytyp / np.sqrt(np.maximum(product, 1)))
    return rows


def _numbers(values: Sequence[Any]) -> np.ndarray | None:
    if not all(isinstance(v, int | float) for v in values):
        return None
    array = np.array(values, dtype=np.float64)
    return None if np.isnan(array).any() else array


def _block_statistic(aggregation: str, values: Sequence[Any],
                     aggregate: Aggregation) -> Callable[[np.ndarray], Any]:
    """One replicate per row of resample indices, equal to ``aggregate`` of that resample."""
    if aggregation == "f1" and (rows := _f1_rows(values)) is not None:
        return rows
    if aggregation == "matthews_corrcoef" and (rows := _mcc_rows(values)) is not None:
        return rows
    numbers = _numbers(values) if aggregation in ("median", "perplexity") else None
    if numbers is not None and aggregation == "median":
        return lambda index: np.sort(numbers[index], axis=1)[:, len(values) // 2]
    if numbers is not None:  # perplexity: exp(-mean), summed left to right as lm-eval's mean
        return lambda index: [math.exp(-(sum(row) / len(row))) for row in numbers[index].tolist()]
    return lambda index: [aggregate([values[i] for i in row]) for row in index.tolist()]


def aggregate_stderr(metric: str, aggregation: str | Aggregation, values: Sequence[Any],
                     iters: int = BOOTSTRAP_ITERS) -> float | None:
    """lm-eval's ``<metric>_stderr`` of ``values`` (per-sample values, in document order), or
    None where lm-eval reports ``"N/A"``."""
    how = stderr_iters(metric, aggregation, iters)
    if how is None or len(values) < 2:
        return None
    assert isinstance(aggregation, str)
    if how == 0:
        return float(mean_stderr(values))
    if aggregation not in AGGREGATIONS:
        return None  # lm-eval's chrf++ and nanmean: not computed here, so no stderr either
    return bootstrap_stderr(_block_statistic(aggregation, values, AGGREGATIONS[aggregation]),
                            len(values), how)
