"""A local chat-completions server for tests, with faults chosen by the prompt.

A prompt containing ``fault=NAME`` makes the server misbehave for that request (see
``_reply``); the server records every attempt, body and Authorization header it saw.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = "sk-test-7f3a9c1e5b2d"


@dataclass
class Server:
    """What the fake server saw, shared with its handler threads."""

    url: str = ""
    attempts: Counter = field(default_factory=Counter)
    times: dict[str, list[float]] = field(default_factory=dict)
    bodies: list[dict] = field(default_factory=list)
    auth: set[str] = field(default_factory=set)
    connections: int = 0
    in_flight: int = 0
    most_in_flight: int = 0
    #: What the server reports running (OpenAI's ``system_fingerprint``); None sends none.
    system_fingerprint: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(state: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real servers do

        def setup(self) -> None:
            super().setup()
            with state.lock:
                state.connections += 1

        def log_message(self, *args: object) -> None:  # keep pytest output clean
            pass

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            text = "\n".join(m["content"] if isinstance(m["content"], str)
                           else "".join(c.get("text", "") for c in m["content"])
                           for m in body["messages"])
            fault = text.split("fault=")[1].split()[0] if "fault=" in text else "none"
            with state.lock:
                state.bodies.append(body)
                state.auth.add(self.headers.get("Authorization", ""))
                state.attempts[fault] += 1
                state.times.setdefault(fault, []).append(time.monotonic())
                attempt = state.attempts[fault]
                state.in_flight += 1
                state.most_in_flight = max(state.most_in_flight, state.in_flight)
            try:
                self._reply(body, fault, attempt)
            finally:
                with state.lock:
                    state.in_flight -= 1

        def _reply(self, body: dict, fault: str, attempt: int) -> None:
            if self.headers.get("Authorization") not in (f"Bearer {SECRET}", None):
                return self._send(401, b'{"error": "bad key"}')
            if self.path != "/v1/chat/completions":
                return self._send(404, b'{"error": "not found"}')
            first = attempt == 1
            if fault == "timeout" and first:
                time.sleep(0.6)  # the client gives up after 0.3 s
            elif fault == "500" and attempt <= 2:
                return self._send(500, b"internal error")
            elif fault == "429" and first:
                return self._send(429, b'{"error": "slow down"}', {"Retry-After": "1"})
            elif fault == "badjson" and first:
                return self._send(200, b'{"choices": [{"message": ')
            elif fault == "empty" and first:
                return self._send(200, b'{"choices": []}')
            elif fault == "always503":
                return self._send(503, b"overloaded")
            elif fault == "leak":
                return self._send(500, f"debug: {self.headers.get('Authorization')}".encode())
            elif fault == "leakcut":  # the key straddles the 200th character of the body
                return self._send(500, ("x" * 190 + f" key={SECRET} trailing text").encode())
            elif fault == "leak64":  # the key echoed inside a Basic credential
                basic = base64.b64encode(f"user:{SECRET}".encode()).decode()
                return self._send(500, f"bad credential Basic {basic}".encode())
            elif fault == "echo":  # a completion that repeats the key
                reply = {"choices": [{"message": {"content": f"My key: {SECRET}. Yes."}}]}
                return self._send(200, json.dumps(reply).encode())
            elif fault == "echojson":  # a malformed reply that holds the key
                return self._send(200, f'{{"choices": "{"y" * 100}{SECRET}'.encode())
            elif fault == "400":
                return self._send(400, b'{"error": "context too long"}')
            time.sleep(0.05)  # long enough for concurrent requests to overlap
            images = sum(c["type"] == "image_url" for c in body["messages"][-1]["content"])
            answer = f"seed={body['seed']} images={images} STOP tail"
            content: object = answer
            if fault == "parts":
                content = [{"type": "text", "text": answer[:4]}, {"type": "text", "text": answer[4:]}]
            reply: dict = {"choices": [{"index": 0, "message": {"role": "assistant",
                                                              "content": content}}],
                           "usage": {"prompt_tokens": 10 + images, "completion_tokens": 4}}
            if state.system_fingerprint:
                reply.update(model=f"{body['model']}-2026-01-01",
                             system_fingerprint=state.system_fingerprint)
            return self._send(200, json.dumps(reply).encode(), {"Content-Type": "application/json"})

    return Handler


@contextmanager
def running_server() -> Iterator[Server]:
    """Serve on a free local port in a background thread until the block ends."""
    state = Server()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


