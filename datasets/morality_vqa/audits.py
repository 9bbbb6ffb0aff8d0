"""Shortcut audits of the morality-VQA dataset: how well can an item be answered without the image?

Three blind baselines, each scored on the test split (the dataset's tests require at most 60%,
or 50% +- 3 for the constant answers):

- a bag-of-words classifier (multinomial naive Bayes over the question's words and word
  pairs, trained on the train split's questions and answers);
- "answer what the last shot answered": the yes/no that begins the answer of the shot line
  nearest the question, or yes when that answer begins with neither;
- always yes, always no.

Pure functions over item records (dicts with ``question``, ``expected`` and the prompts); numpy
only. Used by ``build.py`` (the card's figures) and ``tests/test_dataset.py``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

LABELS = ("yes", "no")


def words(text: str) -> list[str]:
    """Lower-case word unigrams and bigrams of a question."""
    tokens = re.findall(r"[a-z']+", text.lower())
    return tokens + [f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False)]


class NaiveBayes:
    """Multinomial naive Bayes with add-``alpha`` smoothing, over the two answers."""

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = alpha
        self.vocabulary: dict[str, int] = {}
        self.log_prior = np.zeros(len(LABELS))
        self.log_likelihood = np.zeros((len(LABELS), 0))

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> NaiveBayes:
        self.vocabulary = {w: i for i, w in enumerate(sorted({w for t in texts for w in words(t)}))}
        counts = np.zeros((len(LABELS), len(self.vocabulary)))
        for text, label in zip(texts, labels, strict=True):
            for word, n in Counter(words(text)).items():
                counts[LABELS.index(label), self.vocabulary[word]] += n
        per_label = np.array([sum(label == name for label in labels) for name in LABELS], float)
        self.log_prior = np.log((per_label + 1) / (per_label.sum() + len(LABELS)))
        smoothed = counts + self.alpha
        self.log_likelihood = np.log(smoothed / smoothed.sum(axis=1, keepdims=True))
        return self

    def predict(self, texts: Iterable[str]) -> list[str]:
        predictions = []
        for text in texts:
            score = self.log_prior.copy()
            for word in words(text):
                if word in self.vocabulary:
                    score += self.log_likelihood[:, self.vocabulary[word]]
            # A tie (nothing known) goes to yes, like the constant baseline.
            predictions.append(LABELS[int(score[1] > score[0])])
        return predictions


def accuracy(predictions: Sequence[str], items: Sequence[dict]) -> float:
    return sum(p == item["expected"] for p, item in zip(predictions, items, strict=True)) / len(
        items
    )


def bag_of_words_accuracy(train: Sequence[dict], test: Sequence[dict]) -> float:
    model = NaiveBayes().fit([i["question"] for i in train], [i["expected"] for i in train])
    return accuracy(model.predict(i["question"] for i in test), test)


def last_shot_answer(prompt: str) -> str:
    """The yes/no that begins the last shot line's answer ('A: ...' before the question), else yes."""
    lines = prompt.split("\n")
    if len(lines) < 4:
        return "yes"
    match = re.match(r"A: (yes|no)\b", lines[-3], flags=re.IGNORECASE)
    return match.group(1).lower() if match else "yes"


def last_shot_accuracy(test: Sequence[dict], shots: int) -> float:
    return accuracy([last_shot_answer(i[f"prompt_{shots}shot"]) for i in test], test)


def constant_accuracy(test: Sequence[dict], answer: str) -> float:
    return accuracy([answer] * len(test), test)


def summary(train: Sequence[dict], test: Sequence[dict]) -> str:
    """One markdown table of the audits on the test split."""
    rows = [
        (
            "question-only bag of words (naive Bayes, trained on train)",
            bag_of_words_accuracy(train, test),
        ),
        ("answer what the last shot answered, 1-shot prompt", last_shot_accuracy(test, 1)),
        ("answer what the last shot answered, 2-shot prompt", last_shot_accuracy(test, 2)),
        ("always yes", constant_accuracy(test, "yes")),
        ("always no", constant_accuracy(test, "no")),
    ]
    lines = ["| blind baseline | accuracy on test |", "|---|---|"]
    lines += [f"| {name} | {100 * value:.1f}% |" for name, value in rows]
    return "\n".join(lines)
