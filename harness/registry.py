"""Registries of models and judges, with lazy imports.

Built-in adapters are named here as ``"module:attr"`` strings, so listing them imports
neither torch nor transformers. Third-party packages add their own through the entry-point
groups ``vlm_morality_bench.models`` and ``vlm_morality_bench.judges``; code can also use the
``register_model`` / ``register_judge`` decorators directly.

A *model card* (``models/NAME.yaml``) names a registered adapter and its arguments, so a
model that an existing adapter can serve needs no code.
"""

from __future__ import annotations

import importlib
import inspect
import re
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

import yaml

from harness.errors import BenchError, unknown
from harness.paths import MODEL_CARDS_DIR
from harness.safety import check_argument, check_yaml_source

MODEL_GROUP = "vlm_morality_bench.models"
JUDGE_GROUP = "vlm_morality_bench.judges"

BUILTIN_MODELS: dict[str, str] = {
    "always-yes": "harness.models.baselines:AlwaysYes",
    "always-no": "harness.models.baselines:AlwaysNo",
    "random": "harness.models.baselines:RandomAnswer",
    "oracle": "harness.models.baselines:Oracle",
    "magma": "harness.models.magma.adapter:MagmaModel",
    "hf": "harness.models.hf_causal:load_hf",
    "hf-causal": "harness.models.hf_causal:HFCausalModel",
    "openai": "harness.models.openai:OpenAIModel",
}

BUILTIN_JUDGES: dict[str, str] = {
    "reference": "harness.judges.reference:ReferenceJudge",
    "ethics-classifier": "harness.judges.ethics:EthicsClassifierJudge",
    "vlm-judge": "harness.judges.model_judge:ModelJudge",
    "human": "harness.judges.human.judge:HumanJudge",
}

T = TypeVar("T")
_registered: dict[str, dict[str, Any]] = {"model": {}, "judge": {}}


def _register(kind: str, name: str) -> Callable[[T], T]:
    def decorate(cls: T) -> T:
        _registered[kind][name] = cls
        cls.registry_name = name  # type: ignore[attr-defined]
        return cls

    return decorate


def register_model(name: str) -> Callable[[T], T]:
    """Class decorator: make ``name`` resolvable by ``load_model``."""
    return _register("model", name)


def register_judge(name: str) -> Callable[[T], T]:
    """Class decorator: make ``name`` resolvable by ``load_judge``."""
    return _register("judge", name)


@dataclass(frozen=True)
class ModelCard:
    """A declarative model: an adapter plus the arguments to build it with."""

    name: str
    adapter: str
    args: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    path: str = ""


def _entry_points(group: str) -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=group)}


#: Further folders searched for model cards (the run's ``--include-path`` folders).
_card_dirs: list[Path] = []


def add_card_dirs(directories: Sequence[str | Path]) -> None:
    """Also find model cards in ``directories`` (and their sub-folders), e.g. ``--include-path``.

    There, a YAML file is a model card when it has a top-level ``adapter:`` key; task YAMLs
    beside it are left alone.
    """
    for directory in directories:
        path = Path(directory).resolve()
        if path not in _card_dirs:
            _card_dirs.append(path)


def _card_files(extra_dirs: Sequence[Path]) -> list[Path]:
    files = sorted(MODEL_CARDS_DIR.glob("*.yaml"))
    for directory in (*_card_dirs, *(Path(d) for d in extra_dirs)):
        for path in sorted(Path(directory).rglob("*.yaml")):
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            if re.search(r"^adapter\s*:", text, re.MULTILINE) and path not in files:
                files.append(path)
    return files


def model_cards(extra_dirs: tuple[Path, ...] = ()) -> dict[str, ModelCard]:
    """Every model card in ``models/``, the added card folders and ``extra_dirs``, by name.

    A card in a later folder replaces a built-in card of the same name.
    """
    cards: dict[str, ModelCard] = {}
    for path in _card_files(extra_dirs):
        try:
            text = path.read_text()
            check_yaml_source(path, text)
            raw = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise BenchError(f"{path}: not valid YAML ({exc.__class__.__name__}); fix the file") from None
        if not isinstance(raw, dict) or "adapter" not in raw:
            raise BenchError(f"{path}: a model card needs an 'adapter' key naming a registered model")
        known = {"name", "adapter", "args", "description"}
        extra = set(raw) - known
        if extra:
            raise BenchError(f"{path}: unknown key(s) {sorted(extra)}; allowed: {sorted(known)}")
        name = str(raw.get("name", path.stem))
        cards[name] = ModelCard(
            name=name,
            adapter=str(raw["adapter"]),
            args=dict(raw.get("args") or {}),
            description=str(raw.get("description", "")),
            path=str(path),
        )
    return cards


