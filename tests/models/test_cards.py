"""The shipped model cards for the hf and openai adapters, and the card route end to end."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from PIL import Image

from harness import registry
from harness.hashing import image_id
from harness.registry import BUILTIN_MODELS, load_model, model_cards
from harness.types import GenerationSettings, ImagePart, Request, TextPart
from tests.models.chat_server import Server

OURS = ("hf", "openai")


def _adapter_class(name: str) -> type:
    module_name, _, attr = BUILTIN_MODELS[name].partition(":")
    return getattr(__import__(module_name, fromlist=[attr]), attr)


def test_cards_name_real_arguments_of_their_adapter() -> None:
    pytest.importorskip("torch")
    cards = [c for c in model_cards().values() if c.adapter in OURS]
    assert {c.name for c in cards} >= {"llava-1.5-7b", "qwen2-vl-2b-instruct", "smolvlm-instruct",
                                       "idefics2-8b", "vllm"}
    for card in cards:
        accepted = set(inspect.signature(_adapter_class(card.adapter)).parameters)
        assert set(card.args) <= accepted, (card.name, set(card.args) - accepted)
        assert card.description
        if card.adapter == "hf":
            assert re.fullmatch(r"[\w.-]+/[\w.-]+", card.args["pretrained"]), card.name
        else:
            assert card.args["base_url"].startswith(("http://", "https://")), card.name


def test_vllm_card_reaches_a_server_given_on_the_command_line(server: Server) -> None:
    model = load_model("vllm", {"base_url": server.url, "model": "served-name"})
    picture = Image.new("RGB", (4, 4), (9, 9, 9))
    request = Request("v/0/0", (ImagePart(image_id(picture), picture), TextPart("Q: ok? A:")),
                      GenerationSettings(), seed=42)
    (response,) = model.generate([request])
    assert response.text == "seed=42 images=1 STOP tail"
    # Naming the served model on the command line names the leaderboard entry too.
    assert model.registry_name == "vllm:served-name" and server.bodies[0]["model"] == "served-name"
    assert server.auth == {""}  # the card says the local server has no key


def test_a_card_for_a_local_hf_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("transformers")
    from tests.models.tiny_vlms import build_tiny_llava

    folder = build_tiny_llava(tmp_path / "tiny-llava")
    cards = tmp_path / "cards"
    cards.mkdir()
    (cards / "tiny-llava.yaml").write_text(
        f"name: tiny-llava\nadapter: hf\ndescription: test\n"
        f"args:\n  pretrained: {folder}\n  dtype: float32\n  device: cpu\n")
    monkeypatch.setattr(registry, "MODEL_CARDS_DIR", cards)
    model = load_model("tiny-llava", {"use_chat_template": False})
    assert model.registry_name == "tiny-llava" and not model.use_chat_template
    assert model.init_args["pretrained"] == str(folder)  # the card's args, then the override
    request = Request("c/0/0", (TextPart("Q: Do I help her? A:"),),
                      GenerationSettings(max_new_tokens=3, temperature=0.0))
    assert model.generate([request])[0].text
