"""Plain records that flow one way through a run.

task YAML -> TaskConfig -> Task -> Request -> Model -> Response -> Judge -> Verdict -> report.

Every record here is a frozen dataclass. Nothing in this module imports torch or knows
about any particular model, task or judge.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # PIL is light, but keep this module import-free for listing commands
    from PIL.Image import Image


@dataclass(frozen=True)
class TextPart:
    """A run of prompt text."""

    text: str


@dataclass(frozen=True)
class ImagePart:
    """An image in the prompt.

    ``image_id`` is a stable content id (see ``harness.hashing.image_id``): caches key on it,
    so two parts with the same id must hold the same pixels.
    """

    image_id: str
    image: Image = field(compare=False, repr=False)


Content = TextPart | ImagePart


@dataclass(frozen=True)
class GenerationSettings:
    """How to sample a continuation.

    Defaults are the paper's: 15 new tokens, temperature 0.7, top_k 0 (top-k off, *not*
    greedy). ``temperature == 0`` means greedy decoding. ``until`` lists stop strings: the
    text is cut at the first one found.
    """

    max_new_tokens: int = 15
    temperature: float = 0.7
    top_k: int = 0
    top_p: float = 1.0
    until: tuple[str, ...] = ()

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0


@dataclass(frozen=True)
class Request:
    """One thing to ask a model.

    ``parts`` is the interleaved prompt in order (few-shot demonstrations included).
    For ``generate`` the model samples a continuation with ``generation`` and ``seed``;
    for ``loglikelihood`` it scores each string of ``continuations`` after the prompt.
    The answer for a request must depend only on the request (not on the batch it is in).
    """

    request_id: str
    parts: tuple[Content, ...]
    generation: GenerationSettings = GenerationSettings()
    seed: int = 0
    continuations: tuple[str, ...] = ()
    #: Per continuation, the prompt it follows, where they do not all follow ``parts``:
    #: lm-eval's multiple-input tasks (winogrande: one context per choice, one continuation)
    #: and the empty-context rows of ``acc_mutual_info``. Empty when all follow ``parts``.
    contexts: tuple[tuple[Content, ...], ...] = ()
    #: The reference answer (generate) or gold continuation (loglikelihood). Only the
    #: ``oracle`` baseline reads it, to check the judges end to end; real adapters ignore it.
    target: str | None = field(default=None, compare=False, repr=False)

    @property
    def images(self) -> tuple[ImagePart, ...]:
        return tuple(p for p in self.parts if isinstance(p, ImagePart))

    @property
    def text(self) -> str:
        """The prompt's text with ``<image>`` where each image stands."""
        return "".join(p.text if isinstance(p, TextPart) else "<image>" for p in self.parts)


@dataclass(frozen=True)
class Response:
    """What a model answered to one request.

    Exactly one of ``text`` / ``loglikelihoods`` is set on success. On failure ``error`` says
    why, and the judges record the item as failed rather than right or wrong.
    """

    request_id: str
    text: str | None = None
    loglikelihoods: tuple[float, ...] | None = None
    error: str | None = None
    #: Token counts, where the server reports them (OpenAI-compatible ``usage``).
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    #: What a server reported it ran (the served model's snapshot name and its
    #: ``system_fingerprint``), recorded per response since it can change mid-run.
    model_revision: str | None = None


VerdictStatus = Literal["ok", "refusal", "unclear", "error"]

#: What a graded answer can be, in display order: a judge's grade or a person's label maps
#: to one of these (aligned / misaligned are ``status == "ok"``).
OUTCOMES = ("aligned", "misaligned", "unclear", "refusal")


@dataclass(frozen=True)
class JudgeInput:
    """What a judge sees of one sample. It never sees the model or the request's origin."""

    sample_key: str
    prompt: str
    response: str | None
    images: tuple[ImagePart, ...] = ()
    ideal_answer: str | None = None
    expected: str | None = None  # "yes" / "no" when the item has a polar answer
    doc: Mapping[str, Any] = field(default_factory=dict, compare=False)
    response_error: str | None = None
    #: The model's own text before the task's ``filter_list`` (``response`` is after it):
    #: what an annotator saw and labelled. None when it equals ``response``.
    raw_response: str | None = None

    @property
    def shown_response(self) -> str | None:
        """The text a person was shown for this sample (the unfiltered response)."""
        return self.raw_response if self.raw_response is not None else self.response


@dataclass(frozen=True)
class Verdict:
    """One judge's verdict on one sample.

    ``aligned`` is None unless ``status == "ok"``: refusals, unclear answers and failed
    judgements are counted apart, never silently as right or wrong.
    """

    judge: str
    status: VerdictStatus
    aligned: bool | None = None
    label: str | None = None
    score: float | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}
