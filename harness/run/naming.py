"""Pass 1 of a run: what the run is. Each task's hashes (of every prompt) and counts, and
the run folder's name, which depends only on what determines the outputs (never on batch
size), so re-running a command finds and resumes the same folder.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from harness.hashing import stable_hash
from harness.models.base import Model
from harness.tasks.ablation import NO_ABLATION
from harness.tasks.task import Instance, Task, task_hashes


def run_name(model: Model, hashes: Mapping[str, tuple[str, str]], seed: int, repeats: int | None,
              limit: int | float | None, image_ablation: str = NO_ABLATION) -> str:
    identity: dict[str, Any] = {"model": model.fingerprint(), "tasks": sorted(hashes.items()),
                                "seed": seed, "repeats": repeats, "limit": limit}
    label = re.sub(r"[^A-Za-z0-9_.-]+", "-", str(model.registry_name)).strip("-") or "model"
    if image_ablation != NO_ABLATION:  # absent otherwise, so earlier runs keep their folders
        identity["image_ablation"] = image_ablation
        label += f"-{image_ablation}"
    return f"{label}-{stable_hash(identity, 12)}"



class TaskFacts:
    """What pass 1 learns of a task: its hashes and counts."""

    def __init__(self) -> None:
        self.task_hash = self.prompt_hash = ""
        self.n_docs = self.n_samples = self.refused = 0
        #: Why the model cannot answer a request of the task (the first such), or None.
        self.refusal: str | None = None

    def count(self, task: Task, instances: Iterator[Instance], model: Model) -> None:
        doc_ids: set[str] = set()
        refusal = getattr(model, "refusal", None)

        def counted() -> Iterator[Instance]:
            for instance in instances:
                doc_ids.add(instance.doc_id)
                self.n_samples += 1
                reason = refusal(instance.request) if refusal is not None else None
                if reason:
                    self.refused += 1
                    self.refusal = self.refusal or reason
                yield instance

        self.task_hash, self.prompt_hash = task_hashes(task, counted())
        self.n_docs = len(doc_ids)
