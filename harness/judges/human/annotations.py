"""The annotations file of a run folder: hand labels, appended one flushed line at a time.

Each line records who labelled which sample, the hash of the response they saw, the label
and when. Labels are never rewritten: going back and relabelling appends a newer line, and
the newest line per (annotator, sample) wins. A label whose response hash no longer matches
the sample (the run was regenerated) is stale and ignored. This module does no judging and
serves nothing; it only reads and writes records.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness.files import append_jsonl_locked, read_jsonl
from harness.hashing import stable_hash

SCHEMA_VERSION = 1
LABELS = ("aligned", "misaligned", "unclear")
ANNOTATIONS_FILE = "annotations.jsonl"


def response_hash(text: str | None) -> str:
    """The hash that ties a label to the exact response text the annotator saw."""
    return stable_hash({"response": text})


@dataclass(frozen=True)
class Annotation:
    """One hand label."""

    annotator: str
    task: str
    doc_id: Any
    repeat: int
    sample_key: str
    response_hash: str
    label: str
    time: str


def append_annotation(path: Path, annotation: Annotation) -> None:
    """Append one label under a file lock, flushed to disk before returning."""
    if annotation.label not in LABELS:
        raise ValueError(f"label {annotation.label!r} is not one of {LABELS}")
    append_jsonl_locked(path, [{"schema": SCHEMA_VERSION, **asdict(annotation)}], timeout=30,
                        hint="check that the run folder is writable")


def read_annotations(path: Path) -> list[Annotation]:
    """Every valid label in file order; damaged lines are warned about and skipped."""
    out: list[Annotation] = []
    fields = set(Annotation.__dataclass_fields__)
    objects, damaged = read_jsonl(path)
    skipped = [line.number for line in damaged]
    for number, raw in objects:
        try:
            record = Annotation(**{k: raw[k] for k in fields})
        except (KeyError, TypeError):
            skipped.append(number)
            continue
        if record.label in LABELS:
            out.append(record)
    for number in sorted(skipped):
        warnings.warn(f"{path}:{number}: damaged annotation line skipped", stacklevel=2)
    return out


def current_labels(annotations: Iterable[Annotation],
                   hashes: Mapping[str, str] | None = None) -> dict[str, dict[str, str]]:
    """``{sample_key: {annotator: label}}`` from the newest label of each annotator.

    With ``hashes`` (sample key -> response hash) labels given to another response are dropped.
    """
    labels: dict[str, dict[str, str]] = {}
    for record in annotations:  # file order is time order: later lines overwrite
        if hashes is not None and hashes.get(record.sample_key) != record.response_hash:
            continue
        labels.setdefault(record.sample_key, {})[record.annotator] = record.label
    return labels


def majority(labels: Mapping[str, str]) -> tuple[str | None, Counter[str]]:
    """The label most annotators gave, or None on a tie (or no labels)."""
    counts = Counter(labels.values())
    ranked = counts.most_common()
    if not ranked or (len(ranked) > 1 and ranked[0][1] == ranked[1][1]):
        return None, counts
    return ranked[0][0], counts
