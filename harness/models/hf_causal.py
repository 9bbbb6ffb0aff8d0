"""The text half of ``hf``: transformers causal language models (GPT-2, Llama, Qwen, ...).

``--model hf`` reads the checkpoint's config first (``load_hf``): a config with no vision
part (no ``vision_config``, a ``model_type`` that transformers maps to a causal LM but not to
an image-text-to-text model) is served by ``HFCausalModel`` through
``AutoModelForCausalLM`` + ``AutoTokenizer``; everything else by the VLM adapter in
``harness/models/hf.py``. ``--model hf-causal`` forces this adapter.

Prompts and scores follow lm-evaluation-harness's ``HFLM`` so that numbers compare:
- the prompt is the request's text as is (``use_chat_template=True`` applies the tokenizer's
  template instead); the tokenizer adds its own special tokens unless the text starts with BOS;
- a continuation is scored as lm-eval's ``_encode_pair`` does: trailing spaces of the context
  move into the continuation, the whole string is encoded and the context's tokens cut off;
- ``loglikelihood_rolling`` scores the whole prompt text in disjoint windows of the model's
  context length, the first conditioned on the BOS (else EOS) token.
Sampling is seeded per request exactly as the VLM path is (one CPU generator per row).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import torch

from harness.errors import BenchError, unknown
from harness.models.base import Model
from harness.models.hf import HFModel
from harness.models.hf_common import TransformersModel, check_dtype, first_line, load_pretrained
from harness.models.hf_rows import run_split
from harness.registry import register_model
from harness.types import ImagePart, Request, Response, TextPart

#: As lm-eval: the context length when neither the config nor the tokenizer names one.
DEFAULT_MAX_LENGTH = 2048
_SEQLEN_ATTRS = ("n_positions", "max_position_embeddings", "n_ctx")
_TOKENIZER_INFINITY = 1_000_000_000_000_000_019_884_624_838_656


def is_text_only(config: Any) -> bool:
    """Whether a transformers config describes a text-only causal LM (no vision part)."""
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
        MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES,
    )

    model_type = getattr(config, "model_type", None)
    if getattr(config, "vision_config", None) is not None:
        return False
    if model_type in MODEL_FOR_IMAGE_TEXT_TO_TEXT_MAPPING_NAMES:
        return False
    return model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES


def _checked_args(cls: type, args: Mapping[str, Any]) -> None:
    accepted = [p for p in inspect.signature(cls).parameters if p != "self"]
    for key in args:
        if key not in accepted:
            raise unknown(f"argument for model '{cls.registry_name}':", key,  # type: ignore[attr-defined]
                          accepted, f"Accepted: {', '.join(accepted)}.")


def load_hf(pretrained: str, **kwargs: Any) -> Model:
    """``--model hf``: the causal-LM adapter for a text checkpoint, the VLM adapter otherwise."""
    cls: type[HFModel] | type[HFCausalModel] = HFModel
    try:
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(
            pretrained, revision=kwargs.get("revision"), cache_dir=kwargs.get("cache_dir"),
            trust_remote_code=bool(kwargs.get("trust_remote_code", False)))
    except Exception:  # noqa: BLE001 - the VLM adapter reports an unloadable checkpoint precisely
        config = None
    if config is not None and is_text_only(config):
        cls = HFCausalModel
    _checked_args(cls, kwargs)
    return cls(pretrained, **kwargs)




def _out_of_memory_window(window: tuple[list[int], list[int]]) -> tuple[float, bool]:
    raise BenchError(f"hf-causal: out of memory scoring one window of {len(window[1])} tokens; "
                     "pass a smaller max_length or dtype")


def _refused_window(window: tuple[list[int], list[int]], exc: BaseException) -> tuple[float, bool]:
    raise BenchError(f"hf-causal: the model refused a window of {len(window[1])} tokens: {exc}")


@register_model("hf-causal")
class HFCausalModel(TransformersModel):
    """A transformers causal LM from the hub or a local folder (text only).

    Args:
        pretrained: Hub id or local folder.
        revision: Hub branch, tag or commit.
        dtype: ``auto``, ``float32``, ``float16`` or ``bfloat16``.
        device_map: Passed to accelerate (``auto`` spreads a large model).
        device: Where to put the model without ``device_map``; default cuda if present.
        trust_remote_code: Allow the checkpoint's own Python code.
        attn_implementation: e.g. ``sdpa``, ``eager``.
        use_chat_template: Wrap each prompt in the tokenizer's chat template (lm-eval's
            ``--apply_chat_template``); off by default, as in lm-eval.
        system_prompt: A system message, used only with the chat template.
        max_length: Context length in tokens (default: the config's, as lm-eval resolves it).
        cache_dir: Where hub downloads go.
    """

    preferred_batch_size = 8

    def __init__(self, pretrained: str, revision: str | None = None, dtype: str = "auto",
                 device_map: str | dict[str, Any] | None = None, device: str | None = None,
                 trust_remote_code: bool = False, attn_implementation: str | None = None,
                 use_chat_template: bool = False, system_prompt: str | None = None,
                 max_length: int | None = None, cache_dir: str | None = None) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        check_dtype("hf-causal", dtype)
        self.pretrained, self.revision, self.cache_dir = pretrained, revision, cache_dir
        self.system_prompt = system_prompt
        common: dict[str, Any] = {"revision": revision, "trust_remote_code": trust_remote_code,
                                  "cache_dir": cache_dir}
        try:
            tokenizer = AutoTokenizer.from_pretrained(pretrained, **common)
            self.model = load_pretrained(AutoModelForCausalLM, pretrained, common, dtype,
                                         device_map, device, attn_implementation)
        except (OSError, ValueError) as exc:
            raise BenchError(f"hf-causal: cannot load '{pretrained}': {first_line(exc)}. Check "
                             "the hub id or folder") from None
        self._use_tokenizer(tokenizer, getattr(tokenizer, "chat_template", None),
                            use_chat_template, "hf-causal")
        self.max_length = int(max_length) if max_length else self._resolve_max_length()
        self._identity = self._identify()

    def _resolve_max_length(self) -> int:
        """lm-eval's ``resolve_max_length``: text_config, config, tokenizer, then 2048."""
        config = self.model.config
        for source in (getattr(config, "text_config", None), config):
            for attr in _SEQLEN_ATTRS:
                value = getattr(source, attr, None) if source is not None else None
                if isinstance(value, int) and value > 0:
                    return value
        limit = getattr(self.tokenizer, "model_max_length", None)
        if isinstance(limit, int) and 0 < limit < _TOKENIZER_INFINITY:
            return limit
        return DEFAULT_MAX_LENGTH

    # ----- prompts -------------------------------------------------------------------------

    def _render(self, request: Request) -> str:
        text = "".join(p.text for p in request.parts if isinstance(p, TextPart))
        if not self.use_chat_template:
            return text
        messages = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        messages.append({"role": "user", "content": text})
        return str(self.tokenizer.apply_chat_template(messages, add_generation_prompt=True,
                                                      tokenize=False))

    def _special_tokens(self, text: str) -> dict[str, bool]:
        bos = self.tokenizer.bos_token
        return {"add_special_tokens": False} if bos and text.startswith(bos) else {}

    def _encode(self, texts: list[str], requests: Sequence[Request],
                suffixes: Sequence[str] | None = None) -> Any:
        """A left-padded batch for generation (lm-eval's ``tok_batch_encode``)."""
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        encoded = self.tokenizer(texts, return_tensors="pt", padding="longest",
                                 **self._special_tokens(texts[0]))
        return encoded.to(self.model.device)

    def _tokens(self, text: str) -> list[int]:
        return list(self.tokenizer.encode(text, **self._special_tokens(text)))

    @property
    def prefix_token_id(self) -> int:
        if self.tokenizer.bos_token_id is not None:
            return int(self.tokenizer.bos_token_id)
        return int(self.tokenizer.eos_token_id)

    def refusal(self, request: Request) -> str | None:
        """A text model cannot see images: such requests fail one by one, with the reason."""
        if any(isinstance(p, ImagePart) for p in request.parts):
            return "hf-causal: a text-only model cannot take images; use a VLM"
        return None

    # ----- loglikelihood -------------------------------------------------------------------

    def encode_pair(self, context: str, continuation: str) -> tuple[list[int], list[int]]:
        """Context and continuation tokens, split as lm-eval's ``_encode_pair`` splits them."""
        if not context:
            tokens = list(self.tokenizer.encode(continuation, add_special_tokens=False))
            if tokens and tokens[0] != self.prefix_token_id:
                return [self.prefix_token_id], tokens
            return tokens[:1], tokens[1:]
        spaces = len(context) - len(context.rstrip())
        if spaces:
            continuation, context = context[-spaces:] + continuation, context[:-spaces]
        whole, head = self._tokens(context + continuation), self._tokens(context)
        return head, whole[len(head):]

    def _score_rows(self, rows: Sequence[tuple[Request, str]]) -> list[tuple[float, bool]]:
        pairs = [self.encode_pair(self._render(r), c) for r, c in rows]
        return self._score_tokens(pairs, [f"{r.request_id} {c!r}" for r, c in rows])

    def _score_tokens(self, pairs: Sequence[tuple[list[int], list[int]]],
                      names: Sequence[str]) -> list[tuple[float, bool]]:
        """(sum of log-probs, greedy?) of each continuation after its context; one forward pass."""
        inputs = []
        for (context, continuation), name in zip(pairs, names):
            if not continuation:
                raise ValueError(f"{name}: the continuation adds no tokens to the prompt")
            inputs.append((context + continuation)[-(self.max_length + 1):][:-1])
        width = max(len(i) for i in inputs)
        ids = torch.full((len(inputs), width), int(self.pad_token_id), dtype=torch.long)
        mask = torch.zeros((len(inputs), width), dtype=torch.long)
        for row, tokens in enumerate(inputs):  # right padding: no position moves
            ids[row, :len(tokens)] = torch.tensor(tokens)
            mask[row, :len(tokens)] = 1
        with torch.inference_mode():
            logits = self.model(input_ids=ids.to(self.model.device),
                                attention_mask=mask.to(self.model.device)).logits.float().cpu()
        log_probs = logits.log_softmax(-1)
        results = []
        for row, ((_, continuation), tokens) in enumerate(zip(pairs, inputs)):
            end = len(tokens)
            row_lp = log_probs[row, end - len(continuation):end]
            target = torch.tensor(continuation)
            total = row_lp.gather(-1, target[:, None]).sum().item()
            results.append((float(total), bool((row_lp.argmax(-1) == target).all().item())))
        return results

    def rolling_windows(self, text: str) -> list[tuple[list[int], list[int]]]:
        """lm-eval's disjoint rolling windows over ``text``'s tokens (context length 1)."""
        tokens = self._tokens(text)
        windows: list[tuple[list[int], list[int]]] = []
        if not tokens:
            return windows
        first = min(self.max_length, len(tokens))
        windows.append(([self.prefix_token_id] + tokens[:first - 1], tokens[:first]))
        predicted = first
        while predicted < len(tokens):
            size = min(len(tokens) - predicted, self.max_length)
            end = predicted + size
            windows.append((tokens[max(end - self.max_length - 1, 0):end - 1], tokens[end - size:end]))
            predicted += size
        # make_disjoint_window: the context stops where the scored tokens begin.
        return [(context[:len(context) - (len(scored) - 1)], scored) for context, scored in windows]

    def _score_windows(self, name: str, windows: Sequence[tuple[list[int], list[int]]]
                       ) -> list[tuple[float, bool]]:
        return self._score_tokens(windows, [name] * len(windows))

    def loglikelihood_rolling(self, requests: Sequence[Request]) -> list[Response]:
        """The log-likelihood of each request's whole prompt text (perplexity tasks)."""
        broken = self._unanswerable(requests)
        responses: list[Response] = []
        for index, request in enumerate(requests):
            if index in broken:
                responses.append(broken[index])
                continue
            windows = self.rolling_windows(self._render(request))
            if not windows:
                responses.append(Response(request_id=request.request_id, error="empty text to score"))
                continue
            scored = run_split(partial(self._score_windows, request.request_id),
                                     windows, _out_of_memory_window, _refused_window)
            responses.append(Response(request_id=request.request_id,
                                      loglikelihoods=(sum(s[0] for s in scored),)))
        return responses

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "max_length": self.max_length}



def _union_signature(*classes: type) -> inspect.Signature:
    """Every argument either adapter accepts (keyword-only): what ``hf`` may be given."""
    seen: dict[str, inspect.Parameter] = {}
    for cls in classes:
        for name, param in inspect.signature(cls).parameters.items():
            seen.setdefault(name, param.replace(kind=inspect.Parameter.KEYWORD_ONLY)
                            if name != "pretrained" else param)
    return inspect.Signature(list(seen.values()))


load_hf.identity_arg = "pretrained"  # type: ignore[attr-defined]
load_hf.__signature__ = _union_signature(HFModel, HFCausalModel)  # type: ignore[attr-defined]
# ``hf`` names the dispatcher, not the VLM class that harness/models/hf.py registers.
register_model("hf")(load_hf)
