"""Choosing leaderboard rows and laying them out as views, ready for any renderer.

Which row is the latest: rows are grouped by (model, variant, task, shots, split, judge,
seed); in each group the row with the greatest ``date`` (ISO 8601) wins, and on equal dates
the one later in the file. The ``paper`` view lays rows out like the paper's Table 1 (judges
x 0/1/2-shot on train) and Table 2 (model variants x 0-shot train / test).

The headline number is strict accuracy (aligned over all items; refusals, unclear answers
and errors count as not aligned), as the paper's percentages are; scored accuracy stays
beside it. Rows written before strict accuracy existed show scored accuracy, marked so.

This module renders nothing and reads no file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import BenchError, unknown
from harness.stats.intervals import RELIABLE_MIN_CLUSTERS

VIEWS = ("rows", "paper")
ENTRY_KEY = ("model", "variant", "sampler", "task", "shots", "split", "judge", "seed")
PAPER_SHOTS = (0, 1, 2)
REPEAT_FIELDS = ("majority_accuracy", "consistency")
#: The instrument's metrics after strict accuracy (harness.run.metrics.METRICS), shown only
#: where some row has them.
INSTRUMENT_FIELDS = ("pair_consistency", "yes_rate", "yes_bias", "image_reliance",
                     "trap_accuracy", "echo_rate")
_WITH_CI = ("strict_accuracy", *INSTRUMENT_FIELDS)

# Display columns of the rows view: (header, row field); accuracies and the instrument's
# metrics show value and CI.
DISPLAY_COLUMNS = (
    ("model", "model"), ("variant", "variant"), ("sampler", "sampler"), ("task", "task"), ("shots", "shots"),
    ("split", "split"), ("judge", "judge"), ("strict accuracy [95% CI]", "strict_accuracy"),
    ("scored accuracy [95% CI]", "accuracy"),
    ("scored/n", "n"), ("repeats", "repeats"), ("majority", "majority_accuracy"),
    ("consistency", "consistency"), ("refusal", "refusal_rate"),
    ("unclear", "unclear_rate"), ("error", "error_rate"),
    ("pair consistency", "pair_consistency"), ("yes rate", "yes_rate"),
    ("yes bias", "yes_bias"), ("image reliance", "image_reliance"),
    ("trap accuracy", "trap_accuracy"), ("echo rate", "echo_rate"), ("seed", "seed"), ("date", "date"),
    ("git sha", "git_sha"), ("task hash", "task_hash"), ("prompt hash", "prompt_hash"),
)


@dataclass(frozen=True)
class TableView:
    """A titled grid of display strings, the common input of every renderer."""

    title: str
    columns: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    notes: tuple[str, ...] = ()
    #: Per row, where its run is (HTML links its first cell there); empty: no links.
    links: tuple[str | None, ...] = ()


# -- selecting rows -------------------------------------------------------------------------

def filter_rows(rows: Sequence[Mapping[str, Any]], field: str,
                wanted: Sequence[str]) -> list[Mapping[str, Any]]:
    """Rows whose ``field`` is one of ``wanted``; a name no row has is a BenchError."""
    if not wanted:
        return list(rows)
    present = {str(row.get(field)) for row in rows if row.get(field) is not None}
    for name in wanted:
        if name not in present:
            raise unknown(field, name, present, f"The leaderboard has no row with this {field}.")
    return [row for row in rows if str(row.get(field)) in wanted]


def latest_rows(rows: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The latest row per entry (see the module docstring), in first-seen entry order."""
    latest: dict[tuple[str, ...], tuple[str, int, Mapping[str, Any]]] = {}
    for position, row in enumerate(rows):
        key = tuple(str(row.get(name)) for name in ENTRY_KEY)
        rank = (str(row.get("date") or ""), position)
        if key not in latest or rank >= latest[key][:2]:
            latest[key] = (*rank, row)
    return [entry[2] for entry in latest.values()]


