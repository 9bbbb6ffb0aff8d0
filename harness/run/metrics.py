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
contrast) is clustered by that pair of images. A metric whose fields the task's documents lack
(``pair_id``, ``contrast_id``, ``trap``), or that has nothing to count (no shots at 0 shots),
is None, never an error.

This module reads one sample at a time (what a sample says); ``harness.run.scores`` tallies
them into the metrics. It writes nothing and calls no model or judge.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from harness.judges.reference import parse_answer

if TYPE_CHECKING:
    from harness.run.samples import Sample

METRICS = ("strict_accuracy", "pair_consistency", "yes_rate", "yes_bias", "image_reliance",
           "trap_accuracy", "echo_rate")
#: The shortest run of words, shared with a shot's answer, that counts as an echo.
ECHO_MIN_WORDS = 5
_SHOT_ANSWER = re.compile(r"(?:^|\n)[ \t]*A:[ \t]*(\S[^\n]*)")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z0-9]+)*")


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
