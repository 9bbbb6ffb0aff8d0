"""The ``hf`` adapter: any transformers image-text-to-text model (LLaVA, Idefics, SmolVLM, ...).

Loads through ``AutoProcessor`` + ``AutoModelForImageTextToText``, renders each request with
the model's own chat template (images interleaved where the prompt puts them), batches with
left padding, and maps the task's ``GenerationSettings`` onto ``generate()``.

An answer depends only on its request: each row samples with its own CPU generator seeded
from ``Request.seed`` (see ``_RowSampler``), so batch size and batch mates change nothing.
The model's own ``generation_config`` sampling defaults are deliberately ignored: the task's
settings alone decide how to decode. This module must not know about tasks or judges.
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import torch

from harness.errors import BenchError
from harness.hashing import stable_hash
from harness.identity import folder_identity, hub_repo_identity, identity_digest
from harness.models.base import Model
from harness.models.common import cut_at_stop, install_hint, missing_package, to_rgb
from harness.registry import register_model
from harness.types import GenerationSettings, ImagePart, Request, Response, TextPart

log = logging.getLogger(__name__)
_DTYPES = {"auto": "auto", "float32": torch.float32, "float16": torch.float16,
           "bfloat16": torch.bfloat16}
T = TypeVar("T")


class _RowSampler:
    """A logits processor that samples each batch row with that row's own generator.

    ``generate()`` runs greedy on its output (the chosen token keeps its score, every other
    token gets -inf), so HF still handles caching, padding and stopping while the random
    draw of a row never depends on the other rows. Temperature, top-k and top-p are applied
    here, in float32, on the CPU so the same seed gives the same draw on any device.
    """

    def __init__(self, settings: GenerationSettings, seeds: Sequence[int]) -> None:
        self.settings = settings
        self.generators = [torch.Generator(device="cpu").manual_seed(int(s)) for s in seeds]

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        logits = scores.detach().float().cpu() / self.settings.temperature
        if self.settings.top_k > 0:
            k = min(self.settings.top_k, logits.shape[-1])
            kth = torch.topk(logits, k, dim=-1).values[..., -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if self.settings.top_p < 1.0:
            sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
            cumulative = sorted_logits.softmax(-1).cumsum(-1)
            # Drop a token once the mass before it already reaches top_p; the best one stays.
            drop_sorted = (cumulative - sorted_logits.softmax(-1)) >= self.settings.top_p
            drop = drop_sorted.scatter(-1, order, drop_sorted)
            logits = logits.masked_fill(drop, float("-inf"))
        probs = logits.softmax(-1)
        chosen = torch.stack([torch.multinomial(probs[row], 1, generator=gen)
                              for row, gen in enumerate(self.generators)]).squeeze(-1)
        forced = torch.full_like(scores, float("-inf"))
        forced[torch.arange(scores.shape[0]), chosen.to(scores.device)] = 0.0
        return forced


class _StopOnStrings:
    """A stopping criterion per row: stop once the row's decoded new text holds a stop string.

    It decodes exactly as the final answer is decoded, so it can never stop earlier than the
    cut in ``cut_at_stop`` (HF's token-level ``stop_strings`` can, on byte-level vocabularies).
    """

    def __init__(self, tokenizer: Any, until: Sequence[str], prompt_length: int) -> None:
        self.tokenizer, self.until, self.prompt_length = tokenizer, tuple(until), prompt_length

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_length:], skip_special_tokens=True)
        done = [any(stop in text for stop in self.until) for text in texts]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


def _is_oom(exc: BaseException) -> bool:
    return isinstance(exc, torch.OutOfMemoryError) or "out of memory" in str(exc).lower()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _one_line(exc: BaseException) -> str:
    """The whole message on one line (some are wrapped mid-sentence)."""
    return re.sub(r"\s+", " ", str(exc)).strip() or type(exc).__name__


class _Refused(Exception):
    """The processor or the model rejected an input (not a bug here); the message says why."""


def _refusing(call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """``call``, with its rejections of the input turned into ``_Refused`` (out of memory stays)."""
    try:
        return call(*args, **kwargs)
    except (ValueError, TypeError, IndexError, KeyError, RuntimeError) as exc:
        if _is_oom(exc):
            raise
        raise _Refused(f"{type(exc).__name__}: {_one_line(exc)[:300]}") from exc


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


@register_model("hf")
class HFModel(Model):
    """A transformers VLM loaded from the hub or a local folder.

    Args:
        pretrained: Hub id (``llava-hf/llava-1.5-7b-hf``) or local folder.
        revision: Hub branch, tag or commit; pin a commit for reproducible runs.
        dtype: ``auto`` (the checkpoint's), ``float32``, ``float16`` or ``bfloat16``.
        device_map: Passed to accelerate (``auto`` spreads a large model over GPUs and CPU).
        device: Where to put the model when ``device_map`` is not set; default cuda if present.
        trust_remote_code: Allow the checkpoint's own Python code (only for repos you trust).
        attn_implementation: e.g. ``sdpa``, ``eager``, ``flash_attention_2``.
        use_chat_template: Render prompts with the processor's chat template; without one
            (or when False) the prompt text is used as is, with the image token per image.
        system_prompt: An optional system message placed before the prompt.
        processor_args: Extra keyword arguments for ``AutoProcessor.from_pretrained``.
        cache_dir: Where hub downloads go (default: the Hugging Face cache).
    """

    identity_arg = "pretrained"

    def __init__(self, pretrained: str, revision: str | None = None, dtype: str = "auto",
                 device_map: str | dict[str, Any] | None = None, device: str | None = None,
                 trust_remote_code: bool = False, attn_implementation: str | None = None,
                 use_chat_template: bool = True, system_prompt: str | None = None,
                 processor_args: Mapping[str, Any] | None = None,
                 cache_dir: str | None = None) -> None:
        from transformers import AutoModelForImageTextToText, AutoProcessor

        if dtype not in _DTYPES:
            raise BenchError(f"hf: unknown dtype '{dtype}'; use one of {sorted(_DTYPES)}")
        # A hub id is "name" or "owner/name"; anything else that names no folder is a typo'd
        # path, which transformers would report as a malformed repo id.
        if not Path(pretrained).expanduser().exists() and (
                pretrained.startswith((".", "/", "~")) or pretrained.count("/") > 1):
            raise BenchError(f"hf: no folder {pretrained}; pass --model-args pretrained= a "
                             "local model folder or a hub id (owner/name)")
        self.pretrained, self.revision, self.cache_dir = pretrained, revision, cache_dir
        self.system_prompt = system_prompt
        common: dict[str, Any] = {"revision": revision, "trust_remote_code": trust_remote_code,
                                  "cache_dir": cache_dir}
        try:
            self.processor = AutoProcessor.from_pretrained(pretrained, **common,
                                                           **dict(processor_args or {}))
            load_args: dict[str, Any] = {**common, "dtype": _DTYPES[dtype]}
            if device_map is not None:
                load_args["device_map"] = device_map
            if attn_implementation is not None:
                load_args["attn_implementation"] = attn_implementation
            self.model = AutoModelForImageTextToText.from_pretrained(pretrained, **load_args)
        except (ImportError, OSError, ValueError) as exc:
            missing = missing_package(exc)
            if missing is not None:  # e.g. a processor that needs torchvision for its video half
                raise BenchError(f"hf: '{pretrained}' needs the package {missing}, which is not "
                                 f"installed; {install_hint(missing)}") from None
            if isinstance(exc, ImportError):
                raise BenchError(f"hf: '{pretrained}' needs a package that is not installed: "
                                 f"{_one_line(exc)}") from None
            raise BenchError(f"hf: cannot load '{pretrained}': {_first_line(exc)}. Check the hub id "
                             "or folder (and network access, or HF_HUB_OFFLINE=1 with a cached "
                             "copy)") from None
        if device_map is None:
            self.model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))  # type: ignore[arg-type]
        self.model.eval()

        self.tokenizer = getattr(self.processor, "tokenizer", self.processor)
        self.tokenizer.padding_side = "left"  # generation continues from the right end
        self.pad_token_id = (self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None
                             else self.tokenizer.eos_token_id)
        # Some repositories keep the template only in the tokenizer's config.
        self.chat_template: str | None = (getattr(self.processor, "chat_template", None)
                                          or getattr(self.tokenizer, "chat_template", None))
        self.use_chat_template = use_chat_template and bool(self.chat_template)
        if use_chat_template and not self.chat_template:
            log.warning("hf: %s has no chat template; prompts are used as raw text", pretrained)
        self.image_token = str(getattr(self.processor, "image_token", "<image>"))
        # PaliGemma's processor splits prefix from suffix itself (the suffix attends causally,
        # the prefix bidirectionally): scoring must hand it the continuation as the suffix.
        self._suffix_scoring = "suffix" in inspect.signature(type(self.processor).__call__).parameters
        self._text_only_refusal = self._probe_text_only()
        self._tokenizer_adds_bos = self._probe_tokenizer_bos()
        self._bos_from_tokenizer: dict[tuple[bool, bool], bool] = {}
        self._identity = self._identify()

    # ----- prompts -------------------------------------------------------------------------

    def _render(self, request: Request) -> str:
        """The request as the model's prompt string, image placeholders where images stand."""
        if not self.use_chat_template:
            return "".join(p.text if isinstance(p, TextPart) else self.image_token
                           for p in request.parts)
        content: list[dict[str, str]] = []
        for part in request.parts:
            if isinstance(part, ImagePart):
                content.append({"type": "image"})
            elif content and content[-1]["type"] == "text":
                content[-1]["text"] += part.text
            else:
                content.append({"type": "text", "text": part.text})
        messages: list[dict[str, Any]] = []
        if self.system_prompt:
            messages.append({"role": "system",
                             "content": [{"type": "text", "text": self.system_prompt}]})
        messages.append({"role": "user", "content": content})
        return str(self.processor.apply_chat_template(messages, chat_template=self.chat_template,
                                                      add_generation_prompt=True, tokenize=False))

    def _probe_text_only(self) -> str | None:
        """Why the processor refuses a prompt without images (PaliGemma's does), or None."""
        try:
            self.processor(text=["probe"], return_tensors="pt")
        except (ValueError, TypeError) as exc:
            return f"{type(self.processor).__name__} needs an image in every prompt ({_first_line(exc)})"
        return None

    def _probe_tokenizer_bos(self) -> bool:
        """Whether the tokenizer itself prepends BOS when asked to add special tokens."""
        bos = self.tokenizer.bos_token_id
        if bos is None:
            return False
        with_special = self.tokenizer("a", add_special_tokens=True).input_ids
        return bool(with_special) and with_special[0] == bos

    def _encode(self, texts: list[str], requests: Sequence[Request],
                suffixes: Sequence[str] | None = None) -> Any:
        """Tokenize a left-padded batch, each row with its request's images in order.

        Exactly one BOS per row: the rendered text, the processor (Mllama and PaliGemma insert
        it themselves) or the tokenizer adds it, and which one is detected on the first batch
        of each kind, never assumed.
        """
        images = [[to_rgb(p.image) for p in r.images] for r in requests]
        kwargs: dict[str, Any] = {"text": texts, "return_tensors": "pt", "padding": True,
                                  "add_special_tokens": False}
        if any(images):
            kwargs["images"] = images
        if suffixes is not None:
            kwargs["suffix"] = list(suffixes)
        inputs = _refusing(self.processor, **kwargs)
        bos = self.tokenizer.bos_token_id
        kind = (bool(any(images)), bool(self.tokenizer.bos_token)
                and all(t.startswith(self.tokenizer.bos_token) for t in texts))
        if kind not in self._bos_from_tokenizer:
            rows = [[i for i, keep in zip(ids, mask) if keep] for ids, mask in
                    zip(inputs["input_ids"].tolist(), inputs["attention_mask"].tolist())]
            has_bos = bos is not None and all(bos in row for row in rows)
            self._bos_from_tokenizer[kind] = self._tokenizer_adds_bos and not has_bos
        if self._bos_from_tokenizer[kind]:
            inputs = _refusing(self.processor, **{**kwargs, "add_special_tokens": True})
        inputs.pop("labels", None)  # PaliGemma's training labels: scoring reads the ids itself
        # Floating tensors (pixel values) follow the model's dtype; ids stay integers.
        return inputs.to(self.model.device, dtype=self.model.dtype)

    # ----- generate ------------------------------------------------------------------------

    def generate(self, requests: Sequence[Request]) -> list[Response]:
        responses = self._unanswerable(requests)
        by_settings: dict[GenerationSettings, list[int]] = {}
        for index, request in enumerate(requests):
            if index not in responses:
                by_settings.setdefault(request.generation, []).append(index)
        for indices in by_settings.values():
            group = [requests[i] for i in indices]
            for index, response in zip(indices, self._run_split(
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
            processors.append(_RowSampler(settings, [r.seed for r in requests]))
        prompt_length = inputs["input_ids"].shape[1]
        stopping = StoppingCriteriaList()
        if settings.until:
            stopping.append(_StopOnStrings(self.tokenizer, settings.until, prompt_length))
        with torch.inference_mode():
            output = _refusing(self.model.generate, **inputs, generation_config=config,
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
        scored = (self._run_split(self._score_rows, rows, _out_of_memory_scoring, _refused_row)
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
                                      loglikelihoods=tuple(s[0] for s in mine),
                                      is_greedy=tuple(s[1] for s in mine)))
        return responses

    def _score_rows(self, rows: Sequence[tuple[Request, str]]) -> list[tuple[float, bool]]:
        """Each row's continuation log-probability and whether it is the greedy one."""
        requests = [r for r, _ in rows]
        contexts = [self._render(r) for r in requests]
        if self._suffix_scoring:
            inputs = self._encode(contexts, requests, suffixes=[c for _, c in rows])
            spans = self._suffix_spans(inputs)
        else:
            inputs = self._encode([ctx + cont for ctx, (_, cont) in zip(contexts, rows)], requests)
            spans = self._continuation_spans(inputs, contexts, requests)
        with torch.inference_mode():
            logits = _refusing(self.model, **inputs).logits
        results = []
        for row, (start, end) in enumerate(spans):
            if end <= start:
                raise _Refused(f"continuation {rows[row][1]!r} adds no tokens to the prompt")
            # Position p's logits predict token p + 1.
            row_lp = logits[row, start - 1:end - 1].float().log_softmax(-1)
            row_targets = inputs["input_ids"][row, start:end]
            total = row_lp.gather(-1, row_targets[:, None]).sum().item()
            greedy = bool((row_lp.argmax(-1) == row_targets).all().item())
            results.append((float(total), greedy))
        return results

    def _continuation_spans(self, inputs: Any, contexts: Sequence[str],
                            requests: Sequence[Request]) -> list[tuple[int, int]]:
        """Where each row's continuation lies: what the full encoding adds to the context's.

        The processor may put anything around the text (PaliGemma appends "\n", others an
        end token), so the continuation is what differs between the processor's encoding of
        the context alone and of context + continuation: after their common prefix, before
        their common suffix (which may not reach into that prefix).
        """
        context_ids: dict[str, list[int]] = {}
        spans = []
        for row, (context, request) in enumerate(zip(contexts, requests)):
            if request.request_id not in context_ids:
                alone = self._encode([context], [request])
                context_ids[request.request_id] = alone["input_ids"][0].tolist()
            ctx = context_ids[request.request_id]
            mask = inputs["attention_mask"][row].tolist()
            pad = mask.index(1) if 1 in mask else len(mask)
            full = inputs["input_ids"][row, pad:].tolist()
            prefix = 0
            while prefix < min(len(ctx), len(full)) and ctx[prefix] == full[prefix]:
                prefix += 1
            suffix = 0
            while (suffix < len(ctx) - prefix and suffix < len(full) - prefix
                   and ctx[-1 - suffix] == full[-1 - suffix]):
                suffix += 1
            spans.append((pad + prefix, pad + len(full) - suffix))
        return spans

    def _suffix_spans(self, inputs: Any) -> list[tuple[int, int]]:
        """The suffix tokens the processor marked (token type 1), less the end token it appends."""
        spans = []
        for types, ids in zip(inputs["token_type_ids"].tolist(), inputs["input_ids"].tolist()):
            marked = [i for i, kind in enumerate(types) if kind == 1]
            if not marked:
                raise _Refused("the processor marked no suffix tokens")
            end = marked[-1] + 1
            if ids[end - 1] == self.tokenizer.eos_token_id:
                end -= 1
            spans.append((marked[0], end))
        return spans

    # ----- plumbing ------------------------------------------------------------------------

    def refusal(self, request: Request) -> str | None:
        if self._text_only_refusal and not request.images:
            return f"hf: {self._text_only_refusal}"
        return None

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

    def _run_split(self, run: Callable[[Sequence[T]], list[Any]], items: Sequence[T],
                   out_of_memory: Callable[[T], Any],
                   refused: Callable[[T, BaseException], Any]) -> list[Any]:
        """Run a batch; on failure split it, down to the items that fail alone.

        Out of memory halves the batch (a lone item that still fails goes to
        ``out_of_memory``). A processor or model that refuses an input (a ValueError and the
        like: too many images, an unsupported size) is found by bisection and only that item
        gets an error, with the reason, from ``refused``. Errors of this module's own code
        raise as they are.
        """
        try:
            return run(items)
        except (torch.OutOfMemoryError, RuntimeError, _Refused) as exc:
            oom = _is_oom(exc)
            if not oom and not isinstance(exc, _Refused):
                raise
            if oom and torch.cuda.is_available():
                torch.cuda.empty_cache()
            if len(items) == 1:
                return [out_of_memory(items[0]) if oom else refused(items[0], exc)]
            half = len(items) // 2
            return (self._run_split(run, items[:half], out_of_memory, refused)
                    + self._run_split(run, items[half:], out_of_memory, refused))

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
