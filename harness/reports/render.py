"""Rendering leaderboard views: a terminal table, Markdown, CSV, one self-contained HTML page.

Each renderer takes ``TableView``s (``harness.reports.rows``) and returns text or writes to a
stream; the HTML page also plots strict accuracy against shots. Nothing here chooses rows or writes
a file.
"""

from __future__ import annotations

import base64
import csv
import io
import os
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any

from harness.files import DamagedLine
from harness.reports.rows import INSTRUMENT_FIELDS, PAPER_SHOTS, TableView, headline, model_label
from harness.safety import csv_cell, markdown_cell, terminal_text
from harness.stats.intervals import RELIABLE_MIN_CLUSTERS

FORMATS = ("table", "markdown", "csv", "html")

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
