"""Rendering one document's fields: ``doc_to_text``, ``doc_to_choice``, ``doc_to_target``, images.

Templates are Jinja2 in its immutable sandbox (StrictUndefined: a missing field is an error,
never an empty string; a template reaching for code is an error, never run); ``!function``
references are called with the document. It draws no demonstrations and builds no request.
"""

from __future__ import annotations

import ast
import functools
import inspect
import json
import re
from collections.abc import Callable, Mapping
from typing import Any

import jinja2

from harness.errors import BenchError, did_you_mean
from harness.safety import sandbox_violation, template_environment
from harness.tasks.config import TaskConfig
from harness.tasks.yaml_io import FunctionRef


@functools.lru_cache(maxsize=256)
def _template(source: str) -> jinja2.Template:
    """A compiled template: compiling costs far more than rendering, and a task renders the
    same few templates for every item."""
    return template_environment().from_string(source)


def document_id(doc: Mapping[str, Any], index: int) -> str:
    """A document's id: its ``id`` field, else its position in the split."""
    return str(doc.get("id", index))


class Renderer:
    """One task config's document fields, rendered per document."""

    def __init__(self, config: TaskConfig) -> None:
        self.config = config

    def value(self, key: str, spec: Any, doc: Mapping[str, Any], doc_id: str) -> Any:
        """``spec`` (a column name, a template, a ``!function`` or a literal) for ``doc``."""
        where = f"{self.config.source}:{key}"
        if isinstance(spec, FunctionRef):
            return call_doc_function(spec.load(where), doc, self.config.lmms_eval_specific_kwargs)
        if isinstance(spec, str):
            if spec in doc:
                return doc[spec]
            try:
                return _template(spec).render(**doc)
            except jinja2.exceptions.SecurityError as exc:
                raise sandbox_violation(where, exc) from None
            except jinja2.UndefinedError as exc:
                missing = re.search(r"'([^']+)' is undefined", str(exc))
                name = missing.group(1) if missing else str(exc)
                raise BenchError(f"{where}: template uses '{name}', which item {doc_id} lacks."
                                 f"{did_you_mean(name, doc)}") from None
            except jinja2.TemplateError as exc:
                raise BenchError(f"{where}: bad template ({exc}); fix the Jinja syntax") from None
        if isinstance(spec, list):
            return [self.value(key, item, doc, doc_id) if isinstance(item, str) and "{{" in item
                    else item for item in spec]
        return spec

    def text(self, doc: Mapping[str, Any], doc_id: str, spec: Any = None) -> str:
        """``doc_to_text`` (or ``spec``, e.g. a fewshot_config override) for one document."""
        return str(self.value("doc_to_text", spec if spec is not None else self.config.doc_to_text,
                              doc, doc_id))

    def choices(self, doc: Mapping[str, Any], doc_id: str, spec: Any = None) -> tuple[str, ...]:
        if self.config.output_type != "multiple_choice":
            return ()
        value = self.value("doc_to_choice", spec if spec is not None else self.config.doc_to_choice,
                           doc, doc_id)
        if isinstance(value, str) and value.strip().startswith("["):
            try:
                value = ast.literal_eval(value.strip())
            except (ValueError, SyntaxError):
                pass
        if not isinstance(value, list | tuple) or len(value) < 2:
            raise BenchError(f"{self.config.source}:doc_to_choice: item {doc_id} gave {value!r}; "
                             "choices must be a list of at least two strings")
        return tuple(str(v) for v in value)

    def target(self, doc: Mapping[str, Any], doc_id: str, choices: tuple[str, ...],
               spec: Any = None) -> tuple[str, int | None]:
        """The reference answer, and its index when the task has choices."""
        value = self.value("doc_to_target", spec if spec is not None else self.config.doc_to_target,
                           doc, doc_id)
        if not choices:
            return str(value), None
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value.strip())
        if isinstance(value, int) and not isinstance(value, bool):
            if not 0 <= value < len(choices):
                raise BenchError(f"{self.config.source}:doc_to_target: item {doc_id} gave index "
                                 f"{value}, outside its {len(choices)} choices")
            return choices[value], value
        if str(value) in choices:
            return str(value), choices.index(str(value))
        raise BenchError(f"{self.config.source}:doc_to_target: item {doc_id} gave {value!r}, "
                         f"neither an index nor one of {list(choices)}")

    def input_index(self, doc: Mapping[str, Any], doc_id: str, spec: Any = None) -> int | None:
        """``doc_to_text`` as lm-eval's multiple-input form reads it: the index of the right
        context among ``doc_to_choice`` (winogrande), or None when it is a prompt."""
        if self.config.doc_to_choice is None:
            return None
        spec = spec if spec is not None else self.config.doc_to_text
        value = self.value("doc_to_text", spec, doc, doc_id)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        # lm-eval reads a template (not a column) that renders to digits as a number.
        if isinstance(value, str) and value.isdigit() and not (isinstance(spec, str) and spec in doc):
            return int(value)
        return None

    def raw_target(self, doc: Mapping[str, Any], doc_id: str, spec: Any = None) -> str:
        """``doc_to_target`` as text, not read as a choice (a multiple-input continuation)."""
        value = self.value("doc_to_target", spec if spec is not None else self.config.doc_to_target,
                           doc, doc_id)
        return str(value[0] if isinstance(value, list) else value)

    def gen_prefix(self, spec: str | None, doc: Mapping[str, Any], doc_id: str) -> str:
        """``gen_prefix`` rendered for one document ('' when none is set)."""
        return str(self.value("gen_prefix", spec, doc, doc_id)) if spec else ""

    def images(self, doc: Mapping[str, Any], doc_id: str) -> list[Any]:
        spec = self.config.doc_to_image
        if spec is None:
            return []
        names = spec if isinstance(spec, list) else [spec]
        found: list[Any] = []
        for name in names:
            if isinstance(name, FunctionRef):
                value = call_doc_function(name.load(f"{self.config.source}:doc_to_image"), doc,
                                          self.config.lmms_eval_specific_kwargs)
            elif isinstance(name, str) and name in doc:
                value = doc[name]
            else:
                raise BenchError(f"{self.config.source}:doc_to_image: item {doc_id} has no column "
                                 f"'{name}'.{did_you_mean(str(name), doc)}")
            for image in value if isinstance(value, list) else [value]:
                if not (hasattr(image, "mode") and hasattr(image, "size")):
                    raise BenchError(f"{self.config.source}:doc_to_image: item {doc_id}'s '{name}' "
                                     "is not an image")
                found.append(image)
        return found


def call_doc_function(function: Callable[..., Any], doc: Mapping[str, Any],
                      lmms_kwargs: Mapping[str, Any]) -> Any:
    """A document function; one that takes a second argument gets lmms-eval's ``default`` kwargs."""
    try:
        params = [p for p in inspect.signature(function).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    if len(params) >= 2 and (lmms_kwargs or params[1].default is inspect.Parameter.empty):
        settings = lmms_kwargs.get("default", lmms_kwargs) if lmms_kwargs else None
        return function(doc, settings)
    return function(doc)


def needs_delimiter(prefix: str, suffix: str) -> bool:
    """lm-eval's ``requires_delimiter``: neither side has whitespace where they join."""
    return bool(prefix) and bool(suffix) and not (prefix[-1].isspace() or suffix[0].isspace())


def json_safe_doc(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The document without images and with every value JSON-serialisable."""
    safe: dict[str, Any] = {}
    for key, value in doc.items():
        if hasattr(value, "mode") and hasattr(value, "size"):
            continue
        try:
            json.dumps(value)
            safe[key] = value
        except TypeError:
            safe[key] = str(value)
    return safe
