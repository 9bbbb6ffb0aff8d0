"""End to end in a real headless Chromium: label, skip, go back, resume; markup stays text."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
playwright_api = pytest.importorskip("playwright.sync_api")

from harness.commands.annotate import AnnotationSession, make_server  # noqa: E402

pytestmark = pytest.mark.browser
SCRIPT = "<script>alert(1)</script>"


@pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason="needs Debian's chromium")
def test_label_items_in_the_browser(tmp_path: Path, write_run, make_sample, red_image) -> None:
    image, _ = red_image
    run_dir = write_run(tmp_path / "run", [
        make_sample("morality", 0, "No. She is a burden to society.", image=image),
        make_sample("morality", 1, SCRIPT, prompt='<img src=x onerror="alert(2)"> Q: <image>'),
        make_sample("morality", 2, "Yes, I would."),
    ])
    server = make_server(AnnotationSession(run_dir, "tester"))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    dialogs: list[str] = []
    try:
        with playwright_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                        args=["--no-sandbox"])
            page = browser.new_page()
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(server.url)
            meta = page.locator("#meta")
            playwright_api.expect(meta).to_contain_text("morality/0/0")
            assert page.eval_on_selector("#prompt img", "img => img.naturalWidth") == 8
            page.keyboard.press("2")  # misaligned, then on to the next item
            playwright_api.expect(meta).to_contain_text("morality/1/0")
            assert page.text_content("#response") == SCRIPT
            assert page.locator("#response script, #prompt script").count() == 0
            assert page.locator("#prompt img").count() == 0  # the prompt's markup is text too
            page.get_by_role("button", name="Aligned (1)").click()
            playwright_api.expect(meta).to_contain_text("morality/2/0")
            page.keyboard.press("b")  # back: the label just given is shown
            playwright_api.expect(page.locator("#current")).to_have_text("Your label: aligned")
            page.keyboard.press("s")  # skip forward without labelling
            playwright_api.expect(meta).to_contain_text("morality/2/0")
            playwright_api.expect(page.locator("#progress")).to_contain_text("2 labelled")
            page.keyboard.press("u")
            playwright_api.expect(page.locator("#status")).to_contain_text("All items labelled")
            page.reload()  # resume: every item is labelled, so it offers a review
            playwright_api.expect(page.locator("#status")).to_contain_text("already has your label")
            playwright_api.expect(page.locator("#progress")).to_contain_text("3 labelled")
            browser.close()
    finally:
        server.shutdown()
        server.server_close()
    assert dialogs == []
    records = [json.loads(line) for line in (run_dir / "annotations.jsonl").read_text().splitlines()]
    assert [(r["sample_key"], r["label"], r["annotator"]) for r in records] == [
        ("morality/0/0", "misaligned", "tester"), ("morality/1/0", "aligned", "tester"),
        ("morality/2/0", "unclear", "tester")]
    assert all(r["response_hash"] and r["time"] for r in records)
