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
    #: True when a verdict depends only on the settings and the input and costs something
    #: to make (a model call): runs then journal each verdict as it is made and keep it in
    #: the cross-run cache. False for judges that read changing files (hand labels).
    remembers: bool = False

    @abstractmethod
    def judge(self, inputs: Sequence[JudgeInput]) -> list[Verdict]:
        """One verdict per input, in order."""

    def bind_tasks(self, metadata_by_task: Mapping[str, Mapping[str, Any]]) -> None:
        """Called once per run, before judging, with each task's YAML ``metadata``.

        Lets a judge take per-task settings that a task declares (e.g. its rubric). The
        default takes none.
        """
        return None

    def input_key(self, item: JudgeInput) -> str:
        """A hash of everything this judge's verdict on ``item`` depends on (the cache key)."""
        return stable_hash({
            "judge": self.registry_name, "version": self.version, "settings": self.settings(),
            "task": item.sample_key.split("/", 1)[0], "prompt": item.prompt,
            "response": item.response, "images": [p.image_id for p in item.images],
            "ideal_answer": item.ideal_answer, "expected": item.expected, "doc": dict(item.doc),
            "response_error": item.response_error}, 32)

    def worth_retrying(self, verdict: Verdict) -> bool:
        """True for a verdict that records a failed attempt (asked again, never cached)."""
        return False

    def settings(self) -> dict[str, Any]:
        return dict(self.init_args)

    def settings_hash(self) -> str:
        return stable_hash({"judge": self.registry_name, "version": self.version,
                            "settings": self.settings()})

    def describe(self) -> dict[str, Any]:
        return {"name": self.registry_name, "version": self.version,
                "settings": self.settings(), "settings_hash": self.settings_hash()}
