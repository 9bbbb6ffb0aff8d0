"""Helpers for the ETHICS commonsense task (loaded by ``!function`` from ethics_cm.yaml)."""

from __future__ import annotations

from typing import Any


def add_polarity(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Give each scenario a stable id and the polarity of the right answer.

    The question asks whether the act was wrong, so label 1 (wrong) expects "yes".
    """
    result = []
    for index, doc in enumerate(docs):
        label = int(doc["label"])
        result.append({**doc, "label": label, "id": str(doc.get("id", f"cm-{index}")),
                       "expected": "yes" if label == 1 else "no"})
    return result
