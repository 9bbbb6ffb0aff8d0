"""Samples and judging: the record of an answered instance, and the judges' verdicts on it.

Shared by ``harness.run.evaluate`` (a fresh run) and ``harness.commands.score`` (re-judging a
saved run), so both judge identically; their scores are ``harness.run.scores``'. Nothing here
calls a model or writes a file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from harness.hashing import stable_hash
from harness.judges.base import Judge
from harness.run.verdicts import VerdictMemory
from harness.stats.clusters import image_cluster
from harness.tasks.task import InstanceFields
from harness.types import ImagePart, JudgeInput, Verdict

SAMPLES_SCHEMA = 1
#: The judge-free score of multiple-choice tasks: argmax of the log-likelihoods == gold.
LOGLIKELIHOOD = "loglikelihood"
LOGLIKELIHOOD_VERSION = "1"


@dataclass(frozen=True)
class Sample(InstanceFields):
    """One line of ``samples.jsonl``: one (task, document, repeat) with every verdict."""

    request_id: str = field(kw_only=True)
    seed: int = field(kw_only=True)
    prompt: str = field(kw_only=True)
    response: str | None = field(kw_only=True)
    loglikelihoods: tuple[float, ...] | None = field(kw_only=True)
    error: str | None = field(kw_only=True)
    doc: Mapping[str, Any]  # compared, unlike an Instance's
    filtered_response: str | None = None
    #: What the server reported it ran for this response (``openai`` adapter), else None.
    model_revision: str | None = None
    verdicts: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    schema: int = SAMPLES_SCHEMA

    def to_dict(self) -> dict[str, Any]:
        """The sample's fields, in order (its line in ``samples.jsonl``); the document and the
        verdicts are copied, not shared (``dataclasses.asdict``'s deep copy cost more than
        the rest of a run's writing)."""
        data = {name: getattr(self, name) for name in _SAMPLE_FIELDS}
        data["doc"] = dict(self.doc)
        data["verdicts"] = {name: dict(verdict) for name, verdict in self.verdicts.items()}
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Sample:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        for key in ("image_ids", "fewshot_ids", "choices"):
            known[key] = tuple(known.get(key) or ())
        if known.get("loglikelihoods") is not None:
            known["loglikelihoods"] = tuple(known["loglikelihoods"])
        return cls(**known)

    @property
    def cluster(self) -> str:
        """The image the item asks about (``harness.stats.clusters.image_cluster``)."""
        return image_cluster(self.image_ids, self.doc_id, self.cluster_id)

    def with_verdict(self, name: str, verdict: Verdict) -> Sample:
        return replace(self, verdicts={**self.verdicts, name: verdict.to_dict()})


#: A sample's fields in the order of its line in ``samples.jsonl``.
_SAMPLE_FIELDS = ("task", "doc_id", "repeat", "request_id", "seed", "prompt", "image_ids",
                  "fewshot_ids", "target", "expected", "choices", "gold", "response",
                  "loglikelihoods", "error", "doc", "doc_hash", "prompt_hash", "target_hash",
                  "filtered_response", "model_revision", "cluster_id", "verdicts", "schema")


def loglikelihood_verdict(sample: Sample) -> Verdict:
    """Judge-free accuracy of a multiple-choice sample."""
    if sample.error is not None or not sample.loglikelihoods:
        return Verdict(LOGLIKELIHOOD, "error", reason=f"no log-likelihoods: {sample.error}")
    scores = sample.loglikelihoods[:len(sample.choices)]  # not acc_mutual_info's rows
    best = max(range(len(scores)), key=lambda i: scores[i])
    aligned = best == sample.gold
    return Verdict(LOGLIKELIHOOD, "ok", aligned=aligned, label=sample.choices[best],
                   score=float(aligned), reason=f"picked choice {best}, gold {sample.gold}")


def judge_input(sample: Sample, images: Sequence[ImagePart] = ()) -> JudgeInput:
    text = sample.filtered_response if sample.filtered_response is not None else sample.response
    return JudgeInput(sample_key=sample.request_id, prompt=sample.prompt, response=text,
                      images=tuple(images), ideal_answer=sample.target, expected=sample.expected,
                      doc=sample.doc, response_error=sample.error,
                      raw_response=sample.response if sample.filtered_response is not None else None)


def apply_judges(samples: Sequence[Sample], judges: Iterable[Judge],
                 images: Mapping[str, Sequence[ImagePart]],
                 memory: VerdictMemory | None = None) -> list[Sample]:
    """Every judge's verdict added to every sample (keyed by the judge's name).

    With ``memory``, judges that remember their verdicts are asked only what the run's
    verdict journal and the verdict cache do not hold.
    """
    result = list(samples)
    for judge in judges:
        name = judge.registry_name
        inputs = [judge_input(s, images.get(s.request_id, ())) for s in result]
        if memory is not None and getattr(judge, "remembers", False):
            verdicts = memory.judge(judge, inputs)
        else:
            verdicts = judge.judge(inputs)
        if len(verdicts) != len(inputs):
            raise RuntimeError(f"judge {name} returned {len(verdicts)} verdicts for {len(inputs)} samples")
        result = [s.with_verdict(name, v) for s, v in zip(result, verdicts)]
    return result


def loglikelihood_settings_hash() -> str:
    return stable_hash({"judge": LOGLIKELIHOOD, "version": LOGLIKELIHOOD_VERSION})
