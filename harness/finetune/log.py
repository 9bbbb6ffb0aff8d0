"""A finetune run's loss log (``loss.jsonl``, one flushed line per optimizer step) and plot.

Only the main process writes. A resumed run keeps the lines up to its resume point and
redoes the rest; a line cut by an interruption ends what is kept. Nothing here trains.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.files import JsonlAppender, iter_jsonl, temporary_beside, write_jsonl_atomic

LOSS_LOG = "loss.jsonl"
LOSS_PLOT = "loss.png"


def read_loss_log(path: Path, up_to_step: int) -> list[dict[str, Any]]:
    """The records of steps up to ``up_to_step``, stopping at the first damaged line."""
    records: list[dict[str, Any]] = []
    damaged: list[Any] = []
    for _, record in iter_jsonl(path, damaged):
        if damaged:
            break  # a line cut by an interruption; everything after it is redone
        if record["step"] <= up_to_step:
            records.append(record)
    return records


class LossLog:
    """The records so far, and (on the main process) the file they go to."""

    def __init__(self, output: Path, start_step: int, main_process: bool) -> None:
        self.path = output / LOSS_LOG
        self.records = read_loss_log(self.path, start_step)
        self._appender: JsonlAppender | None = None
        if main_process:
            output.mkdir(parents=True, exist_ok=True)
            write_jsonl_atomic(self.path, self.records)
            self._appender = JsonlAppender(self.path)

    def add(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        if self._appender is not None:
            self._appender.write(record)

    def close(self, plot: Path | None = None) -> None:
        if self._appender is not None:
            self._appender.close()
            if plot is not None and self.records:
                write_loss_plot(self.records, plot)

    @property
    def losses(self) -> tuple[float, ...]:
        return tuple(record["loss"] for record in self.records)


def write_loss_plot(records: Sequence[dict[str, Any]], path: Path) -> None:
    """Loss against optimizer step, epochs marked; replaced atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 3.5))
    axis.plot([r["step"] for r in records], [r["loss"] for r in records], marker=".")
    for record in records:
        if record["end_of_epoch"]:
            axis.axvline(record["step"], color="0.85", linewidth=0.8, zorder=0)
    axis.set(xlabel="optimizer step", ylabel="caption cross-entropy", title="finetune loss")
    figure.tight_layout()
    temporary = temporary_beside(path)
    try:
        figure.savefig(temporary, dpi=120, format="png")
        os.replace(temporary, path)
    finally:
        plt.close(figure)
        temporary.unlink(missing_ok=True)
