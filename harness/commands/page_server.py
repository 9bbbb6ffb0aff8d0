"""The local page server that ``annotate`` and ``view`` share: one session, one token, 127.0.0.1.

Every request must carry the session's random token in its path
(``http://127.0.0.1:PORT/TOKEN/``) and name this machine as its host, so other local users,
web pages and rebound DNS names cannot read the run. Responses carry a strict
Content-Security-Policy (no inline scripts), so model output sent as JSON and shown with
``textContent`` is displayed, never run. The base handler serves the page's static files and
the prompt images; each command's handler adds only its own API routes. This module knows
nothing of labels or verdicts.
"""

from __future__ import annotations

import argparse
import hmac
import json
import mimetypes
import sys
import webbrowser
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from harness.errors import BenchError
from harness.paths import DATASETS_DIR
from harness.safety import inside

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".gif", ".webp", ".bmp"}
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; "
                               "img-src 'self'; connect-src 'self'; base-uri 'none'; "
                               "form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the token is in the URL: never leak it onwards
    "Cache-Control": "no-store",
}
CONTENT_TYPES = {"html": "text/html", "js": "text/javascript", "css": "text/css"}
_REDIRECT = "\0redirect"


def index_images(folders: Iterable[Path]) -> dict[str, Path]:
    """Map image ids to files: ``<image_id>.png`` names directly, other images by content.

    A run folder is data someone may have sent: a file that resolves outside its folder (a
    symbolic link to elsewhere) or has more pixels than a task image may have is not served,
    and one line on stderr says how many were left out.
    """
    found: dict[str, Path] = {}
    left_out: dict[str, int] = {}
    for folder in folders:
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
                continue
            reason = _index_one(path, folder, found)
            if reason:
                left_out[reason] = left_out.get(reason, 0) + 1
    for reason, count in left_out.items():
        print(f"not shown: {count} image file(s) {reason}", file=sys.stderr)
    return found


def _index_one(path: Path, folder: Path, found: dict[str, Path]) -> str | None:
    """Add ``path`` to ``found`` under its id, or say why it must not be served. The header
    (its size) is checked before any pixel is decoded; the file is opened once."""
    from PIL import Image

    from harness.hashing import image_id
    from harness.tasks.data import MAX_IMAGE_PIXELS

    try:
        inside(path, folder, "image")
    except BenchError:
        return f"that resolve outside {folder}"
    try:
        with Image.open(path) as image:
            width, height = image.size
            if width * height > MAX_IMAGE_PIXELS:
                return f"with more than {MAX_IMAGE_PIXELS / 1e6:.0f} million pixels"
            if path.stem.startswith("img-"):
                found.setdefault(path.stem, path)
            else:
                found.setdefault(image_id(image.convert("RGB")), path)
                found.setdefault(image_id(image), path)
    except (OSError, Image.DecompressionBombError, SyntaxError, ValueError):
        return "that are not readable images"
    return None


def find_images(folders: Iterable[Path], wanted: Iterable[str]) -> dict[str, Path]:
    """The images in ``folders``; when some of ``wanted`` are not there, also the shipped
    datasets' images (they hold the usual prompt images)."""
    images = index_images(folders)
    if set(wanted) - set(images):
        for key, path in index_images([DATASETS_DIR]).items():
            images.setdefault(key, path)
    return images


def page_files(folder: Path, page: str, *assets: str) -> dict[str, Path]:
    """The routes of a page's static files: its HTML at ``""`` and ``index.html``, then its
    scripts and styles by name."""
    return {"": folder / page, "index.html": folder / page,
            **{name: folder / name for name in assets}}


class PageHandler(BaseHTTPRequestHandler):
    """Serves one session's page: the token check, static files and images.

    A subclass names its page's files (``static_files``, see ``page_files``) and answers its
    own API routes: ``api_json`` for a GET, ``post_api`` for a POST.
    """

    server: PageServer
    static_files: Mapping[str, Path]
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
        return below if slash else _REDIRECT

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

    def _not_found(self, body: bytes = b"not found") -> None:
        self._send(HTTPStatus.NOT_FOUND, body, "text/plain")

    def do_GET(self) -> None:  # noqa: N802 - stdlib name
        route = self._route()
        session = self.server.session
        if route is None:
            self._not_found()
        elif route == _REDIRECT:
            self._send(HTTPStatus.MOVED_PERMANENTLY, b"", "text/plain",
                       {"Location": f"/{session.token}/"})
        elif route in self.static_files:
            path = self.static_files[route]
            kind = CONTENT_TYPES[path.suffix.lstrip(".")]
            self._send(HTTPStatus.OK, path.read_bytes(), f"{kind}; charset=utf-8")
        elif route.startswith("api/image/") and route[10:] in session.images:
            path = session.images[route[10:]]
            kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            self._send(HTTPStatus.OK, path.read_bytes(), kind)
        elif (value := self.api_json(route)) is not None:
            self._json(HTTPStatus.OK, value)
        else:
            self._not_found()

    def do_POST(self) -> None:  # noqa: N802 - stdlib name
        route = self._route()
        if route is None or not self.post_api(route):
            self._not_found()

    def api_json(self, route: str) -> Any:
        """The JSON a GET of ``route`` below the token answers; None when there is no such route."""
        return None

    def post_api(self, route: str) -> bool:
        """Answer a POST to ``route`` below the token; False when there is no such route."""
        return False


class PageServer(ThreadingHTTPServer):
    """A threaded server on 127.0.0.1 for one session."""

    daemon_threads = True

    def __init__(self, session: Any, port: int, handler: type[PageHandler]) -> None:
        self.session = session  # has .token and .images; the handler's API routes read the rest
        super().__init__(("127.0.0.1", port), handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{self.session.token}/"


def make_page_server(session: Any, handler: type[PageHandler], port: int = 0) -> PageServer:
    """A server for ``session`` bound to 127.0.0.1 (port 0 picks a free one)."""
    try:
        return PageServer(session, port, handler)
    except OSError as exc:
        raise BenchError(f"cannot listen on 127.0.0.1:{port} ({exc.strerror}); "
                         "pick another --port") from None


def serve(server: PageServer, open_browser: bool) -> None:
    """Serve until Ctrl-C, opening the page in a browser first when asked."""
    if open_browser:
        webbrowser.open(server.url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def port_number(text: str) -> int:
    """``--port``'s type: 0 to 65535 (0 picks a free one)."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a port number") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port (0 to 65535; 0 picks a free one)")
    return port


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    """``--port``, ``--images`` and ``--no-browser``, as both pages take them."""
    parser.add_argument("--port", type=port_number, default=0,
                        help="local port (default: any free one)")
    parser.add_argument("--images", type=Path, action="append", default=[],
                        help="folder of the prompt images, if the run folder has no images/")
    parser.add_argument("--no-browser", action="store_true", help="only print the URL")
