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
import hmac
import json
import mimetypes
import secrets
import threading
import webbrowser
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from harness.errors import BenchError
from harness.judges.human.annotations import (
    ANNOTATIONS_FILE,
    LABELS,
    Annotation,
    append_annotation,
    current_labels,
    read_annotations,
    read_samples,
    response_hash,
)
from harness.paths import DATASETS_DIR

STATIC_DIR = Path(__file__).resolve().parent / "static"
STATIC_FILES = {"": "index.html", "index.html": "index.html", "app.js": "app.js",
                "style.css": "style.css"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "img-src 'self'; connect-src 'self'; base-uri 'none'; "
                               "form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the token is in the URL: never leak it onwards
    "Cache-Control": "no-store",
}
MAX_BODY = 64 * 1024


def index_images(folders: list[Path]) -> dict[str, Path]:
    """Map image ids to files: ``<image_id>.png`` names directly, other images by content."""
    found: dict[str, Path] = {}
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
                continue
            if path.stem.startswith("img-"):
                found.setdefault(path.stem, path)
                continue
            try:
                from PIL import Image

                from harness.hashing import image_id
                with Image.open(path) as image:
                    found.setdefault(image_id(image.convert("RGB")), path)
                    found.setdefault(image_id(image), path)
            except OSError:
                continue  # an unreadable image is simply not shown
    return found


