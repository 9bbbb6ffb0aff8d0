"""``run_bench.py view RUN_DIR [RUN_DIR ...]``: a local read-only page to read runs.

Per sample: the image(s), the rendered prompt, the response, the ideal answer and every
verdict with its reason, with filters (task, judge, verdict, status, disagreement between
judges or with hand labels, and the dataset's fields). With two runs, the items they share
sit side by side and the ones where they differ come first. Served like ``annotate``
(127.0.0.1 only, a random token in the path, the same Content-Security-Policy, model text
sent as JSON and shown as text); ``--export DIR`` writes the same page as static files.
This module reads run folders; it writes nothing into them.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from harness.commands import page_server
from harness.errors import BenchError
from harness.judges.human.annotations import (
    current_labels,
    majority,
    read_annotations,
    response_hash,
)
from harness.run.folder import RunFolder
from harness.run.samples import Sample

STATIC_DIR = Path(__file__).resolve().parents[1] / "reports" / "static"
STATIC_FILES = page_server.page_files(STATIC_DIR, "view.html", "view.js", "view.css")
#: Dataset fields offered as filters when the samples carry them.
DOC_FIELDS = ("category", "trap", "phrasing", "structure", "scenario")


def _outcome(verdict: Mapping[str, Any]) -> str:
    status = str(verdict.get("status", "error"))
    if status == "ok":
        return "aligned" if verdict.get("aligned") else "misaligned"
    return status


class ViewSession:
    """The runs on show, their items merged by sample key, their images and a token."""

    def __init__(self, run_dirs: Sequence[Path], image_dirs: Sequence[Path] = ()) -> None:
        if not run_dirs:
            raise BenchError("view: name at least one run folder")
        if len(run_dirs) > 2:
            raise BenchError("view: show one run, or two side by side")
        self.token = secrets.token_urlsafe(24)
        self.runs: list[dict[str, Any]] = []
        by_key: dict[str, dict[str, Any]] = {}
        folders: list[Path] = [Path(p) for p in image_dirs]
        for index, run_dir in enumerate(Path(p) for p in run_dirs):
            results_path = run_dir / "results.json"
            results = json.loads(results_path.read_text()) if results_path.is_file() else {}
            model = results.get("model") or {}
            self.runs.append({"name": results.get("run_name") or run_dir.name,
                              "model": model.get("name") if isinstance(model, Mapping) else None,
                              "dir": str(run_dir)})
            folder = RunFolder(run_dir)
            samples = folder.read_samples()
            hand = current_labels(read_annotations(folder.annotations),
                                  {s.request_id: response_hash(s.response) for s in samples})
            for sample in samples:
                key = sample.request_id
                item = by_key.setdefault(key, self._item(sample, len(run_dirs)))
                verdicts = {name: {**v, "outcome": _outcome(v)}
                            for name, v in sample.verdicts.items()}
                labels = hand.get(key, {})
                item["runs"][index] = {
                    "response": sample.response, "error": sample.error,
                    "filtered": sample.filtered_response, "verdicts": verdicts,
                    "hand": majority(labels)[0] if labels else None,
                    "annotators": len(labels)}
            folders.append(run_dir / "images")
        wanted = (i for item in by_key.values() for i in item["image_ids"])
        self.images = page_server.find_images(folders, wanted)
        items = list(by_key.values())
        for item in items:
            item["differs"] = self._differs(item)
            item["disagree"] = self._disagree(item)
        # With two runs, the items where they differ come first (stable otherwise).
        items.sort(key=lambda item: not item["differs"])
        self.items = items

    @staticmethod
    def _item(sample: Sample, n_runs: int) -> dict[str, Any]:
        doc = sample.doc or {}
        return {"key": sample.request_id, "task": sample.task, "doc_id": sample.doc_id,
                "repeat": sample.repeat, "prompt": sample.prompt or "", "ideal": sample.target,
                "expected": sample.expected,
                "image_ids": [i for i in sample.image_ids if isinstance(i, str)],
                "fields": {f: str(doc[f]).lower() for f in DOC_FIELDS if f in doc},
                "runs": [None] * n_runs}

    @staticmethod
    def _differs(item: Mapping[str, Any]) -> bool:
        runs = item["runs"]
        if len(runs) < 2:
            return False
        if any(r is None for r in runs):
            return True
        a, b = runs
        shared = set(a["verdicts"]) & set(b["verdicts"])
        return a["response"] != b["response"] or any(
            a["verdicts"][j]["outcome"] != b["verdicts"][j]["outcome"] for j in shared)

    @staticmethod
    def _disagree(item: Mapping[str, Any]) -> bool:
        for run in item["runs"]:
            if run is None:
                continue
            graded = {v["outcome"] for v in run["verdicts"].values()
                      if v["outcome"] in ("aligned", "misaligned")}
            if len(graded) > 1:
                return True
            if run["hand"] in ("aligned", "misaligned") and graded and graded != {run["hand"]}:
                return True
        return False

    def data(self, image_base: str) -> dict[str, Any]:
        judges = sorted({j for item in self.items for run in item["runs"] if run
                         for j in run["verdicts"]})
        fields: dict[str, list[str]] = {}
        for item in self.items:
            for name, value in item["fields"].items():
                if value not in fields.setdefault(name, []):
                    fields[name].append(value)
        return {"runs": self.runs, "judges": judges, "fields": {k: sorted(v) for k, v in fields.items()},
                "tasks": sorted({str(i["task"]) for i in self.items}),
                "image_base": image_base, "images": sorted(set(self.images)),
                "items": self.items}


class _ViewHandler(page_server.PageHandler):
    server_version = "vmb-view"
    static_files = STATIC_FILES

    def api_json(self, route: str) -> Any:
        return self.server.session.data("api/image/") if route == "api/view" else None

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        self._not_found(b"read-only")


def make_server(session: ViewSession, port: int = 0) -> page_server.PageServer:
    """A server for ``session`` bound to 127.0.0.1 (port 0 picks a free one)."""
    return page_server.make_page_server(session, _ViewHandler, port)


def export(session: ViewSession, folder: Path) -> Path:
    """The page as static files: ``index.html``, its script and style, ``data.js``, images/."""
    folder = Path(folder)
    try:
        (folder / "images").mkdir(parents=True, exist_ok=True)
        for name in ("view.js", "view.css"):
            shutil.copyfile(STATIC_DIR / name, folder / name)
        page = (STATIC_DIR / "view.html").read_text(encoding="utf-8")
        # The exported page reads its data from a script file (no fetch from file://).
        page = page.replace('<script src="view.js"></script>',
                            '<script src="data.js"></script>\n<script src="view.js"></script>')
        (folder / "index.html").write_text(page, encoding="utf-8")
        image_names = {}
        for image_id, path in session.images.items():
            name = f"{image_id}{path.suffix.lower()}"
            shutil.copyfile(path, folder / "images" / name)
            image_names[image_id] = name
        data = session.data("images/")
        data["image_files"] = image_names
        # JSON with every non-ASCII character escaped is valid JavaScript and cannot end the file early.
        (folder / "data.js").write_text(
            "window.VIEW_DATA = " + json.dumps(data, ensure_ascii=True) + ";\n", encoding="utf-8")
    except OSError as exc:
        raise BenchError(f"cannot write the export to {folder}: {exc.strerror}") from None
    return folder / "index.html"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR",
                        help="one run folder, or two to compare side by side")
    parser.add_argument("--export", type=Path, default=None, metavar="DIR",
                        help="write the page as static files into DIR instead of serving it")
    page_server.add_server_arguments(parser)


def run(args: argparse.Namespace) -> int:
    session = ViewSession(list(args.run_dirs), list(args.images))
    if args.export is not None:
        print(f"wrote {export(session, args.export)}")
        return 0
    server = make_server(session, args.port)
    print(f"Showing {len(session.items)} samples of {len(session.runs)} run(s)")
    print(f"Open {server.url}  (Ctrl-C to stop)")
    page_server.serve(server, open_browser=not args.no_browser)
    return 0
