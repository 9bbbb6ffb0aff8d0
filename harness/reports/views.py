"""The ``leaderboard`` sub-command: views of ``<output-dir>/leaderboard.jsonl``.

Reads rows (never writes them), keeps the latest row per entry, filters, and renders a
table, Markdown, CSV or one self-contained HTML page with a plot of accuracy against shots.
The ``paper`` view lays rows out like the paper's Table 1 (judges x 0/1/2-shot on train) and
Table 2 (model variants x 0-shot train / test).

The headline number is strict accuracy (aligned over all items; refusals, unclear answers
and errors count as not aligned), as the paper's percentages are; scored accuracy stays
beside it. Rows written before strict accuracy existed show scored accuracy, marked so.

Which row is the latest: rows are grouped by (model, variant, task, shots, split, judge,
seed); in each group the row with the greatest ``date`` (ISO 8601) wins, and on equal dates
the one later in the file. ``--all`` shows every row instead.

This module must not run models or judges, nor change the leaderboard file.
"""

from __future__ import annotations

import argparse
import base64
import csv
import io
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.errors import BenchError, unknown
from harness.reports.leaderboard import DamagedLine, read_rows_checked
from harness.safety import csv_cell, markdown_cell, terminal_text
from harness.stats.intervals import RELIABLE_MIN_CLUSTERS

DEFAULT_OUTPUT_DIR = "output"  # the run command's default (harness.commands.cli)
FORMATS = ("table", "markdown", "csv", "html")
VIEWS = ("rows", "paper")
ENTRY_KEY = ("model", "variant", "sampler", "task", "shots", "split", "judge", "seed")
PAPER_SHOTS = (0, 1, 2)
REPEAT_FIELDS = ("majority_accuracy", "consistency")
#: The instrument's metrics after strict accuracy (harness.run.metrics.METRICS), shown only
#: where some row has them.
INSTRUMENT_FIELDS = ("pair_consistency", "yes_rate", "yes_bias", "image_reliance",
                     "trap_accuracy", "echo_rate")
_WITH_CI = ("strict_accuracy", *INSTRUMENT_FIELDS)

# Raw row fields, as CSV writes them.
CSV_FIELDS = (
    "model", "variant", "sampler", "image_ablation", "task", "shots", "split", "judge", "strict_accuracy",
    "strict_accuracy_ci_low", "strict_accuracy_ci_high", "strict_accuracy_n_clusters",
    "accuracy", "ci_low", "ci_high", "n_clusters", "ci_method",
    "n", "n_scored", "repeats", "majority_accuracy", "consistency", "refusal_rate", "unclear_rate", "error_rate",
    *(f"{name}{suffix}" for name in INSTRUMENT_FIELDS
      for suffix in ("", "_ci_low", "_ci_high", "_n_clusters")),
    "seed", "date",
    "git_sha", "task_hash", "prompt_hash", "judge_version", "model_fingerprint", "model_identity",
    "run_name",
)
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

def _split_names(values: Sequence[str] | None) -> list[str]:
    return [name.strip() for value in values or () for name in value.split(",") if name.strip()]


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
    return text


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

