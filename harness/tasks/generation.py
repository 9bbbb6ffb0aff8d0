"""lm-eval's ``generation_kwargs`` as this harness's ``GenerationSettings``, with lm-eval's defaults."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from harness.errors import BenchError
from harness.safety import as_float, as_int
from harness.types import GenerationSettings


def generation_settings(kwargs: Mapping[str, Any], where: str,
                        fewshot_delimiter: str = "\n\n") -> GenerationSettings:
    """lm-eval ``generation_kwargs`` as our settings, with lm-eval's defaults.

    What a YAML leaves out is lm-eval's: greedy unless a temperature above 0 is given, at most
    256 new tokens (``max_gen_toks`` before ``max_new_tokens``), and stop at the
    ``fewshot_delimiter`` unless ``until`` is given.
    """
    settings = GenerationSettings(max_new_tokens=256, temperature=0.0, until=(fewshot_delimiter,))
    values: dict[str, Any] = {}
    at = f"{where}:generation_kwargs"
    for key in ("max_new_tokens", "max_gen_toks"):  # max_gen_toks wins, as in lm-eval
        if key in kwargs:
            values["max_new_tokens"] = as_int(f"{at}.{key}", kwargs[key], 1)
    if "temperature" in kwargs:
        values["temperature"] = as_float(f"{at}.temperature", kwargs["temperature"], 0.0)
    if "top_k" in kwargs:
        values["top_k"] = as_int(f"{at}.top_k", kwargs["top_k"], 0)
    if "top_p" in kwargs:
        values["top_p"] = as_float(f"{at}.top_p", kwargs["top_p"], 0.0, 1.0, above=True)
    if kwargs.get("do_sample") is False:
        values["temperature"] = 0.0
    until = kwargs.get("until")
    if until is not None:
        values["until"] = (until,) if isinstance(until, str) else tuple(str(u) for u in until)
    settings = replace(settings, **values)
    if settings.max_new_tokens < 1 or settings.temperature < 0 or settings.top_k < 0:
        raise BenchError(f"{where}:generation_kwargs: max_new_tokens must be >= 1, temperature "
                         "and top_k >= 0")
    return settings
