"""What the two transformers adapters (``hf`` for VLMs, ``hf-causal`` for text) share.

``TransformersModel`` loads a checkpoint onto its device, generates in batches grouped by
generation settings (each row sampled with its own CPU generator seeded from
``Request.seed``, see ``RowSampler``, and stopped by its own stop strings), scores
continuations batch by batch, splits a batch that fails down to the items that fail alone,
and names the checkpoint by content. A subclass renders and encodes prompts
(``_render``, ``_encode``) and scores rows (``_score_rows``). The model's own
``generation_config`` sampling defaults are deliberately ignored: the task's settings alone
decide how to decode. This module must not know about tasks or judges.
"""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

from harness.errors import BenchError
from harness.hashing import stable_hash
from harness.identity import folder_identity, hub_repo_identity, identity_digest
from harness.models.base import Model
from harness.models.common import cut_at_stop
from harness.models.hf_rows import RowSampler, StopOnStrings, refusing, run_split
from harness.types import GenerationSettings, Request, Response

log = logging.getLogger(__name__)
DTYPES = {"auto": "auto", "float32": torch.float32, "float16": torch.float16,
          "bfloat16": torch.bfloat16}


def check_dtype(adapter: str, dtype: str) -> None:
    if dtype not in DTYPES:
        raise BenchError(f"{adapter}: unknown dtype '{dtype}'; use one of {sorted(DTYPES)}")


def load_pretrained(auto_class: Any, pretrained: str, common: Mapping[str, Any], dtype: str,
                    device_map: str | dict[str, Any] | None, device: str | None,
                    attn_implementation: str | None) -> Any:
    """``auto_class.from_pretrained`` in ``dtype``, on ``device`` (default cuda if present)
    unless accelerate places it (``device_map``), in eval mode."""
    load_args: dict[str, Any] = {**common, "dtype": DTYPES[dtype]}
    if device_map is not None:
        load_args["device_map"] = device_map
    if attn_implementation is not None:
        load_args["attn_implementation"] = attn_implementation
    model = auto_class.from_pretrained(pretrained, **load_args)
    if device_map is None:
        model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model.eval()
    return model


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _refusal(exc: BaseException) -> str:
    return f"hf: the model or its processor refused this input: {exc}"


def _refused_response(request: Request, exc: BaseException) -> Response:
    return Response(request_id=request.request_id, error=_refusal(exc))


def _refused_row(row: tuple[Request, str], exc: BaseException) -> str:
    return _refusal(exc)


def _out_of_memory_response(request: Request) -> Response:
    return Response(request_id=request.request_id, error="out of memory on a batch of one")


def _out_of_memory_scoring(row: tuple[Request, str]) -> tuple[float, bool]:
    # A log-likelihood table with a hole in it would skew the choice, so stop the run instead.
    raise BenchError(f"hf: out of memory scoring {row[0].request_id} alone; "
                     "use a smaller dtype or device_map=auto")


