"""Pass 3 of a run: samples built from the journal's responses, judged a chunk at a time.

Each task's instances stream by again; each one's response is read back from the journal,
made a ``Sample``, judged (``harness.run.samples.apply_judges``), tallied for the scores and
handed on to be written to samples.jsonl; no sample is kept. It calls no model and writes no
file itself.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from harness.judges.base import Judge
from harness.judges.metrics import MetricScorer
from harness.models.base import Model
from harness.run.journal import Journal
from harness.run.samples import (
    LOGLIKELIHOOD,
    Sample,
    apply_judges,
    loglikelihood_verdict,
)
from harness.run.scores import ScoreTally
from harness.run.setup import metric_tally, task_judge_names
from harness.run.verdicts import VerdictMemory
from harness.tasks.filters import apply_filters
from harness.tasks.task import Instance, Task
from harness.types import Response

#: Samples judged per judge call: judges batch within a chunk, and a run holds one chunk.
JUDGE_CHUNK = 4096


class TokenUsage:
    """Prompt and completion tokens summed over the responses whose server reported them."""

    def __init__(self) -> None:
        self.prompt_tokens = self.completion_tokens = self.n_reported = 0

    def add(self, response: Response) -> None:
        if response.prompt_tokens is not None or response.completion_tokens is not None:
            self.prompt_tokens += response.prompt_tokens or 0
            self.completion_tokens += response.completion_tokens or 0
            self.n_reported += 1

    def to_dict(self) -> dict[str, int | None]:
        reported = self.n_reported > 0
        return {"prompt_tokens": self.prompt_tokens if reported else None,
                "completion_tokens": self.completion_tokens if reported else None,
                "n_reported": self.n_reported}


def build_sample(instance: Instance, response: Response, filter_list: Sequence[Mapping[str, Any]]) -> Sample:
    text = response.text
    if response.loglikelihoods is not None and instance.choices:
        scores = response.loglikelihoods[:len(instance.choices)]  # not acc_mutual_info's rows
        text = instance.choices[max(range(len(scores)), key=lambda i: scores[i])]
    return Sample(
        task=instance.task, doc_id=instance.doc_id, repeat=instance.repeat,
        request_id=instance.key, seed=instance.request.seed, prompt=instance.request.text,
        image_ids=instance.image_ids, fewshot_ids=instance.fewshot_ids, target=instance.target,
        expected=instance.expected, choices=instance.choices, gold=instance.gold, response=text,
        loglikelihoods=response.loglikelihoods, error=response.error, doc=instance.doc,
        doc_hash=instance.doc_hash, prompt_hash=instance.prompt_hash,
        target_hash=instance.target_hash,
        filtered_response=apply_filters(filter_list, text, instance.doc) if filter_list else None,
        model_revision=response.model_revision,
        cluster_id=instance.cluster_id,
    )


class JudgingPass:
    """Pass 3: samples built from the journal and judged a chunk at a time.

    Each sample is tallied for the scores (``harness.run.scores.ScoreTally``) and, in a task
    with lm-eval metrics in its ``metric_list``, for those (``MetricTally``: the per-metric
    values only) as it goes by; then it is handed on, to be written, and not kept.
    """

    def __init__(self) -> None:
        self.tallies: dict[str, ScoreTally] = {}
        #: ``{task: {"metric,filter": {...}}}``: the lm-eval metrics of tasks that name any.
        self.metrics: dict[str, dict[str, Any]] = {}
        #: What computed each task's metrics, for the lm-eval-format samples files.
        self.scorers: dict[str, MetricScorer] = {}
        self.cached = 0
        #: The tokens of the responses this invocation did not take from a cache.
        self.usage = TokenUsage()
        self.schema: int | None = None
        self.revisions: Counter[str] = Counter()

    def model_info(self, model: Model) -> dict[str, Any]:
        """The model's description, with the revisions a server reported it ran, counted
        (a server may change what it runs mid-run)."""
        info = model.describe()
        if self.revisions:
            info["served_revisions"] = dict(sorted(self.revisions.items()))
        return info

    def samples(self, tasks: Sequence[Task], instances_of: Callable[[Task], Iterator[Instance]],
                journal: Journal, judges: Mapping[str, Judge],
                given_names: Sequence[str] | None,
                memory: VerdictMemory | None = None) -> Iterator[Sample]:
        for task in tasks:
            names = task_judge_names(task, given_names)
            task_judges = [judges[n] for n in names if n in judges]
            tally = metric_tally(task)
            for chunk in _chunks(instances_of(task), JUDGE_CHUNK):
                task_samples = []
                for instance in chunk:
                    response, cached = journal.read(instance.key)
                    self.cached += cached
                    if not cached:
                        self.usage.add(response)
                    sample = build_sample(instance, response, task.config.filter_list)
                    if LOGLIKELIHOOD in names:
                        sample = sample.with_verdict(LOGLIKELIHOOD, loglikelihood_verdict(sample))
                    if tally is not None:
                        tally.add(sample)
                    task_samples.append(sample)
                images = {i.key: i.request.images for i in chunk}
                for sample in apply_judges(task_samples, task_judges, images, memory):
                    if self.schema is None:
                        self.schema = sample.schema
                    if sample.model_revision:
                        self.revisions[sample.model_revision] += 1
                    self.tallies.setdefault(sample.task, ScoreTally()).add(sample)
                    yield sample
            if tally is not None:
                self.metrics[task.name] = tally.results()
                self.scorers[task.name] = tally.scorer


def _chunks(items: Iterable[Instance], size: int) -> Iterator[list[Instance]]:
    iterator = iter(items)
    while chunk := list(itertools.islice(iterator, size)):
        yield chunk
