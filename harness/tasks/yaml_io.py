"""Task YAML files read safely: safe YAML, ``!function`` references and ``include`` chains.

It only reads files; what the keys mean is ``harness.tasks.config``'s to check.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from harness.errors import BenchError, did_you_mean
from harness.hashing import stable_hash
from harness.safety import check_yaml_size, check_yaml_source, inside

_loaded_functions: dict[tuple[str, str], Callable[..., Any]] = {}


@dataclass(frozen=True)
class FunctionRef:
    """A ``!function file.name`` reference, resolved against the folder of its YAML file."""

    spec: str
    base_dir: str

    def load(self, where: str) -> Callable[..., Any]:
        module_name, _, attr = self.spec.rpartition(".")
        if not module_name or not attr or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", module_name):
            raise BenchError(f"{where}: !function '{self.spec}' must be 'module.function' naming "
                             "a .py file beside the YAML (no folders)")
        path = Path(self.base_dir) / f"{module_name}.py"
        cached = _loaded_functions.get((str(path), attr))
        if cached is not None:
            return cached
        if not path.is_file():
            raise BenchError(f"{where}: !function '{self.spec}' needs {path}, which does not exist")
        # A symlink may not lead the import out of the YAML's folder.
        path = inside(path, self.base_dir, f"{where}: !function file")
        unique = f"_vmb_task_fn_{stable_hash(str(path), 10)}_{module_name}"
        spec = importlib.util.spec_from_file_location(unique, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        function = getattr(module, attr, None)
        if not callable(function):
            names = [n for n in vars(module) if not n.startswith("_")]
            raise BenchError(f"{where}: {path.name} has no function '{attr}'.{did_you_mean(attr, names)}")
        _loaded_functions[(str(path), attr)] = function
        return function

    def __str__(self) -> str:
        return f"!function {self.spec}"


# The C loader when PyYAML has it (parsing every task file is on the path of --list-tasks).
class _TaskLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """Safe YAML plus ``!function``; the base folder is set per file."""

    base_dir = "."


def _function_constructor(loader: _TaskLoader, node: yaml.Node) -> FunctionRef:
    spec = loader.construct_scalar(node)  # type: ignore[arg-type]
    return FunctionRef(str(spec).strip(), loader.base_dir)


_TaskLoader.add_constructor("!function", _function_constructor)


_yaml_cache: dict[tuple[str, int, int], dict[str, Any]] = {}


def read_yaml(path: Path) -> dict[str, Any]:
    """One YAML file as a mapping; ``!function`` is the only tag beyond safe YAML."""
    try:
        stat = path.stat()
    except OSError as exc:
        raise BenchError(f"{path}: cannot read ({exc.strerror})") from None
    check_yaml_size(path, stat.st_size)
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _yaml_cache:
        _yaml_cache[key] = _parse_yaml(path)
    return dict(_yaml_cache[key])


def _parse_yaml(path: Path) -> dict[str, Any]:
    loader_cls = type("_Loader", (_TaskLoader,), {"base_dir": str(path.parent)})
    try:
        text = path.read_text(encoding="utf-8")
        check_yaml_source(path, text)
        data = yaml.load(text, Loader=loader_cls)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or exc.__class__.__name__
        raise BenchError(f"{path}{line}: not valid YAML ({problem}); fix the syntax") from None
    except OSError as exc:
        raise BenchError(f"{path}: cannot read ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise BenchError(f"{path}: not UTF-8 text (byte {exc.start}); save the YAML as UTF-8") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BenchError(f"{path}: a task YAML must be a mapping of keys, not {type(data).__name__}")
    return data


def resolve_includes(path: Path, _chain: tuple[Path, ...] = (),
                     sources: dict[str, str] | None = None) -> dict[str, Any]:
    """The file's keys over those of its ``include`` chain (recursive, cycle-checked).

    ``sources``, when given, is filled with the file that holds each key taken from an
    included file, so an error names that file rather than the one including it.
    """
    path = path.resolve()
    if path in _chain:
        cycle = " -> ".join(p.name for p in (*_chain, path))
        raise BenchError(f"{_chain[-1]}:include: include cycle {cycle}; remove one include")
    data = read_yaml(path)
    include = data.pop("include", None)
    if include is None:
        return data
    includes = [include] if isinstance(include, str) else include
    if not isinstance(includes, list) or not all(isinstance(i, str) for i in includes):
        raise BenchError(f"{path}:include: must be a file name or a list of file names")
    merged: dict[str, Any] = {}
    for name in includes:
        target = Path(name) if Path(name).is_absolute() else path.parent / name
        if not target.is_file():
            raise BenchError(f"{path}:include: '{name}' not found next to the YAML ({target})")
        held: dict[str, str] = {}
        included = resolve_includes(target, (*_chain, path), held)
        merged.update(included)
        if sources is not None:
            sources.update({key: held.get(key, str(target.resolve())) for key in included})
    merged.update(data)
    if sources is not None:
        for key in data:
            sources.pop(key, None)
    return merged
