"""The ``leaderboard`` sub-command: views of ``<output-dir>/leaderboard.jsonl``.

Reads rows (never writes them), keeps the latest row per entry (``harness.reports.rows``),
filters, and renders a table, Markdown, CSV or one self-contained HTML page
(``harness.reports.render``). It must not run models or judges, nor change the leaderboard.
"""

from __future__ import annotations

import argparse
import io
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.arguments import split_names
from harness.errors import BenchError
from harness.files import write_atomic
from harness.paths import DEFAULT_OUTPUT_DIR
from harness.reports.leaderboard import read_rows_checked
from harness.reports.render import FORMATS, render_csv, render_html, render_markdown, render_table
from harness.reports.rows import (
    VIEWS,
    filter_rows,
    latest_rows,
    paper_views,
    rows_view,
    sort_rows,
)
from harness.run.folder import leaderboard_file


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
    path = leaderboard_file(args.output_dir)
    if not path.exists():
        raise BenchError(f"no leaderboard at {path}; run a benchmark with --output-dir "
                         f"{args.output_dir} first, or point --output-dir at its folder")
    rows, damaged = read_rows_checked(path)
    for line in damaged:
        print(f"warning: {path}:{line.number}: damaged line skipped ({line.reason})",
              file=sys.stderr)
    if not rows:
        raise BenchError(f"{path} holds no readable row; run a benchmark first")
    filters = {"task": split_names(args.task), "model": split_names(args.model),
               "judge": split_names(args.judge)}
    selected: Sequence[Mapping[str, Any]] = rows
    for field, wanted in filters.items():
        selected = filter_rows(selected, field, wanted)
    selected = sort_rows(selected if args.all else latest_rows(selected))
    views = paper_views(selected) if args.view == "paper" else [rows_view(selected)]

    if args.format == "html":
        text = render_html(views, selected, source=str(path), damaged=damaged,
                           filters=", ".join(f"{k}={','.join(v)}" for k, v in filters.items() if v))
        target = Path(args.out) if args.out else Path(args.output_dir) / "leaderboard.html"
        write_atomic(target, text, "choose a writable --out")
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
        write_atomic(Path(args.out), text, "choose a writable --out")
        print(args.out)
    else:
        sys.stdout.write(text)
    return 0
