"""``vlm-judge``: any registered model grades responses from a Jinja rubric, image in context.

The rubric (its sandboxed template, the fence that quoted text cannot forge, and reading the
grade back) is ``harness.judges.rubric``. This module chooses each task's rubric, asks the
judge model in batches, and turns a failed judge call into an ``error`` verdict with its
reason (retried by the verdict memory), never aligned or misaligned. It knows nothing of how
the judged response was produced.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from harness.api_keys import scrub
from harness.errors import BenchError, unknown
from harness.hashing import derive_seed, stable_hash
from harness.identity import identity_digest
from harness.judges.base import Judge
from harness.judges.rubric import (
    DEFAULT_PATTERN,
    Rubric,
    compile_rubric,
    parse_grades,
    read_grade,
    render_rubric,
)
from harness.types import GenerationSettings, ImagePart, JudgeInput, Request, Verdict

#: How the reason of a verdict whose judge call failed starts (such verdicts are retried).
FAILED = "judge model failed"
_UNSET = object()  # the judge model's identity, before it is looked up


class ModelJudge(Judge):
    """Grade each response with a registered model that sees the sample's images.

    Args:
        model: registered model or model card name (e.g. ``magma-tiny``, ``openai``).
        model_args: arguments for that model (a mapping or a JSON string).
        rubric: a shipped rubric name (``default``) or the path of a Jinja template; or a
            mapping from task name to rubric (key ``default`` for the other tasks), so each
            task can name its own in its YAML metadata.
        pattern: regular expression for the grade; group ``grade`` or group 1 is the grade.
        grades: allowed grades and what they mean (aligned, misaligned, unclear, refusal).
        max_new_tokens, temperature, seed: how the judge model generates.
        batch_size: judge requests per call to the model.
    """

    version = "1"
    remembers = True

    def __init__(self, model: str | None = None, model_args: Mapping[str, Any] | str | None = None,
                 rubric: str | Mapping[str, str] = "default", pattern: str = DEFAULT_PATTERN,
                 grades: Mapping[str, str] | str | None = None, max_new_tokens: int = 16,
                 temperature: float = 0.0, seed: int = 0, batch_size: int = 8) -> None:
        if not model:
            raise BenchError("vlm-judge needs a judge model: --judge-args vlm-judge.model=NAME")
        from harness.registry import model_names

        if str(model) not in model_names():  # checked now, not after the judged model generated
            raise unknown("judge model", str(model), model_names(),
                          "Set --judge-args vlm-judge.model to one of --list-models.")
        if isinstance(model_args, str):
            try:
                model_args = json.loads(model_args) if model_args.strip() else {}
            except json.JSONDecodeError:
                raise BenchError("vlm-judge.model_args must be a JSON object") from None
        self.model_name, self.model_args = model, dict(model_args or {})
        named = dict(rubric) if isinstance(rubric, Mapping) else {"default": rubric}
        named.setdefault("default", "default")
        self.rubrics = {task: compile_rubric(str(name)) for task, name in named.items()}
        self._named_by_user = set(named) - {"default"}
        try:
            self.pattern = re.compile(pattern)
        except re.error as exc:
            raise BenchError(f"vlm-judge.pattern is not a valid regular expression: {exc}") from None
        self.grades = parse_grades(grades)
        self.generation = GenerationSettings(max_new_tokens=int(max_new_tokens),
                                             temperature=float(temperature), top_k=0, top_p=1.0)
        self.seed, self.batch_size = int(seed), max(1, int(batch_size))
        self._model: Any = None
        self._identity: object = _UNSET

    def bind_tasks(self, metadata_by_task: Mapping[str, Mapping[str, Any]]) -> None:
        """Take each task's ``metadata.rubric`` unless the judge's arguments named one for it."""
        for task, metadata in metadata_by_task.items():
            name = metadata.get("rubric")
            if name and task not in self._named_by_user:
                self.rubrics[task] = compile_rubric(str(name))

    def rubric_for(self, item: JudgeInput) -> Rubric:
        task = item.sample_key.split("/", 1)[0]
        return self.rubrics.get(task, self.rubrics["default"])

    # -- prompt ---------------------------------------------------------------------------

    def build_request(self, item: JudgeInput) -> Request:
        """The judge model's request for one sample: rubric text with the images in place."""
        return Request(request_id=f"{self.registry_name}/{item.sample_key}",
                       parts=tuple(render_rubric(self.rubric_for(item), item)),
                       generation=self.generation,
                       seed=derive_seed(self.seed, self.registry_name, item.sample_key))

    # -- judging --------------------------------------------------------------------------

    def _load(self) -> Any:
        if self._model is None:
            from harness.registry import load_model

            self._model = load_model(self.model_name, self.model_args)
        return self._model

    def model_identity(self) -> str | None:
        """The judge model's identity by content (``identity_digest``), None for one without."""
        if self._identity is _UNSET:
            identity = self._load().identity()
            self._identity = identity_digest(identity) if identity else None
        return self._identity  # type: ignore[return-value]

    def read_grade(self, output: str) -> Verdict:
        return read_grade(self.registry_name, self.pattern, self.grades, output)

    def judge(self, inputs: Sequence[JudgeInput]) -> list[Verdict]:
        name = self.registry_name
        verdicts: list[Verdict | None] = [None] * len(inputs)
        todo = []
        for i, item in enumerate(inputs):
            if item.response is None or item.response_error:
                verdicts[i] = Verdict(name, "error", reason="no response to judge: "
                                      f"{item.response_error or 'missing'}")
            else:
                todo.append(i)
        for start in range(0, len(todo), self.batch_size):
            batch = todo[start:start + self.batch_size]
            requests = [self.build_request(inputs[i]) for i in batch]
            model = self._load()  # a setup mistake (no key, bad name) stops the run: one line
            try:
                responses = model.generate(requests)
            except BenchError:
                raise
            except Exception as exc:  # noqa: BLE001 - a failing judge is recorded, not fatal
                for i in batch:
                    verdicts[i] = Verdict(name, "error", reason=scrub(
                        f"{FAILED}: {exc.__class__.__name__}: {exc}")[:500])
                continue
            by_id = {r.request_id: r for r in responses}
            for i, request in zip(batch, requests):
                response = by_id.get(request.request_id)
                if response is None or response.error or response.text is None:
                    why = response.error if response is not None and response.error else "no text"
                    verdicts[i] = Verdict(name, "error",
                                          reason=scrub(f"{FAILED}: {why}")[:500])
                else:
                    verdicts[i] = self.read_grade(response.text)
        return [v for v in verdicts if v is not None]

    def input_key(self, item: JudgeInput) -> str:
        """The judge model's identity and the request it gets (rubric text, prompt, response,
        image ids, generation settings, and the seed where sampling uses it).

        The identity is by content (weights, prompt-shaping files, hub commit, or server URL
        and model), so a judge checkpoint overwritten at the same path asks again; the judge
        model is therefore loaded (not asked) even when every verdict is remembered.
        """
        request = self.build_request(item)
        generation = request.generation
        identity = self.model_identity()
        return stable_hash({
            "judge": self.registry_name, "version": self.version, "model": self.model_name,
            "model_args": self.model_args, **({"model_identity": identity} if identity else {}),
            "pattern": self.pattern.pattern, "grades": self.grades,
            "parts": [p.image_id if isinstance(p, ImagePart) else ["text", p.text]
                      for p in request.parts],
            "generation": [generation.max_new_tokens, generation.temperature, generation.top_k,
                           generation.top_p, list(generation.until)],
            "seed": None if generation.greedy else request.seed}, 32)

    def worth_retrying(self, verdict: Verdict) -> bool:
        return verdict.status == "error" and (verdict.reason or "").startswith(FAILED)

    def settings(self) -> dict[str, Any]:
        # The judge model's identity by content, once it is loaded (it is, after judging).
        identity = self.model_identity() if self._model is not None else None
        return {"model": self.model_name, "model_args": self.model_args,
                **({"model_identity": identity} if identity else {}),
                "rubric": {task: r.name for task, r in sorted(self.rubrics.items())},
                "rubric_hash": stable_hash({t: r.source for t, r in sorted(self.rubrics.items())}),
                "pattern": self.pattern.pattern, "grades": self.grades,
                "max_new_tokens": self.generation.max_new_tokens,
                "temperature": self.generation.temperature, "seed": self.seed}
