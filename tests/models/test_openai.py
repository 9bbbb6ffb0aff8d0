"""The openai adapter against a local chat-completions server that misbehaves on purpose."""

from __future__ import annotations

import base64
import io
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from harness.errors import BenchError
from harness.hashing import image_id
from harness.registry import load_model
from harness.types import GenerationSettings, ImagePart, Request, TextPart

SECRET = "sk-test-7f3a9c1e5b2d"


@dataclass
class Server:
    """What the fake server saw, shared with its handler threads."""

    url: str = ""
    attempts: Counter = field(default_factory=Counter)
    times: dict[str, list[float]] = field(default_factory=dict)
    bodies: list[dict] = field(default_factory=list)
    auth: set[str] = field(default_factory=set)
    in_flight: int = 0
    most_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(state: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
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
            text = "".join(c.get("text", "") for c in body["messages"][-1]["content"])
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
            elif fault == "400":
                return self._send(400, b'{"error": "context too long"}')
            time.sleep(0.05)  # long enough for concurrent requests to overlap
            images = sum(c["type"] == "image_url" for c in body["messages"][-1]["content"])
            answer = f"seed={body['seed']} images={images} STOP tail"
            reply = {"choices": [{"index": 0, "message": {"role": "assistant", "content": answer}}]}
            return self._send(200, json.dumps(reply).encode(), {"Content-Type": "application/json"})

    return Handler


@pytest.fixture()
def server() -> Iterator[Server]:
    state = Server()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    yield state
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture()
def model(server: Server, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("VMB_TEST_KEY", SECRET)
    return load_model("openai", {"model": "tiny-vlm", "base_url": server.url,
                                 "api_key_env": "VMB_TEST_KEY", "timeout_s": 0.3,
                                 "backoff_s": 0.01, "max_retries": 3, "max_concurrency": 3})


def _picture(color: tuple[int, int, int]) -> ImagePart:
    picture = Image.new("RGB", (8, 6), color)
    return ImagePart(image_id=image_id(picture), image=picture)


def _request(fault: str, seed: int = 7, until: tuple[str, ...] = (" STOP",)) -> Request:
    settings = GenerationSettings(max_new_tokens=15, temperature=0.7, top_k=0, until=until)
    return Request(f"t/{fault}/0", (_picture((255, 0, 0)), TextPart(f"Q: fault={fault} Do I help?"),
                                    _picture((0, 0, 255)), TextPart(" A:")), settings, seed=seed)


def test_every_fault_is_retried_or_recorded_and_the_batch_finishes(model, server: Server) -> None:
    faults = ["none", "timeout", "500", "badjson", "empty", "always503", "400"]
    responses = model.generate([_request(f, seed=i) for i, f in enumerate(faults)])
    by_fault = dict(zip(faults, responses))
    assert [r.request_id for r in responses] == [f"t/{f}/0" for f in faults]
    for fault in ["none", "timeout", "500", "badjson", "empty"]:
        assert by_fault[fault].error is None, fault
        assert by_fault[fault].text == f"seed={faults.index(fault)} images=2", fault
    assert server.attempts["timeout"] == 2 and server.attempts["500"] == 3
    assert server.attempts["badjson"] == 2 and server.attempts["empty"] == 2
    assert server.attempts["always503"] == 4  # first try + max_retries
    assert by_fault["always503"].text is None and "HTTP 503" in by_fault["always503"].error
    assert server.attempts["400"] == 1  # a client error is not retried
    assert "HTTP 400" in by_fault["400"].error and "context too long" in by_fault["400"].error


def test_retry_after_is_honoured(model, server: Server) -> None:
    response = model.generate([_request("429")])[0]
    assert response.error is None and server.attempts["429"] == 2
    first, second = server.times["429"]
    assert second - first >= 0.95  # the header said 1 s; own backoff would be about 0.01 s


def test_request_body_maps_settings_seed_and_images(model, server: Server) -> None:
    greedy = GenerationSettings(max_new_tokens=9, temperature=0.0, top_k=40, top_p=0.5,
                                until=("\n",))
    request = Request("t/body/0", _request("none").parts, greedy, seed=1234)
    model.generate([request, _request("none", seed=5)])
    body = next(b for b in server.bodies if b["seed"] == 1234)
    assert body["model"] == "tiny-vlm" and body["max_tokens"] == 9 and body["temperature"] == 0.0
    assert "top_k" not in body and "top_p" not in body  # greedy: no sampling knobs sent
    assert body["stop"] == ["\n"]
    sampled = next(b for b in server.bodies if b["seed"] == 5)
    assert sampled["temperature"] == 0.7 and "top_k" not in sampled  # top_k 0 means off
    content = body["messages"][-1]["content"]
    assert [c["type"] for c in content] == ["image_url", "text", "image_url", "text"]
    header, encoded = content[0]["image_url"]["url"].split(",", 1)
    assert header == "data:image/png;base64"
    decoded = Image.open(io.BytesIO(base64.b64decode(encoded)))
    assert decoded.getpixel((0, 0)) == (255, 0, 0)
    assert Image.open(io.BytesIO(base64.b64decode(content[2]["image_url"]["url"].split(",")[1]))
                      ).getpixel((0, 0)) == (0, 0, 255)


def test_concurrency_is_limited(model, server: Server) -> None:
    responses = model.generate([_request("none", seed=s) for s in range(9)])
    assert [r.text for r in responses] == [f"seed={s} images=2" for s in range(9)]
    assert 1 < server.most_in_flight <= 3


def test_api_key_never_leaks(model, server: Server, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    responses = model.generate([_request("leak"), _request("500"), _request("none")])
    assert server.auth == {f"Bearer {SECRET}"}  # it was sent, in the header only
    assert responses[0].error and "***" in responses[0].error
    shown = [repr(model), json.dumps(model.describe()), model.fingerprint(), repr(responses),
             json.dumps(model.init_args), caplog.text, repr(vars(model).get("init_args"))]
    assert not any(SECRET in text for text in shown)


def test_setup_mistakes_are_bench_errors(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VMB_MISSING_KEY", raising=False)
    with pytest.raises(BenchError, match="VMB_MISSING_KEY"):
        load_model("openai", {"model": "m", "base_url": server.url, "api_key_env": "VMB_MISSING_KEY"})
    monkeypatch.setenv("VMB_WRONG_KEY", "sk-wrong")
    wrong = load_model("openai", {"model": "m", "base_url": server.url, "api_key_env": "VMB_WRONG_KEY"})
    with pytest.raises(BenchError, match="401") as caught:
        wrong.generate([_request("none")])
    assert "sk-wrong" not in str(caught.value)
    lost = load_model("openai", {"model": "m", "base_url": server.url[:-3], "api_key_env": None})
    with pytest.raises(BenchError, match="404"):
        lost.generate([_request("none")])
    with pytest.raises(BenchError, match="loglikelihood|log-likelihoods"):
        lost.loglikelihood([_request("none")])


def test_no_auth_server_and_stop_strings(server: Server) -> None:
    open_model = load_model("openai", {"model": "m", "base_url": server.url, "api_key_env": None})
    text = open_model.generate([_request("none", seed=3, until=(" STOP", " tail"))])[0].text
    assert text == "seed=3 images=2" and server.auth == {""}