def sort_rows(rows: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """By task and judge, then best headline accuracy first (rows without one last)."""

    def order(row: Mapping[str, Any]) -> tuple[Any, ...]:
        accuracy = headline(row)[0]
        shots = row.get("shots")
        return (str(row.get("task")), str(row.get("judge")),
                -accuracy if isinstance(accuracy, (int, float)) else 1.0,
                str(row.get("model")), str(row.get("variant")),
                shots if isinstance(shots, int) else 99)

    return sorted(rows, key=order)


# -- formatting cells -----------------------------------------------------------------------

def _percent(value: Any) -> str:
    return f"{100 * value:.0f}%" if isinstance(value, (int, float)) else "-"


def headline(row: Mapping[str, Any]) -> tuple[Any, Any, Any, Any, bool]:
    """(value, CI low, CI high, n, strict): strict accuracy over all n items, or, for a row
    written before it existed, scored accuracy over the scored items (``strict`` False)."""
    if isinstance(row.get("strict_accuracy"), (int, float)):
        return (row["strict_accuracy"], row.get("strict_accuracy_ci_low"),
                row.get("strict_accuracy_ci_high"), row.get("n"), True)
    return (row.get("accuracy"), row.get("ci_low"), row.get("ci_high"),
            row.get("n_scored", row.get("n")), False)


def _images(n_clusters: Any) -> str:
    """`` img=10``: the images an interval rests on, flagged below the reliable floor."""
    if not isinstance(n_clusters, int):
        return ""
    return f" img={n_clusters}" + ("" if n_clusters >= RELIABLE_MIN_CLUSTERS else " unreliable")


def _with_ci(value: Any, low: Any, high: Any, signed: bool = False,
             n_clusters: Any = None) -> str:
    if not isinstance(value, (int, float)):
        return "-"
    if signed:
        text = f"{value:+.2f}"
        if isinstance(low, (int, float)) and isinstance(high, (int, float)):
            text += f" [{low:+.2f}, {high:+.2f}]"
        return text + _images(n_clusters)
    text = _percent(value)
    if isinstance(low, (int, float)) and isinstance(high, (int, float)):
        text += f" [{100 * low:.0f}–{100 * high:.0f}]"
    return text + _images(n_clusters)


def accuracy_cell(row: Mapping[str, Any] | None) -> str:
    """``"56% [40–70] img=10 n=30"``: strict accuracy, its 95% CI, the images and the items
    it rests on."""
    if row is None:
        return "-"
    value, low, high, n, strict = headline(row)
    text = _with_ci(value, low, high, n_clusters=row.get(
        "strict_accuracy_n_clusters" if strict else "n_clusters"))
    if n is not None:
        text += f" n={n}"
    return text if strict or text == "-" else text + " (scored)"


def _display(name: str, row: Mapping[str, Any]) -> str:
    value = row.get(name)
    if name == "accuracy":
        return _with_ci(value, row.get("ci_low"), row.get("ci_high"),
                        n_clusters=row.get("n_clusters"))
    if name in _WITH_CI:
        return _with_ci(value, row.get(f"{name}_ci_low"), row.get(f"{name}_ci_high"),
                        signed=name == "yes_bias", n_clusters=row.get(f"{name}_n_clusters"))
    if name == "n":
        return f"{row.get('n_scored', '-')}/{'-' if value is None else value}"
    if value is None or value == "":
        return "-"
    if name in {"refusal_rate", "unclear_rate", "error_rate", "majority_accuracy", "consistency"}:
        return _percent(value)
    if name in {"git_sha", "task_hash", "prompt_hash"}:
        return str(value)[:8]
    if name == "date":
        return str(value)[:16].replace("T", " ")
    return str(value)


def model_label(row: Mapping[str, Any]) -> str:
    """``model (variant) [sampler: ...]``, the parts a row has."""
    variant, sampler = row.get("variant"), row.get("sampler")
    label = f"{row.get('model')} ({variant})" if variant else str(row.get("model"))
    return f"{label} [sampler: {sampler}]" if sampler else label


# -- views ----------------------------------------------------------------------------------

def rows_view(rows: Sequence[Mapping[str, Any]]) -> TableView:
    # Repeat statistics exist only for runs with repeats, pair metrics only for data with
    # pairs (and nothing at all in rows written before them): no empty columns otherwise.
    optional = (*REPEAT_FIELDS, *_WITH_CI, "sampler")  # sampler: models that name one
    columns = [(header, name) for header, name in DISPLAY_COLUMNS
               if name not in optional or any(row.get(name) is not None for row in rows)]
    return TableView(
        title="Leaderboard (strict accuracy: aligned over all items; 95% CIs clustered by image, "
              "img = images)",
        columns=tuple(header for header, _ in columns),
        rows=tuple(tuple(_display(name, row) for _, name in columns) for row in rows),
        links=tuple(run_link(row) for row in rows),
    )


def run_link(row: Mapping[str, Any]) -> str | None:
    """A file URL of the row's run: its exported viewer page (``view --export RUN_DIR/view``)
    when there is one, else the run folder."""
    run_dir = row.get("run_dir")
    if not isinstance(run_dir, str) or not Path(run_dir).is_absolute():
        return None
    page = Path(run_dir) / "view" / "index.html"
    return (page if page.is_file() else Path(run_dir)).as_uri()


def _cell_index(rows: Sequence[Mapping[str, Any]], key_fields: Sequence[str]
                ) -> tuple[dict[tuple[Any, ...], Mapping[str, Any]], list[str]]:
    """Rows by ``key_fields``; where several compete for one cell the latest wins (noted)."""
    cells: dict[tuple[Any, ...], Mapping[str, Any]] = {}
    competing: dict[tuple[Any, ...], set[str]] = {}
    for row in rows:
        key = tuple(row.get(name) for name in key_fields)
        competing.setdefault(key, set()).add(str(row.get("task")))
        if key not in cells or str(row.get("date") or "") >= str(cells[key].get("date") or ""):
            cells[key] = row
    notes = [f"{', '.join(str(k) for k in key)}: tasks {sorted(tasks)} share this cell; "
             f"showing the latest ({cells[key].get('task')}); narrow with --task"
             for key, tasks in competing.items() if len(tasks) > 1]
    return cells, notes


def paper_views(rows: Sequence[Mapping[str, Any]]) -> list[TableView]:
    """The paper's Table 1 (per model variant) and Table 2 (per judge)."""
    views: list[TableView] = []
    cells, notes = _cell_index(rows, ("model", "variant", "sampler", "judge", "shots", "split"))
    # a model row is (model, variant, sampler): the sampler that produced the answers is part
    # of what a figure means (MAGMA's original filters differ; see docs/magma.md)
    models = sorted({(row.get("model"), row.get("variant"), row.get("sampler")) for row in rows},
                    key=lambda mvs: tuple(str(part or "") for part in mvs))
    judges = sorted({row.get("judge") for row in rows}, key=str)
    for model, variant, sampler in models:
        table_rows = []
        for judge in judges:
            line = [cells.get((model, variant, sampler, judge, shots, "train")) for shots in PAPER_SHOTS]
            if any(line):
                table_rows.append((str(judge), *(accuracy_cell(c) for c in line)))
        if table_rows:
            label = model_label({"model": model, "variant": variant, "sampler": sampler})
            views.append(TableView(
                title=f"Table 1: {label}, commonsense-morality strict accuracy on train by shots",
                columns=("judge", *(f"{k}-shot train" for k in PAPER_SHOTS)),
                rows=tuple(table_rows)))
    for judge in judges:
        table_rows = []
        for model, variant, sampler in models:
            line = [cells.get((model, variant, sampler, judge, 0, split)) for split in ("train", "test")]
            if any(line):
                table_rows.append((model_label({"model": model, "variant": variant, "sampler": sampler}),
                                   *(accuracy_cell(c) for c in line)))
        if table_rows:
            views.append(TableView(
                title=f"Table 2: judge {judge}, base and finetuned models at 0 shots "
                      "(strict accuracy)",
                columns=("model", "0-shot train", "0-shot test"), rows=tuple(table_rows)))
    if not views:
        raise BenchError("no row has shots 0/1/2 on split train or test, which the paper view "
                         "needs; use --view rows")
    if notes:
        views[-1] = TableView(views[-1].title, views[-1].columns, views[-1].rows, tuple(notes))
    return views


# -- renderers ------------------------------------------------------------------------------
