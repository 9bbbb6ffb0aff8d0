"""The run viewer, served and exported, in a real headless Chromium: shown as text, never run."""

from __future__ import annotations

import io
import json
import shutil
import threading
from pathlib import Path

import pytest
from PIL import Image

from harness.commands.cli import main
from harness.hashing import image_id

CHROMIUM = "/usr/bin/chromium"
playwright_api = pytest.importorskip("playwright.sync_api")

from harness.commands.view import ViewSession, make_server  # noqa: E402

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="needs Debian's chromium")]
SCRIPT = "<script>alert(1)</script><img src=x onerror=alert(2)>"
RED = (200, 10, 10)


def _verdict(outcome: str, reason: str) -> dict:
    if outcome in ("aligned", "misaligned"):
        return {"status": "ok", "aligned": outcome == "aligned", "label": outcome.upper(),
                "reason": reason}
    return {"status": outcome, "reason": reason}


def write_run(folder: Path, responses: list[str], verdicts: list[dict], image: Image.Image) -> Path:
    identifier = image_id(image)
    (folder / "images").mkdir(parents=True)
    image.save(folder / "images" / f"{identifier}.png")
    lines = []
    for index, (response, judged) in enumerate(zip(responses, verdicts)):
        lines.append({
            "schema": 1, "task": "morality_0shot", "doc_id": f"item-{index}", "repeat": 0,
            "request_id": f"morality_0shot/item-{index}/0", "seed": 1,
            "prompt": f"<image>Q: question {index} <b>bold</b>?\nA:", "image_ids": [identifier],
            "fewshot_ids": [], "target": f"Ideal answer {index}.", "expected": "yes",
            "choices": [], "gold": None, "response": response, "loglikelihoods": None,
            "error": None, "doc": {"category": ["care", "harm"][index % 2], "trap": False},
            "doc_hash": "d", "prompt_hash": "p", "target_hash": "t", "verdicts": judged})
    (folder / "samples.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    (folder / "results.json").write_text(json.dumps(
        {"schema": 1, "run_name": folder.name, "model": {"name": folder.name}, "scores": {}}))
    return folder


@pytest.fixture()
def two_runs(tmp_path: Path) -> tuple[Path, Path]:
    image = Image.new("RGB", (8, 6), RED)
    same = {"reference": _verdict("aligned", "matches the reference"),
            "vlm-judge": _verdict("aligned", "judge output 'ALIGNED'")}
    a = write_run(tmp_path / "run-a", ["Yes, I help her.", SCRIPT, "No."], [
        same, {"reference": _verdict("misaligned", "says the opposite"),
               "vlm-judge": _verdict("aligned", "judge output 'ALIGNED'")}, same], image)
    b = write_run(tmp_path / "run-b", ["Yes, I help her.", "Of course not.", "No."], [
        same, {"reference": _verdict("misaligned", "says the opposite"),
               "vlm-judge": _verdict("misaligned", "judge output 'MISALIGNED'")}, same], image)
    return a, b


def check_page(page, dialogs: list[str]) -> None:
    expect = playwright_api.expect
    expect(page.locator("#count")).to_have_text("3 of 3 samples")
    first = page.locator("article.item").first
    # Two runs: the item where they differ comes first, side by side.
    expect(first.locator(".meta").first).to_contain_text("morality_0shot/item-1/0")
    expect(first.locator(".run")).to_have_count(2)
    assert first.locator("pre.response").first.text_content() == SCRIPT
    assert first.locator("pre.prompt").text_content().startswith("<image>Q: question 1 <b>bold</b>?")
    assert first.locator("pre.ideal").text_content() == "Ideal answer 1."
    expect(first.locator("td", has_text="says the opposite").first).to_be_visible()
    expect(first.locator("td", has_text="judge output 'MISALIGNED'")).to_be_visible()
    assert page.locator("#items script, #items b, #items img[src='x']").count() == 0
    image = first.locator(".images img")
    expect(image).to_have_count(1)
    page.wait_for_function("() => [...document.images].every(i => i.complete && i.naturalWidth > 0)")
    assert image.evaluate("img => img.naturalWidth") == 8
    # A screenshot: the image, prompt, response and verdict table are all on screen.
    shot = Image.open(io.BytesIO(page.screenshot())).convert("RGB")
    box = image.bounding_box()
    assert box and box["width"] > 0
    centre = shot.getpixel((int(box["x"] + box["width"] / 2), int(box["y"] + box["height"] / 2)))
    assert all(abs(c - r) < 30 for c, r in zip(centre, RED)), centre
    for selector in ("pre.prompt", "pre.response", "table.verdicts"):
        found = first.locator(selector).first.bounding_box()
        assert found and found["y"] + found["height"] <= shot.height and found["height"] > 0
    # Filters: disagreement, a verdict, a dataset field, runs differ.
    page.check("#f-disagree")
    expect(page.locator("#count")).to_have_text("1 of 3 samples")
    page.uncheck("#f-disagree")
    page.select_option("#f-judge", "vlm-judge")
    page.select_option("#f-outcome", "misaligned")
    expect(page.locator("#count")).to_have_text("1 of 3 samples")
    page.select_option("#f-outcome", "")
    page.select_option("#f-field-category", "care")
    expect(page.locator("#count")).to_have_text("2 of 3 samples")
    page.check("#f-differs")
    expect(page.locator("#count")).to_have_text("0 of 3 samples")
    assert dialogs == []


def test_view_served_and_exported(two_runs: tuple[Path, Path], tmp_path: Path) -> None:
    session = ViewSession(list(two_runs))
    server = make_server(session)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/{session.token}/"
    export_dir = tmp_path / "shared"
    assert main(["view", *map(str, two_runs), "--export", str(export_dir)]) == 0
    dialogs: list[str] = []
    try:
        with playwright_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=["--no-sandbox", "--allow-file-access-from-files"])
            page = browser.new_page(viewport={"width": 1200, "height": 1400})
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            response = page.goto(url)
            assert response is not None and "script-src 'self'" in response.headers[
                "content-security-policy"]
            check_page(page, dialogs)
            wrong = page.goto(url.replace(session.token, "wrong-token"))
            assert wrong is not None and wrong.status == 404
            page.goto((export_dir / "index.html").as_uri())
            check_page(page, dialogs)
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    assert dialogs == []
    assert sorted(p.name for p in export_dir.iterdir()) == [
        "data.js", "images", "index.html", "view.css", "view.js"]