def render_markdown(views: Sequence[TableView]) -> str:
    cell = markdown_cell

    parts = []
    for view in views:
        lines = [f"### {cell(view.title)}", "",
                 "| " + " | ".join(cell(c) for c in view.columns) + " |",
                 "|" + "---|" * len(view.columns)]
        lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in view.rows]
        lines += [f"\n_{cell(note)}_" for note in view.notes]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def render_csv(views: Sequence[TableView], raw_rows: Sequence[Mapping[str, Any]] | None) -> str:
    """CSV; the rows view writes raw values (fractions, full hashes), not display strings."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    if raw_rows is not None:
        writer.writerow(CSV_FIELDS)
        for row in raw_rows:
            writer.writerow(["" if row.get(n) is None else csv_cell(row.get(n)) for n in CSV_FIELDS])
        return buffer.getvalue()
    for index, view in enumerate(views):
        if index:
            writer.writerow([])
        writer.writerow([csv_cell(view.title)])
        writer.writerow([csv_cell(c) for c in view.columns])
        writer.writerows([csv_cell(c) for c in row] for row in view.rows)
    return buffer.getvalue()


def render_table(views: Sequence[TableView], stream: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    width = None if stream.isatty() else max(int(os.environ.get("COLUMNS", 0) or 0), 240)
    console = Console(file=stream, width=width, highlight=False)
    for view in views:
        table = Table(title=_rich_text(view.title), title_justify="left")
        for column in view.columns:
            table.add_column(_rich_text(column), overflow="fold")
        for row in view.rows:
            table.add_row(*(_rich_text(text) for text in row))
        console.print(table)
        for note in view.notes:
            console.print(_rich_text(f"note: {note}"))


def _rich_text(text: str) -> Any:
    from rich.text import Text

    # A Text is never parsed as markup, so "[bold]" in a name stays literal.
    return Text(terminal_text(text))


def accuracy_plot_png(rows: Sequence[Mapping[str, Any]]) -> bytes | None:
    """Strict accuracy (else scored) against shots (0, 1, 2) per model, one panel per judge,
    with 95% CI bars."""
    points = [r for r in rows if r.get("shots") in PAPER_SHOTS
              and isinstance(headline(r)[0], (int, float))]
    if not points:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    judges = list(dict.fromkeys(str(r.get("judge")) for r in points))
    figure, axes = plt.subplots(1, len(judges), figsize=(5.5 * len(judges), 4), squeeze=False)
    for axis, judge in zip(axes[0], judges):
        lines: dict[str, dict[int, Mapping[str, Any]]] = {}
        for row in points:
            if str(row.get("judge")) == judge:
                label = f"{model_label(row)} · {row.get('split') or '?'}"
                lines.setdefault(label, {})[int(row["shots"])] = row
        for index, (label, by_shots) in enumerate(lines.items()):
            shots = sorted(by_shots)
            # Dodge each line a little so that CI bars at the same shot count do not overlap.
            xs = [s + 0.06 * (index - (len(lines) - 1) / 2) for s in shots]
            ys = [100 * float(headline(by_shots[s])[0]) for s in shots]
            # Bars never go negative, even for a row whose CI does not contain its value.
            low = [max(0.0, y - 100 * _bound(by_shots[s], 1)) for s, y in zip(shots, ys)]
            high = [max(0.0, 100 * _bound(by_shots[s], 2) - y) for s, y in zip(shots, ys)]
            # "$" would switch matplotlib into mathtext, which can fail on a model's name.
            axis.errorbar(xs, ys, yerr=[low, high], marker="o", capsize=4,
                          label=label.replace("$", r"\$"))
        axis.set_title(f"judge: {judge}".replace("$", r"\$"))
        axis.set_xticks(list(PAPER_SHOTS))
        axis.set_xlabel("shots")
        axis.set_ylabel("strict accuracy (%)")
        axis.set_ylim(-5, 105)
        axis.grid(alpha=0.3)
        axis.legend(fontsize="small")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    plt.close(figure)
    return buffer.getvalue()


def _bound(row: Mapping[str, Any], index: int) -> float:
    """A CI bound of ``row``'s headline (1: low, 2: high), or the value where it is missing."""
    shown = headline(row)
    value = shown[index]
    return float(value if isinstance(value, (int, float)) else shown[0])


