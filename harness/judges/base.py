"""The interface every judge implements.

A judge turns ``JudgeInput``s into ``Verdict``s. It never knows how a response was made.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any

from harness.hashing import stable_hash
from harness.types import JudgeInput, Verdict


class Judge(ABC):
    """Base class for judges. ``version`` changes whenever verdicts could change."""

    registry_name: str = "unnamed"
    init_args: dict[str, Any] = {}
    version: str = "1"

    @abstractmethod
    def judge(self, inputs: Sequence[JudgeInput]) -> list[Verdict]:
        """One verdict per input, in order."""

    def bind_tasks(self, metadata_by_task: Mapping[str, Mapping[str, Any]]) -> None:
        """Called once per run, before judging, with each task's YAML ``metadata``.

        Lets a judge take per-task settings that a task declares (e.g. its rubric). The
        default takes none.
        """
        return None

    def settings(self) -> dict[str, Any]:
        return dict(self.init_args)

    def settings_hash(self) -> str:
        return stable_hash({"judge": self.registry_name, "version": self.version,
                            "settings": self.settings()})

    def describe(self) -> dict[str, Any]:
        return {"name": self.registry_name, "version": self.version,
                "settings": self.settings(), "settings_hash": self.settings_hash()}
