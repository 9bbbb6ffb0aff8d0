"""The openai adapter against a local chat-completions server that misbehaves on purpose."""

from __future__ import annotations

import base64
import io
import json
import logging

import pytest
from PIL import Image

from harness.errors import BenchError
from harness.hashing import image_id
from harness.registry import load_model
from harness.types import GenerationSettings, ImagePart, Request, TextPart
from tests.models.chat_server import SECRET, Server


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
    faults = ["none", "timeout", "500", "badjson", "empty", "always503", "400", "parts"]
    responses = model.generate([_request(f, seed=i) for i, f in enumerate(faults)])
    by_fault = dict(zip(faults, responses))
    assert [r.request_id for r in responses] == [f"t/{f}/0" for f in faults]
    for fault in ["none", "timeout", "500", "badjson", "empty", "parts"]:
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
    nucleus = GenerationSettings(max_new_tokens=4, temperature=1.0, top_k=40, top_p=0.9)
    model.generate([Request("t/nucleus/0", _request("none").parts, nucleus, seed=99)])
    body = next(b for b in server.bodies if b["seed"] == 99)
    assert (body["top_p"], body["top_k"], body["temperature"]) == (0.9, 40, 1.0)
    body = next(b for b in server.bodies if b["seed"] == 1234)
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


def test_fingerprint_ignores_plumbing_but_not_the_endpoint(server: Server,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VMB_TEST_KEY", SECRET)
    base = {"model": "m", "base_url": server.url, "api_key_env": "VMB_TEST_KEY"}
    gentle = {**base, "max_concurrency": 1, "max_retries": 20, "timeout_s": 900}
    assert load_model("openai", base).fingerprint() == load_model("openai", gentle).fingerprint()
    for change in ({"model": "other"}, {"base_url": server.url + "/x"}, {"system_prompt": "Be kind."}):
        assert load_model("openai", {**base, **change}).fingerprint() != load_model(
            "openai", base).fingerprint(), change


def test_a_broken_image_fails_its_item_only(model, server: Server) -> None:
    encoded = io.BytesIO()
    Image.effect_noise((40, 30), 60).convert("RGB").save(encoded, format="PNG")
    truncated = Image.open(io.BytesIO(encoded.getvalue()[:len(encoded.getvalue()) // 2]))
    broken = Request("t/broken/0", (ImagePart("img-broken", truncated), TextPart("Q: ok?")))
    answers = model.generate([broken, _request("none", seed=2)])
    assert answers[0].error and "unreadable image" in answers[0].error
    assert answers[1].text == "seed=2 images=2"


def test_connections_are_pooled_and_token_usage_is_kept(model, server: Server) -> None:
    for batch in range(3):
        responses = model.generate([_request("none", seed=batch * 10 + i) for i in range(6)])
        assert all(r.error is None for r in responses)
    assert len(server.bodies) == 18
    assert server.connections <= 3  # at most max_concurrency, kept alive across batches
    assert {(r.prompt_tokens, r.completion_tokens) for r in responses} == {(12, 4)}


def test_a_run_records_tokens_and_stage_times(server: Server, mini_tasks, tmp_path) -> None:
    from harness.run.evaluate import evaluate

    args = {"model": "m", "base_url": server.url, "api_key_env": None}
    run = evaluate("openai", "morality_0shot", model_args=args, include_paths=[str(mini_tasks)],
                   output_dir=tmp_path, limit=3)
    assert run.results["usage"] == {"prompt_tokens": 33, "completion_tokens": 12, "n_reported": 3}
    timing = run.results["timing"]
    assert set(timing) == {"load_s", "generate_s", "judge_s"}
    assert timing["generate_s"] >= 0.05  # the server takes 50 ms per request
    journal = [json.loads(x) for x in (run.run_dir / "responses.jsonl").read_text().splitlines()]
    assert {x["prompt_tokens"] for x in journal} == {11}
    # Resumed from the journal: nothing is asked again, and the run's usage is still known.
    again = evaluate("openai", "morality_0shot", model_args=args, include_paths=[str(mini_tasks)],
                     output_dir=tmp_path, limit=3)
    assert len(server.bodies) == 3 and again.results["usage"]["prompt_tokens"] == 33


def test_what_the_server_ran_is_recorded_per_response(server: Server, tmp_path, mini_tasks) -> None:
    from harness import evaluate
    from harness.reports.leaderboard import read_rows

    open_model = load_model("openai", {"model": "m", "base_url": server.url, "api_key_env": None})
    assert open_model.describe()["identity"] == {"source": "server", "base_url": server.url,
                                                 "model": "m"}
    assert open_model.generate([_request("none")])[0].model_revision is None  # none sent
    server.system_fingerprint = "fp_one"
    assert open_model.generate([_request("none")])[0].model_revision == "m-2026-01-01@fp_one"

    result = evaluate(open_model, "morality_0shot", "reference", include_paths=[str(mini_tasks)],
                      output_dir=tmp_path, limit=2)
    assert {s.model_revision for s in result.samples} == {"m-2026-01-01@fp_one"}
    assert result.results["model"]["served_revisions"] == {"m-2026-01-01@fp_one": 2}
    journal = [json.loads(x) for x in (result.run_dir / "responses.jsonl").read_text().splitlines()]
    assert {(x["model_revision"], x["prompt_tokens"], x["completion_tokens"]) for x in journal} == {
        ("m-2026-01-01@fp_one", 11, 4)}  # the revision and the usage, side by side
    lm_eval = json.loads(next(tmp_path.glob("*/results_*.json")).read_text())["vlm_morality_bench"]
    assert lm_eval["served_revisions"] == {"m-2026-01-01@fp_one": 2}
    assert lm_eval["model_identity"] == result.results["model"]["identity_digest"] is not None
    assert read_rows(tmp_path / "leaderboard.jsonl")[-1]["model_revisions"] == ["m-2026-01-01@fp_one"]
    server.system_fingerprint = "fp_two"  # the server changed; the cached answers keep theirs
    (result.run_dir / "responses.jsonl").unlink()
    again = evaluate(open_model, "morality_0shot", "reference", include_paths=[str(mini_tasks)],
                     output_dir=tmp_path, limit=2)
    assert again.results["cached_responses"] == 2
    assert again.results["model"]["served_revisions"] == {"m-2026-01-01@fp_one": 2}
