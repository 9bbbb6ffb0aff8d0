"""A separate package adds a model through the entry point group, with no change to the harness."""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from harness.errors import BenchError
from harness.hashing import image_id
from harness.registry import MODEL_GROUP, load_model, model_names
from harness.types import GenerationSettings, ImagePart, Request, TextPart

PLUGIN = Path(__file__).resolve().parent.parent / "plugin_example"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory):
    """pip-install the plugin (offline, no deps) into a private folder put on sys.path."""
    work = tmp_path_factory.mktemp("plugin")
    source = shutil.copytree(PLUGIN, work / "src-copy")  # the build writes into its source tree
    target = work / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                    "--no-build-isolation", "--disable-pip-version-check", "--target", str(target),
                    str(source)], check=True)
    assert list(target.glob("vmb_plugin_example-0.1.0.dist-info/entry_points.txt"))
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    yield target
    sys.path.remove(str(target))
    sys.modules.pop("vmb_plugin_example", None)
    importlib.invalidate_caches()


def _request(request_id: str, colour: tuple[int, int, int]) -> Request:
    picture = Image.new("RGB", (6, 6), colour)
    return Request(request_id, (ImagePart(image_id(picture), picture), TextPart("Q: Do I help? A:")),
                   GenerationSettings(), seed=1, continuations=(" Yes", " No"))


@pytest.mark.slow
def test_installed_plugin_is_listed_loaded_and_run(installed: Path) -> None:
    assert "colour-vote" in model_names()
    from importlib import metadata
    (entry,) = [e for e in metadata.entry_points(group=MODEL_GROUP) if e.name == "colour-vote"]
    assert entry.value == "vmb_plugin_example:ColourVote"

    model = load_model("colour-vote", {"yes_text": "Yes, help.", "no_text": "No."})
    assert model.registry_name == "colour-vote" and model.init_args == {"yes_text": "Yes, help.",
                                                                         "no_text": "No."}
    assert type(model).__module__ == "vmb_plugin_example"
    red, blue = _request("p/0/0", (220, 10, 10)), _request("p/1/0", (10, 10, 220))
    assert [r.text for r in model.generate([red, blue])] == ["Yes, help.", "No."]
    yes_red, no_red = model.loglikelihood([red])[0].loglikelihoods
    assert yes_red > no_red


def test_unknown_plugin_name_suggests_the_close_one(installed: Path) -> None:
    with pytest.raises(BenchError, match="colour-vote"):
        load_model("colour-vot")


@pytest.mark.slow
def test_plugin_model_runs_a_task(installed: Path, tmp_path: Path) -> None:
    from harness.run import evaluate as runner

    result = runner.evaluate("colour-vote", "morality_0shot,morality_0shot_mc", limit=4,
                             batch_size=4, output_dir=tmp_path, write_leaderboard=False)
    lines = (result.run_dir / "samples.jsonl").read_text().splitlines()
    samples = [json.loads(line) for line in lines]
    assert len(samples) == 8 and all(s["error"] is None for s in samples)
    assert {s["response"] for s in samples if s["task"] == "morality_0shot"} <= {"Yes.", "No."}
    assert result.results["model"]["name"] == "colour-vote"
