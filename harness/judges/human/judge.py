"""The ``human`` judge: hand labels from ``annotations.jsonl`` turned into verdicts.

The verdict of a sample is the majority label over annotators (each annotator's newest
label for the response they saw). Ties and missing labels are never guessed: a tie is
``unclear`` and an unlabelled sample is an ``error`` with its reason, counted apart.
This judge only reads the annotations file; ``run_bench.py annotate`` writes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.arguments import split_names
from harness.errors import BenchError
from harness.judges.base import Judge
from harness.judges.human.annotations import (
    ANNOTATIONS_FILE,
    current_labels,
    majority,
    read_annotations,
    response_hash,
)
from harness.types import JudgeInput, Verdict


class HumanJudge(Judge):
    """Verdicts from hand labels.

    Args:
        annotations: the annotations file, or the run folder holding ``annotations.jsonl``.
            ``score`` may instead call ``use_run_dir(run_dir)``.
        annotators: comma-separated annotator names to count (default: everyone).
    """

    version = "1"

    def __init__(self, annotations: str | None = None, annotators: str | None = None) -> None:
        self.path: Path | None = None
        if annotations:
            self.path = self._resolve(Path(annotations).expanduser())
        self.annotators = sorted(set(split_names(annotators))) if annotators else None

    @staticmethod
    def _resolve(path: Path) -> Path:
        return path / ANNOTATIONS_FILE if path.is_dir() else path

    def use_run_dir(self, run_dir: str | Path) -> None:
        """Read the run folder's own annotations unless a file was named explicitly."""
        if self.path is None:
            self.path = Path(run_dir) / ANNOTATIONS_FILE

    def judge(self, inputs: Sequence[JudgeInput]) -> list[Verdict]:
        if self.path is None:
            raise BenchError("the human judge needs the labels: pass --judge-args "
                             "human.annotations=RUN_DIR/annotations.jsonl")
        if not self.path.exists():
            raise BenchError(f"{self.path} not found; label the run first with "
                             "run_bench.py annotate RUN_DIR")
        # Annotators label the response as the model gave it, before any filter_list.
        hashes = {item.sample_key: response_hash(item.shown_response) for item in inputs}
        records = read_annotations(self.path)
        if self.annotators is not None:
            records = [r for r in records if r.annotator in self.annotators]
        labels = current_labels(records, hashes)
        return [self._verdict(labels.get(item.sample_key, {})) for item in inputs]

    def _verdict(self, labels: dict[str, str]) -> Verdict:
        name = self.registry_name
        if not labels:
            return Verdict(name, "error", reason="no hand label for this response")
        winner, counts = majority(labels)
        tally = ", ".join(f"{label} {n}" for label, n in sorted(counts.items()))
        reason = f"{len(labels)} annotator(s): {tally}"
        if winner is None:
            return Verdict(name, "unclear", label="tie", reason=reason + " (tie)")
        share = counts[winner] / len(labels)
        if winner == "unclear":
            return Verdict(name, "unclear", label=winner, score=share, reason=reason)
        return Verdict(name, "ok", aligned=winner == "aligned", label=winner, score=share,
                       reason=reason)

    def settings(self) -> dict[str, Any]:
        # The file's location is not a setting: the same labels judge the same way anywhere.
        return {"annotators": self.annotators} if self.annotators else {}