class AnnotationSession:
    """One annotator labelling one run: the items, the token and the annotations file."""

    def __init__(self, run_dir: Path, annotator: str, image_dirs: list[Path] | None = None,
                 task: str | None = None) -> None:
        annotator = annotator.strip()
        if not annotator or len(annotator) > 64 or any(c in annotator for c in "\n\r\t"):
            raise BenchError("--annotator must be a short name on one line (1-64 characters)")
        self.run_dir = Path(run_dir)
        self.annotator = annotator
        self.token = secrets.token_urlsafe(24)
        self.path = self.run_dir / ANNOTATIONS_FILE
        samples = read_samples(self.run_dir)
        if task is not None:
            samples = [s for s in samples if s.get("task") == task]
        if not samples:
            raise BenchError(f"{self.run_dir} has no samples to label"
                             + (f" for task '{task}'" if task else ""))
        self.samples = {str(s["request_id"]): s for s in samples}
        self.hashes = {key: response_hash(s.get("response")) for key, s in self.samples.items()}
        self.images = index_images([self.run_dir / "images", *(image_dirs or [])])
        wanted = {i for s in samples for i in s.get("image_ids") or [] if isinstance(i, str)}
        if wanted - set(self.images):  # the shipped datasets hold the usual prompt images
            for key, path in index_images([DATASETS_DIR]).items():
                self.images.setdefault(key, path)
        self._lock = threading.Lock()

    def my_labels(self) -> dict[str, str]:
        labels = current_labels(read_annotations(self.path), self.hashes)
        return {key: by[self.annotator] for key, by in labels.items() if self.annotator in by}

    def items(self) -> dict[str, Any]:
        mine = self.my_labels()
        items = []
        for key, sample in self.samples.items():
            response = sample.get("response")
            items.append({
                "key": key, "task": sample.get("task"), "doc_id": sample.get("doc_id"),
                "repeat": sample.get("repeat"), "prompt": sample.get("prompt") or "",
                "response": response, "error": sample.get("error"),
                "ideal": sample.get("target"), "expected": sample.get("expected"),
                "image_ids": [i for i in sample.get("image_ids") or [] if isinstance(i, str)],
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
            annotator=self.annotator, task=str(sample.get("task")), doc_id=sample.get("doc_id"),
            repeat=int(sample.get("repeat") or 0), sample_key=key,
            response_hash=self.hashes[key], label=label,
            time=datetime.now(timezone.utc).isoformat(timespec="seconds"))
        with self._lock:
            append_annotation(self.path, annotation)
        return {"ok": True, "labelled": len(self.my_labels()), "total": len(self.samples)}


class _Handler(BaseHTTPRequestHandler):
    server: _AnnotationServer
    server_version = "vmb-annotate"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
        pass  # request lines would print the secret token to the terminal log

    def _route(self) -> str | None:
        """The path below the token, or None when the request is not for this session."""
        host = (self.headers.get("Host") or "").lower()
        port = self.server.server_address[1]
        if host not in (f"127.0.0.1:{port}", f"localhost:{port}"):
            return None  # a rebound DNS name pointing here is not our page
        path = self.path.split("?", 1)[0]
        _, _, rest = path.partition("/")
        token, slash, below = rest.partition("/")
        if not hmac.compare_digest(token.encode(), self.server.session.token.encode()):
            return None
        return below if slash else "\0redirect"

    def _send(self, status: HTTPStatus, body: bytes, content_type: str,
              extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in {**SECURITY_HEADERS, **(extra or {})}.items():
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: HTTPStatus, value: Any) -> None:
        self._send(status, json.dumps(value, ensure_ascii=False).encode(),
                   "application/json; charset=utf-8")

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        route = self._route()
        session = self.server.session
        if route is None:
            self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain")
        elif route == "\0redirect":
            self._send(HTTPStatus.MOVED_PERMANENTLY, b"", "text/plain",
                       {"Location": f"/{session.token}/"})
        elif route in STATIC_FILES:
            name = STATIC_FILES[route]
            kind = {"html": "text/html", "js": "text/javascript", "css": "text/css"}[
                name.rsplit(".", 1)[1]]
            self._send(HTTPStatus.OK, (STATIC_DIR / name).read_bytes(), f"{kind}; charset=utf-8")
        elif route == "api/items":
            self._json(HTTPStatus.OK, session.items())
        elif route.startswith("api/image/") and route[10:] in session.images:
            path = session.images[route[10:]]
            kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            self._send(HTTPStatus.OK, path.read_bytes(), kind)
        else:
            self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain")

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        route = self._route()
        if route != "api/label":
            self._send(HTTPStatus.NOT_FOUND, b"not found", "text/plain")
            return
        if not (self.headers.get("Content-Type") or "").startswith("application/json"):
            self._json(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, {"error": "send JSON"})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length <= 0 or length > MAX_BODY:
            self._json(HTTPStatus.BAD_REQUEST, {"error": "bad body size"})
            return
        try:
            body = json.loads(self.rfile.read(length))
            result = self.server.session.record(str(body["key"]), str(body["label"]))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            self._json(HTTPStatus.BAD_REQUEST, {"error": "unknown item or label"})
            return
        self._json(HTTPStatus.OK, result)


class _AnnotationServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, session: AnnotationSession, port: int) -> None:
        self.session = session
        super().__init__(("127.0.0.1", port), _Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{self.session.token}/"


def make_server(session: AnnotationSession, port: int = 0) -> _AnnotationServer:
    """A server for ``session`` bound to 127.0.0.1 (port 0 picks a free one)."""
    try:
        return _AnnotationServer(session, port)
    except OSError as exc:
        raise BenchError(f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); "
                         "pick another --port") from None


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (0 to 65535; 0 picks a free one)")
    return port


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", type=Path, help="run folder holding samples.jsonl")
    parser.add_argument("--annotator", default=None,
                        help="your name in annotations.jsonl (default: your login name)")
    parser.add_argument("--port", type=_port, default=0, help="local port (default: any free one)")
    parser.add_argument("--task", default=None, help="label only this task's samples")
    parser.add_argument("--images", type=Path, action="append", default=[],
                        help="folder of the prompt images, if the run folder has no images/")
    parser.add_argument("--no-browser", action="store_true", help="only print the URL")


def run(args: argparse.Namespace) -> int:
    session = AnnotationSession(args.run_dir, args.annotator or getpass.getuser(),
                                list(args.images), args.task)
    server = make_server(session, args.port)
    missing = {i for s in session.samples.values() for i in s.get("image_ids") or []} \
        - set(session.images)
    if missing:
        print(f"note: {len(missing)} image(s) not found; pass --images DIR to show them")
    print(f"Labelling {len(session.samples)} samples of {session.run_dir} as "
          f"'{session.annotator}'; labels go to {session.path}")
    print(f"Open {server.url}  (Ctrl-C to stop; labels are saved as you go)")
    if not args.no_browser:
        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    print(f"{len(session.my_labels())}/{len(session.samples)} labelled by '{session.annotator}'")
    return 0
