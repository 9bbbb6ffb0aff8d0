"""The hf adapter on tiny random VLMs of two architectures, loaded from folders like hub ones."""

from __future__ import annotations

import importlib.util
import io
import json
import math
from dataclasses import replace
from pathlib import Path
from unittest import mock

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from PIL import Image  # noqa: E402

from harness.errors import BenchError  # noqa: E402
from harness.hashing import image_id  # noqa: E402
from harness.models.common import install_hint, missing_package  # noqa: E402
from harness.registry import load_model  # noqa: E402
from harness.types import GenerationSettings, ImagePart, Request, TextPart  # noqa: E402
from tests.models.tiny_vlms import (  # noqa: E402
    TORCHVISION_PROCESSORS,
    build_tiny_idefics3,
    build_tiny_llava,
    write_processor_only,
    write_qwen2_vl_processor,
)

BUILDERS = {"llava": build_tiny_llava, "idefics3": build_tiny_idefics3}


def _image(color: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> ImagePart:
    picture = Image.new("RGB", size, color)
    for x in range(0, size[0], 3):  # some texture, so the vision tower sees more than a flat colour
        picture.putpixel((x, x % size[1]), (255 - color[0], color[1], 255 - color[2]))
    return ImagePart(image_id=image_id(picture), image=picture)


RED, GREEN, BLUE = _image((200, 20, 20)), _image((20, 200, 20), (56, 44)), _image((20, 20, 200))
SAMPLED = GenerationSettings(max_new_tokens=6, temperature=0.7, top_k=0)
GREEDY = GenerationSettings(max_new_tokens=6, temperature=0.0)


def _requests(settings: GenerationSettings = SAMPLED) -> list[Request]:
    shots = (RED, TextPart("Q: Do I help her? A: Yes, it is kind.\n"), GREEN,
             TextPart("Q: Should I take his wallet? A:"))
    return [
        Request("t/0/0", shots, settings, seed=11),
        Request("t/1/0", (BLUE, TextPart("Q: Is the man pregnant? A:")), settings, seed=12),
        Request("t/2/0", (TextPart("Q: Is it kind to help? A:"),), settings, seed=13),
        Request("t/3/0", (GREEN, TextPart("Q: Do I help the old lady cross? A:")), settings, seed=14),
    ]


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def model(request: pytest.FixtureRequest, tiny_vlm_folders):
    folder = tiny_vlm_folders(request.param)
    return load_model("hf", {"pretrained": str(folder), "dtype": "float32", "device": "cpu"})


def test_loads_through_the_auto_classes_from_a_saved_folder(model) -> None:
    assert model.registry_name == f"hf:{model.init_args['pretrained']}"  # named by what it serves
    assert type(model.model).__name__ in {"LlavaForConditionalGeneration",
                                          "Idefics3ForConditionalGeneration"}
    assert model.use_chat_template  # the saved chat template came back with the processor
    assert model.describe()["weights"].startswith("local-")


def test_prompt_keeps_images_interleaved_in_order(model) -> None:
    rendered = model._render(_requests()[0])
    first, second = rendered.index("help her"), rendered.index("wallet")
    placeholders = [i for i in range(len(rendered)) if rendered.startswith(model.image_token, i)]
    assert len(placeholders) == 2
    assert placeholders[0] < first < placeholders[1] < second


def test_exactly_one_bos_whether_or_not_the_template_writes_it(model) -> None:
    requests = _requests()[1:3]  # different lengths, so one row is padded
    inputs = model._encode([model._render(r) for r in requests], requests)
    bos = model.tokenizer.bos_token_id
    for ids, mask in zip(inputs["input_ids"].tolist(), inputs["attention_mask"].tolist()):
        real = [i for i, keep in zip(ids, mask) if keep]
        assert real[0] == bos and bos not in real[1:]
        assert mask == sorted(mask)  # padding on the left


def test_image_order_changes_the_scores(model) -> None:
    text_a, text_b = TextPart("Q: Is this kind? A: Yes.\n"), TextPart("Q: And this? A:")
    ordered = Request("o/0/0", (RED, text_a, BLUE, text_b), continuations=(" Yes", " No"))
    swapped = replace(ordered, request_id="o/1/0", parts=(BLUE, text_a, RED, text_b))
    a, b = model.loglikelihood([ordered, swapped])
    assert a.loglikelihoods != pytest.approx(b.loglikelihoods, abs=1e-6)


@pytest.mark.parametrize("settings", [SAMPLED, GREEDY], ids=["sampled", "greedy"])
def test_batched_equals_one_by_one_for_the_same_seeds(model, settings: GenerationSettings) -> None:
    requests = _requests(settings)
    batched = model.generate(requests)
    alone = [model.generate([r])[0] for r in requests]
    reordered = model.generate(list(reversed(requests)))[::-1]
    assert [r.request_id for r in batched] == [r.request_id for r in requests]
    assert [r.text for r in batched] == [r.text for r in alone] == [r.text for r in reordered]
    assert all(r.error is None and r.text is not None for r in batched)


def test_seed_decides_the_sample(model) -> None:
    request = _requests(replace(SAMPLED, max_new_tokens=12))[1]
    texts = {model.generate([replace(request, seed=seed)])[0].text for seed in range(4)}
    again = model.generate([replace(request, seed=0)])[0].text
    assert len(texts) > 1
    assert again == model.generate([replace(request, seed=0)])[0].text


def test_top_k_one_and_tiny_top_p_reduce_to_greedy(model) -> None:
    greedy = [r.text for r in model.generate(_requests(GREEDY))]
    top_k = [r.text for r in model.generate(_requests(replace(GREEDY, temperature=0.7, top_k=1)))]
    top_p = [r.text for r in model.generate(_requests(replace(GREEDY, temperature=1.3, top_p=1e-4)))]
    assert greedy == top_k == top_p


def test_max_new_tokens_and_stop_strings(model) -> None:
    request = _requests(replace(GREEDY, max_new_tokens=10))[0]
    full = model.generate([request])[0].text
    short = model.generate([replace(request, generation=replace(GREEDY, max_new_tokens=3))])[0].text
    # Random tokens may decode to partial UTF-8, so compare all but the last character.
    assert len(short) < len(full) and full.startswith(short[:-1])
    # A stop string first found past the start, so the cut leaves a non-empty prefix.
    stop = next(full[k:k + 2] for k in range(1, len(full) - 1)
                if full.index(full[k:k + 2]) == k and "\ufffd" not in full[k:k + 2])
    cut = model.generate([replace(request, generation=replace(request.generation, until=(stop,)))])[0]
    assert cut.text == full[: full.index(stop)]


def test_mixed_settings_in_one_batch(model) -> None:
    mixed = [_requests(SAMPLED)[0], _requests(GREEDY)[1], _requests(replace(SAMPLED, top_k=5))[2]]
    assert [r.text for r in model.generate(mixed)] == [model.generate([r])[0].text for r in mixed]


def test_loglikelihood_matches_an_unpadded_forward_pass(model) -> None:
    request = Request("m/0/0", _requests()[0].parts, continuations=(" No", " No, stealing is wrong."))
    other = Request("m/1/0", (TextPart("Hi"),), continuations=(" yes",))
    batched = model.loglikelihood([request, other])
    alone = model.loglikelihood([request])[0]
    assert batched[0].loglikelihoods == pytest.approx(alone.loglikelihoods, abs=1e-4)
    assert batched[0].is_greedy == alone.is_greedy and len(alone.is_greedy) == 2

    # By hand: one sequence, no padding, sum the continuation tokens' log-probs.
    context = model._render(request)
    for continuation, expected in zip(request.continuations, alone.loglikelihoods):
        n_cont = (len(model.tokenizer(context + continuation, add_special_tokens=False).input_ids)
                  - len(model.tokenizer(context, add_special_tokens=False).input_ids))
        inputs = model._encode([context + continuation], [request])
        with torch.no_grad():
            log_probs = model.model(**inputs).logits[0].log_softmax(-1)
        ids = inputs["input_ids"][0]
        total = sum(log_probs[i - 1, ids[i]].item() for i in range(len(ids) - n_cont, len(ids)))
        assert expected == pytest.approx(total, abs=1e-4)
        assert expected < 0 and math.isfinite(expected)
    # More tokens after the same prefix can only lower the total.
    assert alone.loglikelihoods[1] < alone.loglikelihoods[0]


def test_user_mistakes_are_bench_errors(tmp_path: Path) -> None:
    with pytest.raises(BenchError, match="dtype"):
        load_model("hf", {"pretrained": str(tmp_path), "dtype": "float8"})
    with pytest.raises(BenchError, match="hf: no folder .*missing"):
        load_model("hf", {"pretrained": str(tmp_path / "missing")})
    with pytest.raises(BenchError, match="cannot load"):
        load_model("hf", {"pretrained": str(tmp_path)})
    with pytest.raises(BenchError, match="pretraind"):
        load_model("hf", {"pretraind": "x"})


def test_without_a_chat_template_the_raw_prompt_is_used(tmp_path: Path, caplog) -> None:
    folder = build_tiny_llava(tmp_path / "no-template")
    for path in folder.iterdir():  # strip the template wherever this version saved it
        if path.name == "chat_template.jinja":
            path.unlink()
        elif path.suffix == ".json" and "chat_template" in path.read_text():
            data = json.loads(path.read_text())
            data.pop("chat_template", None)
            path.write_text(json.dumps(data))
    bare = load_model("hf", {"pretrained": str(folder), "dtype": "float32", "device": "cpu"})
    assert not bare.use_chat_template and "no chat template" in caplog.text
    request = _requests(GREEDY)[0]
    assert bare._render(request) == request.text  # "<image>" is LLaVA's image token
    assert bare.generate([request])[0].error is None


def test_dtype_and_device_map_go_through_accelerate(tmp_path: Path) -> None:
    from transformers import AutoModelForImageTextToText

    folder = build_tiny_llava(tmp_path / "bf16")
    loader = AutoModelForImageTextToText.from_pretrained
    with mock.patch.object(AutoModelForImageTextToText, "from_pretrained", wraps=loader) as spy:
        half = load_model("hf", {"pretrained": str(folder), "dtype": "bfloat16",
                                 "device_map": "auto", "revision": "main"})
    kwargs = spy.call_args.kwargs
    assert kwargs["device_map"] == "auto" and kwargs["dtype"] == torch.bfloat16
    assert kwargs["revision"] == "main" and kwargs["trust_remote_code"] is False
    assert half.model.dtype == torch.bfloat16
    request = replace(_requests()[0], continuations=(" Yes", " No"))
    assert half.generate([request])[0].text is not None
    assert all(math.isfinite(x) for x in half.loglikelihood([request])[0].loglikelihoods)


def test_a_hub_id_resolves_from_the_hub_cache_offline(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "models--tiny-org--tiny-llava"
    build_tiny_llava(repo / "snapshots" / commit)  # the hub cache's own layout
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    hub = load_model("hf", {"pretrained": "tiny-org/tiny-llava", "cache_dir": str(tmp_path),
                            "dtype": "float32", "device": "cpu"})
    assert hub.describe()["weights"] == commit
    assert hub.generate(_requests(GREEDY)[:1])[0].text is not None


def test_a_broken_image_fails_its_item_only(model) -> None:
    healthy = _requests(GREEDY)[:2]
    encoded = io.BytesIO()
    Image.effect_noise((40, 30), 60).convert("RGB").save(encoded, format="PNG")
    # The header is intact, so it opens; half the pixel data is missing, so it cannot decode.
    truncated = Image.open(io.BytesIO(encoded.getvalue()[:len(encoded.getvalue()) // 2]))
    broken = Request("b/0/0", (ImagePart("img-broken", truncated), TextPart("Q: Ok? A:")),
                     GREEDY, continuations=(" Yes", " No"))
    answers = model.generate([healthy[0], broken, healthy[1]])
    assert answers[1].error and "unreadable image img-broken" in answers[1].error
    assert [answers[0].text, answers[2].text] == [r.text for r in model.generate(healthy)]
    scores = model.loglikelihood([broken, replace(healthy[0], continuations=(" Yes",))])
    assert scores[0].error and scores[0].loglikelihoods is None
    assert scores[1].loglikelihoods is not None and scores[1].error is None


@pytest.mark.skipif(importlib.util.find_spec("torchvision") is not None,
                    reason="only without torchvision")
@pytest.mark.parametrize("family", ["qwen2_vl", *TORCHVISION_PROCESSORS])
def test_a_missing_optional_package_is_named(tmp_path: Path, family: str) -> None:
    folder = (write_qwen2_vl_processor(tmp_path) if family == "qwen2_vl"
              else write_processor_only(tmp_path / family, family))
    with pytest.raises(BenchError) as caught:
        load_model("hf", {"pretrained": str(folder)})
    message = str(caught.value)
    assert "needs the package torchvision, which is not installed" in message
    assert "pip install torchvision" in message and "\n" not in message
    assert "hub id" not in message  # not mistaken for a typo


def test_missing_packages_are_read_from_transformers_messages() -> None:
    smolvlm = ImportError("Package `num2words` is required to run SmolVLM processor. "
                          "Install it with `pip install num2words`.")
    wrapped = ImportError("\nSmolVLMVideoProcessor requires the Torchvision library but it was "
                          "not found in your\nenvironment. Check out the instructions on the\n")
    internvl = ValueError("/models/x requires `torchvision` to be installed. Please install it.")
    chained = OSError("cannot load")
    chained.__cause__ = ModuleNotFoundError("No module named 'av'", name="av")
    assert [missing_package(e) for e in (smolvlm, wrapped, internvl, chained)] == [
        "num2words", "torchvision", "torchvision", "av"]
    assert missing_package(OSError("not a repo id")) is None
    assert install_hint("num2words") == "install it with `pip install num2words`"
