"""``run_bench.py annotate RUN_DIR``: a local page for labelling a run's responses by hand.

It serves one static page and a small JSON API on 127.0.0.1 only. Every request must carry
the random per-session token in its path (``http://127.0.0.1:PORT/TOKEN/``), so other
local users and web pages cannot read the run or write labels. Model output is sent as
JSON and shown with ``textContent``, and a strict Content-Security-Policy forbids inline
scripts, so a response such as ``<script>`` is displayed, never run. Each label is
appended to ``annotations.jsonl`` and flushed before the page moves on. This module does
not judge or score anything.
"""

from __future__ import annotations

import argparse
import getpass
import json
import secrets
import threading
from datetime import datetime, timezone
from http import HTTPStatus
from pathlib import Path
from typing import Any

from harness.commands.page_server import (
    PageHandler,
    PageServer,
    add_server_arguments,
    find_images,
    make_page_server,
    page_files,
    serve,
)
from harness.errors import BenchError
from harness.judges.human import annotations as _annotations
from harness.judges.human.annotations import (
    LABELS,
    Annotation,
    append_annotation,
    current_labels,
    read_annotations,
    response_hash,
)
from harness.run.folder import RunFolder

#: The page the annotator uses, shipped beside the annotations module it serves.
STATIC_DIR = Path(_annotations.__file__).resolve().parent / "static"
STATIC_FILES = page_files(STATIC_DIR, "index.html", "app.js", "style.css")
MAX_BODY = 64 * 1024


class AnnotationSession:
    """One annotator labelling one run: the items, the token and the annotations file."""

    def __init__(self, run_dir: Path, annotator: str, image_dirs: list[Path] | None = None,
                 task: str | None = None) -> None:
        annotator = annotator.strip()
        if not annotator or len(annotator) > 64 or any(c in annotator for c in "\n\r\t"):
            raise BenchError("--annotator must be a short name on one line (1-64 characters)")
        folder = RunFolder(Path(run_dir))
        self.run_dir = folder.path
        self.annotator = annotator
        self.token = secrets.token_urlsafe(24)
        self.path = folder.annotations
        samples = [s for s in folder.iter_samples() if task is None or s.task == task]
        if not samples:
            raise BenchError(f"{self.run_dir} has no samples to label"
                             + (f" for task '{task}'" if task else ""))
        self.samples = {s.request_id: s for s in samples}
        self.hashes = {key: response_hash(s.response) for key, s in self.samples.items()}
        self.images = find_images([folder.images, *(image_dirs or [])],
                                  (i for s in samples for i in s.image_ids if isinstance(i, str)))
        self._lock = threading.Lock()

    def my_labels(self) -> dict[str, str]:
        labels = current_labels(read_annotations(self.path), self.hashes)
        return {key: by[self.annotator] for key, by in labels.items() if self.annotator in by}

    def items(self) -> dict[str, Any]:
        mine = self.my_labels()
        items = []
        for key, sample in self.samples.items():
            items.append({
                "key": key, "task": sample.task, "doc_id": sample.doc_id,
                "repeat": sample.repeat, "prompt": sample.prompt or "",
                "response": sample.response, "error": sample.error,
                "ideal": sample.target, "expected": sample.expected,
                "image_ids": [i for i in sample.image_ids if isinstance(i, str)],
                "label": mine.get(key),
            })
        return {"annotator": self.annotator, "labels": list(LABELS), "items": items}

    def record(self, key: str, label: str) -> dict[str, Any]:
        if key not in self.samples:
            raise KeyError(key)
        if label not in LABELS:
            raise ValueError(label)
        sample = self.samples[key]
        annotation = Annotation(
            annotator=self.annotator, task=str(sample.task), doc_id=sample.doc_id,
            repeat=int(sample.repeat or 0), sample_key=key,
            response_hash=self.hashes[key], label=label,
            time=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        with self._lock:
            append_annotation(self.path, annotation)
        return {"ok": True, "labelled": len(self.my_labels()), "total": len(self.samples)}


class _Handler(PageHandler):
    server_version = "vmb-annotate"
    static_files = STATIC_FILES

    def api_json(self, route: str) -> Any:
        return self.server.session.items() if route == "api/items" else None

    def post_api(self, route: str) -> bool:
        if route != "api/label":
            return False
        if not (self.headers.get("Content-Type") or "").startswith("application/json"):
            self._json(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, {"error": "send JSON"})
            return True
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length <= 0 or length > MAX_BODY:
            self._json(HTTPStatus.BAD_REQUEST, {"error": "bad body size"})
            return True
        try:
            body = json.loads(self.rfile.read(length))
            result = self.server.session.record(str(body["key"]), str(body["label"]))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            self._json(HTTPStatus.BAD_REQUEST, {"error": "unknown item or label"})
            return True
        self._json(HTTPStatus.OK, result)
        return True


def make_server(session: AnnotationSession, port: int = 0) -> PageServer:
    """A server for ``session`` bound to 127.0.0.1 (port 0 picks a free one)."""
    return make_page_server(session, _Handler, port)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, help="run folder holding samples.jsonl")
    parser.add_argument("--annotator", default=None,
                        help="your name in annotations.jsonl (default: your login name)")
    parser.add_argument("--task", default=None, help="label only this task's samples")
    add_server_arguments(parser)


def run(args: argparse.Namespace) -> int:
    session = AnnotationSession(args.run_dir, args.annotator or getpass.getuser(),
                                list(args.images), args.task)
    server = make_server(session, args.port)
    missing = {i for s in session.samples.values() for i in s.image_ids} - set(session.images)
    if missing:
        print(f"note: {len(missing)} image(s) not found; pass --images DIR to show them")
    print(f"Labelling {len(session.samples)} samples of {session.run_dir} as "
          f"'{session.annotator}'; labels go to {session.path}")
    print(f"Open {server.url}  (Ctrl-C to stop; labels are saved as you go)")
    serve(server, open_browser=not args.no_browser)
    print(f"{len(session.my_labels())}/{len(session.samples)} labelled by '{session.annotator}'")
    return 0