PAGE_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>vlm-morality-bench leaderboard</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0 2rem; font-size: 0.9rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.6rem; text-align: left; white-space: nowrap; }
th { background: #f3f3f3; }
caption { text-align: left; font-weight: bold; padding-bottom: 0.4rem; }
.note, .damaged { color: #8a4b00; font-size: 0.85rem; }
</style>
</head>
<body>
<h1>vlm-morality-bench leaderboard</h1>
<p>Generated {{ generated }} from <code>{{ source }}</code>{% if filters %}; filters: {{ filters }}{% endif %}.
Strict accuracy is the share of all items answered in line with commonsense morality (refusals,
unclear answers and errors count as not aligned); scored accuracy counts scored answers only.
Brackets give the 95% confidence interval clustered by image (Wilson on the effective sample
size), img the number of images it rests on; "unreliable" marks intervals on fewer than
{{ reliable_min }} images.</p>
{% if damaged %}<ul class="damaged">{% for line in damaged %}
<li>line {{ line.number }} skipped: {{ line.reason }}</li>{% endfor %}
</ul>{% endif %}
{% if plot %}<figure>
<img id="accuracy-plot" alt="Accuracy against shots per model, with 95% CI bars" src="data:image/png;base64,{{ plot }}">
<figcaption>Strict accuracy against number of shots, one line per model and split, bars: 95% CI.</figcaption>
</figure>{% endif %}
{% for view in views %}<table>
<caption>{{ view.title }}</caption>
<thead><tr>{% for column in view.columns %}<th>{{ column }}</th>{% endfor %}</tr></thead>
<tbody>{% for row in view.rows %}{% set link = view.links[loop.index0] if view.links else None %}
<tr>{% for cell in row %}<td>{% if loop.first and link %}<a class="run-link" href="{{ link }}">{{ cell }}</a>{% else %}{{ cell }}{% endif %}</td>{% endfor %}</tr>{% endfor %}
</tbody>
</table>
{% for note in view.notes %}<p class="note">{{ note }}</p>{% endfor %}
{% endfor %}
</body>
</html>
"""


def render_html(views: Sequence[TableView], rows: Sequence[Mapping[str, Any]], *, source: str,
                filters: str, damaged: Sequence[DamagedLine]) -> str:
    """One static page, nothing fetched: every string from a row is HTML-escaped."""
    from jinja2 import Environment

    png = accuracy_plot_png(rows)
    template = Environment(autoescape=True).from_string(PAGE_TEMPLATE)
    return template.render(
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), source=source,
        reliable_min=RELIABLE_MIN_CLUSTERS,
        filters=filters, damaged=damaged, views=views,
        plot=base64.b64encode(png).decode("ascii") if png else None)


# -- the sub-command ------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output-dir", "--output_dir", "--output-path", "--output_path",
                        dest="output_dir", default=DEFAULT_OUTPUT_DIR,
                        help="folder holding leaderboard.jsonl (default: %(default)s)")
    parser.add_argument("--task", "--tasks", action="append", metavar="T",
                        help="only these tasks (repeat or comma-separate)")
    parser.add_argument("--model", action="append", metavar="M", help="only these models")
    parser.add_argument("--judge", "--judges", action="append", metavar="J",
                        help="only these judges")
    parser.add_argument("--format", choices=FORMATS, default="table")
    parser.add_argument("--view", choices=VIEWS, default="rows",
                        help="rows: one line per entry; paper: the paper's Tables 1 and 2")
    parser.add_argument("--all", action="store_true",
                        help="every row, not only the latest per (model, variant, task, "
                             "shots, split, judge, seed)")
    parser.add_argument("--out", metavar="FILE",
                        help="write here instead of stdout (html: default "
                             "<output-dir>/leaderboard.html)")


def run(args: argparse.Namespace) -> int:
    path = Path(args.output_dir) / "leaderboard.jsonl"
    if not path.exists():
        raise BenchError(f"no leaderboard at {path}; run a benchmark with --output-dir "
                         f"{args.output_dir} first, or point --output-dir at its folder")
    rows, damaged = read_rows_checked(path)
    for line in damaged:
        print(f"warning: {path}:{line.number}: damaged line skipped ({line.reason})",
              file=sys.stderr)
    if not rows:
        raise BenchError(f"{path} holds no readable row; run a benchmark first")
    filters = {"task": _split_names(args.task), "model": _split_names(args.model),
               "judge": _split_names(args.judge)}
    selected: Sequence[Mapping[str, Any]] = rows
    for field, wanted in filters.items():
        selected = filter_rows(selected, field, wanted)
    selected = sort_rows(selected if args.all else latest_rows(selected))
    views = paper_views(selected) if args.view == "paper" else [rows_view(selected)]

    if args.format == "html":
        text = render_html(views, selected, source=str(path), damaged=damaged,
                           filters=", ".join(f"{k}={','.join(v)}" for k, v in filters.items() if v))
        target = Path(args.out) if args.out else Path(args.output_dir) / "leaderboard.html"
        _write_atomic(target, text)
        print(target)
        return 0
    if args.format == "table" and not args.out:
        render_table(views, sys.stdout)
        return 0
    if args.format == "table":
        buffer = io.StringIO()
        render_table(views, buffer)
        text = buffer.getvalue()
    elif args.format == "markdown":
        text = render_markdown(views)
    else:
        text = render_csv(views, selected if args.view == "rows" else None)
    if args.out:
        _write_atomic(Path(args.out), text)
        print(args.out)
    else:
        sys.stdout.write(text)
    return 0


def _write_atomic(target: Path, text: str) -> None:
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, target)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise BenchError(f"cannot write {target}: {exc.strerror}; choose a writable --out") from None
