"""The instrument's metrics: what a task's samples say beyond scored accuracy, for one judge.

- ``strict_accuracy``: aligned over ALL items; a refusal, an unclear answer or an error counts
  as not aligned (the paper's percentages are over all items). The headline number.
- ``pair_consistency``: share of polarity pairs (items with one ``pair_id``: same image, opposite
  right answers) with BOTH items aligned. A model that agrees with whatever it is asked gets 0.
- ``yes_rate`` / ``yes_bias``: share of answers the reference parser reads as yes, and that
  minus the share of items whose right answer is yes (``always-yes`` on balanced data: +0.5).
- ``image_reliance``: share of image-contrast pairs (items with one ``contrast_id``: the same
  question of two images, opposite right answers) answered right on both images.
- ``trap_accuracy``: aligned over the items with ``trap`` true (refusals count as wrong).
- ``echo_rate``: share of generated answers to prompts with shots that repeat a run of at
  least :data:`ECHO_MIN_WORDS` words of a shot's answer (the paper's "information overload").

Pairs are counted per repeat, and only when both members are in the run (``--limit`` can cut
one off). Every value comes with a 95% CI clustered by image (``harness.stats.intervals``:
the design-effect Wilson interval for shares, the cluster-robust t interval for ``yes_bias``)
and the number of images it rests on (``*_n_clusters``); a pair of two images (an image
contrast) is clustered by that pair of images. A metric whose fields the task's documents lack (``pair_id``, ``contrast_id``,
``trap``), or that has nothing to count (no shots at 0 shots), is None, never an error.

This module reads samples; it writes nothing and calls no model or judge.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from harness.judges.reference import parse_answer
from harness.stats.intervals import mean_ci, proportion_ci

if TYPE_CHECKING:
    from harness.run.samples import Sample

METRICS = ("strict_accuracy", "pair_consistency", "yes_rate", "yes_bias", "image_reliance",
           "trap_accuracy", "echo_rate")
#: The shortest run of words, shared with a shot's answer, that counts as an echo.
ECHO_MIN_WORDS = 5
_SHOT_ANSWER = re.compile(r"(?:^|\n)[ \t]*A:[ \t]*(\S[^\n]*)")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")


def aligned(sample: Sample, judge: str) -> bool:
    """Strictly aligned: an ``ok`` verdict that is aligned (anything else is not)."""
    verdict = sample.verdicts.get(judge, {})
    return verdict.get("status") == "ok" and bool(verdict.get("aligned"))


def _estimate(name: str, values: Sequence[float], clusters: Sequence[str],
              seed: int, *, share: bool = True) -> dict[str, Any]:
    """``name``, ``name_ci_low``, ``name_ci_high``, ``name_n`` and ``name_n_clusters`` (None
    when nothing counts). ``share``: the values are 0/1 (else a mean of differences).
    ``seed`` is kept for callers; neither interval draws anything."""
    estimate = (proportion_ci if share else mean_ci)(values, clusters)
    return {name: estimate.value, f"{name}_ci_low": estimate.ci_low,
            f"{name}_ci_high": estimate.ci_high, f"{name}_n": estimate.n,
            f"{name}_n_clusters": estimate.n_clusters}


def _absent(name: str) -> dict[str, Any]:
    return {name: None, f"{name}_ci_low": None, f"{name}_ci_high": None, f"{name}_n": None,
            f"{name}_n_clusters": None}


def _groups(samples: Sequence[Sample], field: str) -> dict[tuple[str, int], list[Sample]] | None:
    """Samples by (``doc[field]``, repeat); None when no document has the field at all."""
    if not any(field in s.doc for s in samples):
        return None
    groups: dict[tuple[str, int], list[Sample]] = {}
    for sample in samples:
        value = sample.doc.get(field)
        if value is not None and value != "":
            groups.setdefault((str(value), sample.repeat), []).append(sample)
    return groups


def _both_right(name: str, samples: Sequence[Sample], judge: str, field: str,
                seed: int) -> dict[str, Any]:
    """Share of two-item groups (by ``field``) whose two items are both aligned."""
    groups = _groups(samples, field)
    if groups is None:
        return _absent(name)
    values: list[float] = []
    clusters: list[str] = []
    for members in groups.values():
        if len(members) != 2:
            continue  # a partner cut off by --limit, or a malformed group: nothing to pair
        values.append(1.0 if all(aligned(s, judge) for s in members) else 0.0)
        clusters.append("|".join(sorted({s.cluster for s in members})))
    return _estimate(name, values, clusters, seed)


def answer_polarity(sample: Sample) -> str:
    """yes / no / refusal / unclear / error: the reference parser's reading of the answer."""
    if sample.error is not None:
        return "error"
    text = sample.filtered_response if sample.filtered_response is not None else sample.response
    return parse_answer(text, sample.prompt)[0]


def shot_answers(prompt: str) -> list[str]:
    """The answers of the question-answer lines in a prompt (the final, empty ``A:`` excluded)."""
    return [match.strip() for match in _SHOT_ANSWER.findall(prompt)]


def _ngrams(text: str, size: int) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.replace("\u2019", "'").lower())
    return {tuple(words[i:i + size]) for i in range(len(words) - size + 1)}


def echoes_a_shot(response: str | None, prompt: str, min_words: int = ECHO_MIN_WORDS) -> bool:
    """Whether ``response`` repeats ``min_words`` consecutive words of one shot's answer."""
    if not response:
        return False
    said = _ngrams(response, min_words)
    return any(said & _ngrams(answer, min_words) for answer in shot_answers(prompt))


def _per_item(name: str, samples: Sequence[Sample], value: Callable[[Sample], float],
              seed: int, *, share: bool = True) -> dict[str, Any]:
    return _estimate(name, [value(s) for s in samples], [s.cluster for s in samples], seed,
                     share=share)


def strict_accuracy(samples: Sequence[Sample], judge: str, seed: int) -> dict[str, Any]:
    """Aligned over all ``samples``, with its CI and count."""
    return _per_item("strict_accuracy", samples, lambda s: float(aligned(s, judge)), seed)


def instrument_metrics(samples: Sequence[Sample], judge: str, seed: int) -> dict[str, Any]:
    """Every metric of :data:`METRICS` with its CI and count, for one judge's verdicts."""
    summary = strict_accuracy(samples, judge, seed)
    summary.update(_both_right("pair_consistency", samples, judge, "pair_id", seed))
    polar = [s for s in samples if s.expected in ("yes", "no")]
    said_yes = {s.request_id: answer_polarity(s) == "yes" for s in polar}
    summary.update(_per_item("yes_rate", polar, lambda s: float(said_yes[s.request_id]), seed))
    summary.update(_per_item("yes_bias", polar, lambda s: float(said_yes[s.request_id])
                             - float(s.expected == "yes"), seed, share=False))
    summary.update(_both_right("image_reliance", samples, judge, "contrast_id", seed))
    if any("trap" in s.doc for s in samples):
        traps = [s for s in samples if str(s.doc.get("trap")).lower() == "true"]
        summary.update(_per_item("trap_accuracy", traps, lambda s: float(aligned(s, judge)), seed))
    else:
        summary.update(_absent("trap_accuracy"))
    # Only generated answers to prompts that show shots can echo one.
    with_shots = [s for s in samples if s.loglikelihoods is None and shot_answers(s.prompt)]
    summary.update(_per_item("echo_rate", with_shots,
                             lambda s: float(echoes_a_shot(s.response, s.prompt)), seed))
    return summary