def model_names() -> list[str]:
    """Adapters and model cards, without importing any adapter."""
    names = set(BUILTIN_MODELS) | set(_registered["model"]) | set(_entry_points(MODEL_GROUP))
    return sorted(names | set(model_cards()))


def judge_names() -> list[str]:
    return sorted(set(BUILTIN_JUDGES) | set(_registered["judge"]) | set(_entry_points(JUDGE_GROUP)))


def _resolve(kind: str, name: str, builtins: Mapping[str, str], group: str) -> Any:
    if name in _registered[kind]:
        return _registered[kind][name]
    target = builtins.get(name)
    if target is None:
        entry = _entry_points(group).get(name)
        if entry is None:
            choices = model_names() if kind == "model" else judge_names()
            flag = "--list-models" if kind == "model" else "--list-judges"
            raise unknown(kind, name, choices, f"See {flag}.")
        return entry.load()
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BenchError(
            f"{kind} '{name}' needs a package that is not installed ({exc.name}); "
            "install the extras: pip install -e '.[torch]'"
        ) from None
    return getattr(module, attr)


def _number_kind(hint: Any) -> Any:
    """``int`` or ``float`` when an annotation is one of them (``| None`` allowed), else None."""
    options = {a for a in typing.get_args(hint) if a is not type(None)} or {hint}
    return next(iter(options)) if len(options) == 1 and options <= {int, float} else None


def _check_arguments(kind: str, name: str, factory: Callable[..., Any],
                     params: Mapping[str, inspect.Parameter], args: Mapping[str, Any]) -> None:
    """Required arguments present, numbers finite and in range: one line, never a traceback."""
    flag = "--model-args" if kind == "model" else f"--judge-args {name}."
    missing = [p.name for p in params.values() if p.name != "self" and p.default is p.empty
               and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in args]
    if missing:
        raise BenchError(f"{kind} '{name}' needs the argument '{missing[0]}': pass "
                         f"{flag}{'' if kind == 'judge' else ' '}{missing[0]}=...")
    try:
        hints = typing.get_type_hints(factory.__init__ if inspect.isclass(factory) else factory)
    except Exception:  # noqa: BLE001 - a plug-in's odd annotations only skip the check
        hints = {}
    for key, value in args.items():
        check_argument(f"{kind} '{name}':", key, value, _number_kind(hints.get(key)))


def _construct(kind: str, name: str, factory: Callable[..., Any], args: Mapping[str, Any]) -> Any:
    """Call ``factory(**args)``, turning a wrong argument name or value into a BenchError."""
    params = inspect.signature(factory).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if not takes_any:
        accepted = [p for p in params if p != "self"]
        for key in args:
            if key not in accepted:
                raise unknown(f"argument for {kind} '{name}':", key, accepted,
                              f"Accepted: {', '.join(accepted) or 'none'}.")
    _check_arguments(kind, name, factory, params, args)
    instance = factory(**args)
    instance.registry_name = name
    instance.init_args = dict(args)
    return instance


def model_factory(name: str) -> Any:
    """The adapter class (or factory) that ``load_model(name)`` would call."""
    card = model_cards().get(name)
    adapter = card.adapter if card is not None else name
    return _resolve("model", adapter, BUILTIN_MODELS, MODEL_GROUP)


def load_model(name: str, model_args: Mapping[str, Any] | None = None) -> Any:
    """Build a model by adapter name or model card name; ``model_args`` override the card's.

    A user argument that names which model a generic adapter serves (the adapter's
    ``identity_arg``, e.g. ``pretrained``) becomes part of the model's name:
    ``hf:llava-hf/llava-1.5-7b-hf``.
    """
    args = dict(model_args or {})
    card = model_cards().get(name)
    if card is not None:  # a card may share its adapter's name (models/magma.yaml): its args still apply
        factory = _resolve("model", card.adapter, BUILTIN_MODELS, MODEL_GROUP)
        model = _construct("model", card.adapter, factory, merge_args(card.args, args))
    else:
        factory = _resolve("model", name, BUILTIN_MODELS, MODEL_GROUP)
        model = _construct("model", name, factory, args)
    identity = getattr(factory, "identity_arg", None)
    model.registry_name = f"{name}:{args[identity]}" if identity and args.get(identity) else name
    return model


def merge_args(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` on top of ``base``; nested mappings merge key by key."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_args(merged[key], value)
        else:
            merged[key] = value
    return merged


def load_judge(name: str, judge_args: Mapping[str, Any] | None = None) -> Any:
    factory = _resolve("judge", name, BUILTIN_JUDGES, JUDGE_GROUP)
    return _construct("judge", name, factory, dict(judge_args or {}))