class TransformersModel(Model):
    """A transformers checkpoint: batched generation and scoring, batch splitting, identity.

    A subclass sets ``pretrained``, ``revision``, ``cache_dir``, ``model``, ``tokenizer``
    (see ``_use_tokenizer``) and ``_identity`` (``self._identify()``), and implements the
    three prompt methods below.
    """

    identity_arg = "pretrained"
    pretrained: str
    revision: str | None
    cache_dir: str | None
    model: Any
    tokenizer: Any
    pad_token_id: int
    chat_template: str | None
    use_chat_template: bool
    _identity: dict[str, Any]

    @abstractmethod
    def _render(self, request: Request) -> str:
        """The request as the model's prompt string."""

    @abstractmethod
    def _encode(self, texts: list[str], requests: Sequence[Request],
                suffixes: Sequence[str] | None = None) -> Any:
        """A left-padded batch of ``texts`` (with ``requests``' images), on the model's device."""

    @abstractmethod
    def _score_rows(self, rows: Sequence[tuple[Request, str]]) -> list[tuple[float, bool]]:
        """Each (request, continuation) row's log-probability and whether it is the greedy one."""

    def _use_tokenizer(self, tokenizer: Any, chat_template: str | None,
                       use_chat_template: bool, adapter: str) -> None:
        """Take ``tokenizer`` for padding and decoding, and the chat template if asked for."""
        self.tokenizer = tokenizer
        self.pad_token_id = (tokenizer.pad_token_id if tokenizer.pad_token_id is not None
                             else tokenizer.eos_token_id)
        self.chat_template = chat_template
        self.use_chat_template = use_chat_template and bool(chat_template)
        if use_chat_template and not chat_template:
            log.warning("%s: %s has no chat template; prompts are used as raw text", adapter,
                        self.pretrained)

    # ----- generate ------------------------------------------------------------------------

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        responses = self._unanswerable(requests)
        by_settings: dict[GenerationSettings, list[int]] = {}
        for index, request in enumerate(requests):
            if index not in responses:
                by_settings.setdefault(request.generation, []).append(index)
        for indices in by_settings.values():
            group = [requests[i] for i in indices]
            for index, response in zip(indices, run_split(
                    self._generate_group, group, _out_of_memory_response, _refused_response)):
                responses[index] = response
        return [responses[i] for i in range(len(requests))]

    def _generate_group(self, requests: Sequence[Request]) -> list[Response]:
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        settings = requests[0].generation
        inputs = self._encode([self._render(r) for r in requests], requests)
        # Only token ids come from the checkpoint's generation config; decoding comes from the task.
        config = GenerationConfig(max_new_tokens=settings.max_new_tokens, do_sample=False,
                                  eos_token_id=self.model.generation_config.eos_token_id,
                                  bos_token_id=self.model.generation_config.bos_token_id,
                                  pad_token_id=self.pad_token_id)
        processors = LogitsProcessorList()
        if not settings.greedy:
            processors.append(RowSampler(settings, [r.seed for r in requests]))
        prompt_length = inputs["input_ids"].shape[1]
        stopping = StoppingCriteriaList()
        if settings.until:
            stopping.append(StopOnStrings(self.tokenizer, settings.until, prompt_length))
        with torch.inference_mode():
            output = refusing(self.model.generate, **inputs, generation_config=config,
                              logits_processor=processors, stopping_criteria=stopping)
        new_tokens = output[:, prompt_length:]
        texts = self.tokenizer.batch_decode(new_tokens, skip_special_tokens=True)
        return [Response(request_id=r.request_id, text=cut_at_stop(t, settings.until))
                for r, t in zip(requests, texts)]

    # ----- loglikelihood -------------------------------------------------------------------

    def loglikelihood(self, requests: Sequence[Request]) -> list[Response]:
        for request in requests:
            if not request.continuations or not all(request.continuations):
                raise ValueError(f"{request.request_id}: loglikelihood needs non-empty continuations")
        broken = self._unanswerable(requests)
        rows = [(r, c) for i, r in enumerate(requests) if i not in broken for c in r.continuations]
        scored = (run_split(self._score_rows, rows, _out_of_memory_scoring, _refused_row)
                  if rows else [])
        responses, start = [], 0
        for index, request in enumerate(requests):
            if index in broken:
                responses.append(broken[index])
                continue
            mine = scored[start:start + len(request.continuations)]
            start += len(request.continuations)
            refused = next((s for s in mine if isinstance(s, str)), None)
            if refused is not None:  # a table with a hole in it would skew the choice
                responses.append(Response(request_id=request.request_id, error=refused))
                continue
            responses.append(Response(request_id=request.request_id,
                                      loglikelihoods=tuple(s[0] for s in mine)))
        return responses

    # ----- plumbing ------------------------------------------------------------------------

    def _unanswerable(self, requests: Sequence[Request]) -> dict[int, Response]:
        """Error responses, by position, for requests the model refuses or whose image cannot be decoded."""
        broken: dict[int, Response] = {}
        for index, request in enumerate(requests):
            reason = self.refusal(request)
            if reason is not None:
                broken[index] = Response(request_id=request.request_id, error=reason)
                continue
            for part in request.images:
                try:
                    part.image.load()  # decodes lazily opened files now, not mid-batch
                except (OSError, ValueError, SyntaxError) as exc:
                    broken[index] = Response(request_id=request.request_id,
                                             error=f"unreadable image {part.image_id}: {exc}")
                    break
        return broken

    def _identify(self) -> dict[str, Any]:
        """The files' identity: every relevant file's digest for a local folder, else the hub commit."""
        folder = Path(self.pretrained).expanduser()
        if folder.is_dir():  # weights, tokenizer, processor, chat template, generation config
            return folder_identity(folder)
        commit = getattr(self.model.config, "_commit_hash", None)
        if commit:
            return {"source": "hub", "repo": self.pretrained, "revision": self.revision,
                    "commit": str(commit)}
        found = hub_repo_identity(self.pretrained, self.revision, self.cache_dir)
        if found["commit"] is None:
            log.warning("hf: cannot tell which commit of %s was loaded; its runs cannot be told "
                        "apart from those of another commit (pin revision=COMMIT)", self.pretrained)
        return found

    def identity(self) -> dict[str, Any]:
        return self._identity

    def fingerprint(self) -> str:
        return stable_hash({"base": super().fingerprint(), "chat_template": self.use_chat_template})

    def describe(self) -> dict[str, Any]:
        weights = (self._identity.get("commit") if self._identity.get("source") == "hub"
                   else f"local-{identity_digest(self._identity)}")
        return {**super().describe(), "pretrained": self.pretrained, "weights": weights or "unknown",
                "architecture": type(self.model).__name__, "dtype": str(self.model.dtype),
                "device": str(self.model.device), "chat_template": self.use_chat_template}
