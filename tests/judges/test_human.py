"""The annotation server's API, its annotations file and the human judge (no browser)."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from harness.commands.annotate import AnnotationSession, make_server
from harness.errors import BenchError
from harness.judges.human.annotations import (
    Annotation,
    append_annotation,
    majority,
    read_annotations,
    response_hash,
)
from harness.registry import load_judge
from harness.types import JudgeInput


@pytest.fixture
def served(tmp_path: Path, write_run, red_image, make_sample):
    image, _ = red_image
    run_dir = write_run(tmp_path / "run", [make_sample("morality", 0, "No.", image=image),
                                           make_sample("morality", 1, "<b>Yes</b>")])
    session = AnnotationSession(run_dir, "ann")
    server = make_server(session)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield session, server
    server.shutdown()
    server.server_close()


def _get(url: str) -> tuple[int, bytes, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status, reply.read(), dict(reply.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read(), dict(error.headers)


def _post(url: str, body: dict, content_type: str = "application/json") -> int:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return reply.status
    except urllib.error.HTTPError as error:
        return error.code


def test_every_request_needs_the_token(served) -> None:
    session, server = served
    base = f"http://127.0.0.1:{server.server_address[1]}"
    assert server.server_address[0] == "127.0.0.1"
    assert _get(base + "/")[0] == 404
    assert _get(base + "/wrong-token/api/items")[0] == 404
    assert _post(base + "/wrong-token/api/label", {"key": "morality/0/0", "label": "aligned"}) == 404
    status, body, headers = _get(server.url)
    assert status == 200 and b"app.js" in body
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert not (session.run_dir / "annotations.jsonl").exists()


def test_labels_are_appended_and_resumed(served, red_image) -> None:
    session, server = served
    status, body, _ = _get(server.url + "api/items")
    items = json.loads(body)["items"]
    assert [i["key"] for i in items] == ["morality/0/0", "morality/1/0"]
    assert items[1]["response"] == "<b>Yes</b>" and items[0]["ideal"].startswith("Yes")
    image_status, image_bytes, headers = _get(server.url + f"api/image/{red_image[0]}")
    assert image_status == 200 and image_bytes == red_image[1].read_bytes()
    assert headers["Content-Type"] == "image/png"
    assert _post(server.url + "api/label", {"key": "morality/0/0", "label": "misaligned"}) == 200
    assert _post(server.url + "api/label", {"key": "morality/0/0", "label": "aligned"}) == 200
    assert _post(server.url + "api/label", {"key": "morality/9/0", "label": "aligned"}) == 400
    assert _post(server.url + "api/label", {"key": "morality/1/0", "label": "great"}) == 400
    assert _post(server.url + "api/label", {"key": "morality/1/0", "label": "aligned"},
                 content_type="text/plain") == 415
    lines = (session.run_dir / "annotations.jsonl").read_text().splitlines()
    assert len(lines) == 2
    record = json.loads(lines[-1])
    assert record["annotator"] == "ann" and record["label"] == "aligned"
    assert record["task"] == "morality" and record["doc_id"] == 0 and record["repeat"] == 0
    assert record["sample_key"] == "morality/0/0" and record["response_hash"] == response_hash("No.")
    assert record["time"].endswith("+00:00")
    # A new session (resume) sees the newest label; another annotator sees none.
    assert json.loads(_get(server.url + "api/items")[1])["items"][0]["label"] == "aligned"
    assert AnnotationSession(session.run_dir, "other").items()["items"][0]["label"] is None


@pytest.mark.filterwarnings("ignore:.*damaged annotation line")
def test_human_judge_takes_the_majority_of_current_labels(tmp_path: Path) -> None:
    path = tmp_path / "annotations.jsonl"

    def label(who: str, key: str, value: str, response: str) -> None:
        append_annotation(path, Annotation(who, "t", 0, 0, key, response_hash(response),
                                           value, "2026-01-01T00:00:00+00:00"))

    label("a", "t/0/0", "misaligned", "No.")
    label("a", "t/0/0", "aligned", "No.")  # relabelled: the newest wins
    label("b", "t/0/0", "aligned", "No.")
    label("c", "t/0/0", "misaligned", "No.")
    label("a", "t/1/0", "aligned", "old text")  # stale: the response changed since
    label("a", "t/2/0", "aligned", "Yes")
    label("b", "t/2/0", "misaligned", "Yes")
    label("a", "t/3/0", "unclear", "Hm")
    with path.open("a") as handle:
        handle.write('{"annotator": "x", "label": "ali')  # a crash mid-line
    judge = load_judge("human", {"annotations": str(tmp_path)})
    inputs = [JudgeInput(f"t/{i}/0", "Q", text) for i, text in
              enumerate(["No.", "new text", "Yes", "Hm"])]
    with pytest.warns(UserWarning, match="damaged"):
        verdicts = judge.judge(inputs)
    assert (verdicts[0].status, verdicts[0].aligned) == ("ok", True)
    assert verdicts[0].score == pytest.approx(2 / 3)
    assert verdicts[1].status == "error" and "no hand label" in verdicts[1].reason
    assert (verdicts[2].status, verdicts[2].label) == ("unclear", "tie")
    assert verdicts[3].status == "unclear" and verdicts[3].aligned is None
    only_c = load_judge("human", {"annotations": str(path), "annotators": "c"})
    assert only_c.judge(inputs[:1])[0].aligned is False
    assert only_c.describe()["settings"] == {"annotators": ["c"]}
    # A label appended after a damaged last line starts on a fresh line.
    label("d", "t/3/0", "aligned", "Hm")
    with pytest.warns(UserWarning):
        assert [r.annotator for r in read_annotations(path)][-1] == "d"


def test_majority_and_user_errors(tmp_path: Path, write_run, make_sample) -> None:
    assert majority({"a": "aligned", "b": "aligned", "c": "unclear"})[0] == "aligned"
    assert majority({"a": "aligned", "b": "misaligned"})[0] is None
    assert majority({})[0] is None
    with pytest.raises(BenchError, match="samples.jsonl"):
        AnnotationSession(tmp_path / "nowhere", "ann")
    run_dir = write_run(tmp_path / "run", [make_sample("t", 0, "x")])
    with pytest.raises(BenchError, match="annotator"):
        AnnotationSession(run_dir, "  ")
    with pytest.raises(BenchError, match="annotate"):
        load_judge("human", {"annotations": str(run_dir)}).judge([JudgeInput("t/0/0", "Q", "x")])
    unbound = load_judge("human")
    with pytest.raises(BenchError, match="human.annotations"):
        unbound.judge([JudgeInput("t/0/0", "Q", "x")])


def test_images_are_found_in_the_shipped_datasets(tmp_path: Path, write_run, make_sample) -> None:
    from PIL import Image

    from harness.hashing import image_id
    from harness.paths import DATASETS_DIR

    photo = next(iter(sorted(DATASETS_DIR.rglob("images/*.png"))), None)
    assert photo is not None, "the built-in dataset ships images"
    with Image.open(photo) as image:
        identifier = image_id(image.convert("RGB"))
    run_dir = write_run(tmp_path / "run", [make_sample("t", 0, "x", image=identifier)])
    session = AnnotationSession(run_dir, "ann")
    assert session.images[identifier] == photo


def test_annotate_command_prints_the_tokened_url(tmp_path: Path, write_run, make_sample,
                                                 monkeypatch, capsys) -> None:
    import argparse

    from harness.commands import annotate as server
    from harness.commands.page_server import PageServer

    run_dir = write_run(tmp_path / "run", [make_sample("t", 0, "x", image="img-missing")])
    seen: list[str] = []

    def stop_at_once(self) -> None:
        seen.append(self.url)
        raise KeyboardInterrupt

    monkeypatch.setattr(PageServer, "serve_forever", stop_at_once)
    parser = argparse.ArgumentParser()
    server.add_arguments(parser)
    args = parser.parse_args([str(run_dir), "--annotator", "alice", "--no-browser"])
    assert server.run(args) == 0
    printed = capsys.readouterr().out
    assert seen and seen[0] in printed and "/" + seen[0].split("/")[3] + "/" in seen[0]
    assert len(seen[0].split("/")[3]) >= 32  # the token: 24 random bytes, URL-safe
    assert "1 image(s) not found" in printed and "0/1 labelled by 'alice'" in printed


def test_labels_of_a_filtered_task_stay_current(tmp_path: Path, mini_tasks: Path) -> None:
    """The annotator labels the raw response; the human judge must tie labels to that text,
    not to the response after the task's filter_list (which judges otherwise see)."""
    from harness.commands.score import rescore
    from harness.run.evaluate import evaluate

    (mini_tasks / "morality_filtered.yaml").write_text(
        f"include: {mini_tasks / 'morality_0shot.yaml'}\ntask: morality_filtered\n"
        "filter_list: [{name: yesno, filter: [{function: regex, regex_pattern: '(Yes|No)'}]}]\n")
    result = evaluate("oracle", "morality_filtered", "reference", include_paths=[str(mini_tasks)],
                      output_dir=tmp_path / "out", write_leaderboard=False, use_cache=False)
    assert all(s.filtered_response != s.response for s in result.samples)
    session = AnnotationSession(result.run_dir, "ann")
    for key in session.samples:
        session.record(key, "aligned")
    results = rescore(result.run_dir, ["human"], {}, leaderboard=False)
    human = results.scores["morality_filtered"]["human"]
    assert human["n_scored"] == human["n"] == len(result.samples)
    assert human["accuracy"] == 1.0


@pytest.mark.parametrize("length", ["abc", "-5", "99999999999"])
def test_a_bad_content_length_is_a_400_not_a_crash(served, length: str) -> None:
    import http.client

    _, server = served
    connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1], timeout=5)
    connection.putrequest("POST", f"/{server.session.token}/api/label")
    connection.putheader("Content-Type", "application/json")
    connection.putheader("Content-Length", length)
    connection.endheaders()
    reply = connection.getresponse()
    assert reply.status == 400 and json.loads(reply.read()) == {"error": "bad body size"}
    connection.close()
