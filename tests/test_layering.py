"""The house's one-way street: commands on top, stages below, records on the ground floor.

Walks every import in harness/ (module level and inside functions) and checks that each
points down: a stage imports only the floors below it and its own package, never a sibling
stage, a command or the cli.
"""

from __future__ import annotations

import ast
from pathlib import Path

import harness

HARNESS = Path(harness.__file__).resolve().parent
#: The floor of each package or top-level module; an import must point to a lower floor
#: (or stay inside its own package). The ground floor's modules may use one another.
FLOORS = {
    "harness.types": 0, "harness.errors": 0, "harness.hashing": 0, "harness.paths": 0,
    "harness.files": 0, "harness.arguments": 0, "harness.safety": 0, "harness.api_keys": 0,
    "harness.identity": 0,
    "harness.registry": 1,
    # statistics are pure functions over arrays: the views that show intervals read them
    "harness.stats": 2,
    "harness.tasks": 3, "harness.models": 3, "harness.reports": 3,
    # lm-eval metrics (judges/metrics.py) read a task YAML's metric_list, !function refs too
    "harness.judges": 4,
    "harness.run": 5, "harness.finetune": 5,
    "harness.commands": 6,
    "harness": 7,  # the package's own evaluate() facade
}


def _unit(module: str) -> str:
    """The package (harness.run) or top-level module (harness.types) ``module`` belongs to."""
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else module


def _imports() -> list[tuple[str, str, int]]:
    """(importing module, imported module, line) for every harness import in harness/."""
    found = []
    for path in sorted(HARNESS.rglob("*.py")):
        parts = path.relative_to(HARNESS.parent).with_suffix("").parts
        module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            found += [(module, name, node.lineno) for name in names
                      if name == "harness" or name.startswith("harness.")]
    return found


def test_every_unit_has_a_floor() -> None:
    units = {_unit(source) for source, _, _ in _imports()} | {_unit(t) for _, t, _ in _imports()}
    assert units <= set(FLOORS), f"give these a floor in FLOORS: {sorted(units - set(FLOORS))}"


def test_nothing_below_the_commands_imports_a_command() -> None:
    upward = [f"{source}:{line} imports {target}" for source, target, line in _imports()
              if target.startswith("harness.commands") and not source.startswith("harness.commands")]
    assert upward == []


def test_every_import_points_down() -> None:
    wrong = []
    for source, target, line in _imports():
        here, there = _unit(source), _unit(target)
        if here == there or (FLOORS[here] == 0 and FLOORS[there] == 0):
            continue
        if FLOORS[there] >= FLOORS[here]:
            wrong.append(f"{source}:{line} imports {target}")
    assert wrong == []


def test_the_walk_sees_imports_inside_functions() -> None:
    """The check must not pass merely because it misses lazy imports."""
    lazy = {(s, t) for s, t, _ in _imports()}
    assert ("harness.commands.cli", "harness.run.evaluate") in lazy
