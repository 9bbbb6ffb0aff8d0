"""The hf adapter on eight architecture families of tiny random VLMs, each checked against a
direct transformers computation: generate, log-likelihood, one BOS, several images, refusals."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from PIL import Image  # noqa: E402

from harness.errors import BenchError  # noqa: E402
from harness.hashing import image_id  # noqa: E402
from harness.registry import load_model  # noqa: E402
from harness.types import GenerationSettings, ImagePart, Request, TextPart  # noqa: E402

FAMILIES = ["llava", "idefics3", "llava_next", "idefics2", "gemma3", "mllama", "aya_vision",
            "paligemma"]
#: PaliGemma's processor puts every image before the text (its images must lead the prompt).
IMAGES_LEAD = {"paligemma"}
GREEDY = GenerationSettings(max_new_tokens=5, temperature=0.0)
SAMPLED = GenerationSettings(max_new_tokens=5, temperature=0.9, top_k=0)


def _image(color: tuple[int, int, int], size: tuple[int, int] = (40, 30)) -> ImagePart:
    picture = Image.new("RGB", size, color)
    for x in range(0, size[0], 3):  # texture, so the vision tower sees more than a flat colour
        picture.putpixel((x, x % size[1]), (255 - color[0], color[1], 255 - color[2]))
    return ImagePart(image_id=image_id(picture), image=picture)


RED, GREEN = _image((200, 20, 20)), _image((20, 200, 20), (56, 44))


@pytest.fixture(scope="session")
def loaded(tiny_vlm_folders):
    models: dict[tuple[str, bool], Any] = {}

    def get(family: str, chat_template: bool = True) -> Any:
        if (family, chat_template) not in models:
            models[family, chat_template] = load_model("hf", {
                "pretrained": str(tiny_vlm_folders(family)), "dtype": "float32",
                "device": "cpu", "use_chat_template": chat_template})
        return models[family, chat_template]

    return get


def _two_image_parts(family: str) -> tuple[Any, ...]:
    if family in IMAGES_LEAD:
        return (RED, GREEN, TextPart("Q: Do I help her? A: Yes.\nQ: Should I take it? A:"))
    return (RED, TextPart("Q: Do I help her? A: Yes.\n"), GREEN, TextPart("Q: Should I take it? A:"))


def _requests(family: str, settings: GenerationSettings) -> list[Request]:
    return [Request("f/0/0", _two_image_parts(family), settings, seed=1),
            Request("f/1/0", (GREEN, TextPart("Q: Is it kind? A:")), settings, seed=2),
            Request("f/2/0", (RED, TextPart("Q: Do I help the old lady cross? A:")), settings, seed=3)]


def _direct_loglikelihood(model: Any, request: Request, continuation: str) -> float:
    """The continuation's log-probability computed with transformers alone, one sequence.

    PaliGemma: the processor's own ``suffix`` and ``labels`` (its prefix attends
    bidirectionally, so the continuation must be the suffix). Others: the full prompt's ids,
    where the continuation's own tokens (tokenized alone) are found as the last match.
    """
    processor, net, tokenizer = model.processor, model.model, model.tokenizer
    context = model._render(request)
    images = [[p.image for p in request.images]]
    if model._suffix_scoring:
        inputs = processor(text=[context], images=images, suffix=[continuation],
                           return_tensors="pt")
        labels = inputs.pop("labels")[0]
        with torch.no_grad():
            log_probs = net(**inputs).logits[0].float().log_softmax(-1)
        positions = [i for i in range(1, len(labels)) if labels[i] != -100][:-1]  # less EOS
        ids = inputs["input_ids"][0]
        return sum(log_probs[i - 1, ids[i]].item() for i in positions)
    inputs = model._encode([context + continuation], [request])
    ids = inputs["input_ids"][0].tolist()
    wanted = tokenizer(continuation, add_special_tokens=False).input_ids
    starts = [i for i in range(len(ids) - len(wanted) + 1) if ids[i:i + len(wanted)] == wanted]
    assert starts, f"{continuation!r} does not appear tokenized alone in the prompt"
    start = starts[-1]
    with torch.no_grad():
        log_probs = net(**inputs).logits[0].float().log_softmax(-1)
    return sum(log_probs[i - 1, ids[i]].item() for i in range(start, start + len(wanted)))


@pytest.mark.parametrize("family", FAMILIES)
def test_loglikelihood_matches_transformers(loaded, family: str) -> None:
    model = loaded(family)
    requests = [replace(r, continuations=(" Yes", " No", " No, it is wrong."))
                for r in _requests(family, GREEDY)]
    batched = model.loglikelihood(requests)
    assert all(r.error is None for r in batched), [r.error for r in batched]
    for request, response in zip(requests, batched):
        for continuation, value in zip(request.continuations, response.loglikelihoods):
            assert value == pytest.approx(_direct_loglikelihood(model, request, continuation),
                                          abs=2e-4)
    alone = model.loglikelihood(requests[:1])[0]
    assert alone.loglikelihoods == pytest.approx(batched[0].loglikelihoods, abs=2e-4)


@pytest.mark.parametrize("family", FAMILIES)
def test_generate_is_batch_independent_with_two_images(loaded, family: str) -> None:
    model = loaded(family)
    for settings in (GREEDY, SAMPLED):
        requests = _requests(family, settings)
        batched = model.generate(requests)
        alone = [model.generate([r])[0] for r in requests]
        assert all(r.error is None and r.text is not None for r in batched), [r.error for r in batched]
        assert [r.text for r in batched] == [r.text for r in alone]
    # Both images reach the model: swapping them changes the scores.
    parts = _two_image_parts(family)
    swapped = (parts[2], parts[1], parts[0], *parts[3:]) if family not in IMAGES_LEAD else (
        GREEN, RED, *parts[2:])
    ordered = Request("s/0/0", parts, continuations=(" Yes",))
    a, b = model.loglikelihood([ordered, replace(ordered, request_id="s/1/0", parts=swapped)])
    assert a.loglikelihoods != pytest.approx(b.loglikelihoods, abs=1e-6)


@pytest.mark.parametrize("chat_template", [True, False], ids=["template", "raw"])
@pytest.mark.parametrize("family", FAMILIES)
def test_exactly_one_bos(loaded, family: str, chat_template: bool) -> None:
    model = loaded(family, chat_template)
    bos = model.tokenizer.bos_token_id
    requests = _requests(family, GREEDY)
    inputs = model._encode([model._render(r) for r in requests], requests)
    for ids, mask in zip(inputs["input_ids"].tolist(), inputs["attention_mask"].tolist()):
        real = [i for i, keep in zip(ids, mask) if keep]
        # SmolVLM's tokenizer adds no BOS and only its template writes one.
        expected = 0 if family == "idefics3" and not chat_template else 1
        assert real.count(bos) == expected, model.tokenizer.convert_ids_to_tokens(real)


def test_paligemma_scores_the_continuation_not_the_newline(loaded) -> None:
    model = loaded("paligemma")
    request = Request("p/0/0", (RED, TextPart("Q: Do I help? A:")), continuations=(" Yes",))
    inputs = model._encode([model._render(request)], [request], suffixes=[" Yes"])
    (start, end), = model._suffix_spans(inputs)
    scored = model.tokenizer.decode(inputs["input_ids"][0, start:end])
    assert scored == " Yes" and "\n" in model.tokenizer.decode(inputs["input_ids"][0, :start])


def test_a_text_only_prompt_on_an_image_only_model_is_an_item_error(loaded) -> None:
    model = loaded("paligemma")
    text_only = Request("p/1/0", (TextPart("Q: Is it kind? A:"),), GREEDY, continuations=(" Yes",))
    with_image = _requests("paligemma", GREEDY)[1]
    answers = model.generate([text_only, with_image])
    assert answers[0].error and "needs an image in every prompt" in answers[0].error
    assert answers[1].error is None and answers[1].text is not None
    scores = model.loglikelihood([text_only, replace(with_image, continuations=(" Yes",))])
    assert scores[0].error and scores[1].loglikelihoods is not None


def test_a_task_the_model_cannot_run_stops_before_the_run(loaded, tmp_path) -> None:
    from harness.run.evaluate import evaluate

    (tmp_path / "test.jsonl").write_text('{"id": "a", "question": "Is it kind?", "answer": "yes"}\n')
    (tmp_path / "text_only.yaml").write_text(
        f"task: text_only\ndataset_path: {tmp_path}\ntest_split: test\n"
        "doc_to_text: 'Q: {{question}} A:'\ndoc_to_target: '{{answer}}'\n")
    with pytest.raises(BenchError, match="cannot run task text_only: hf: PaliGemmaProcessor needs an image"):
        evaluate(loaded("paligemma"), "text_only", ["reference"], output_dir=tmp_path / "out",
                 include_paths=[str(tmp_path)])
    assert not (tmp_path / "out" / "runs").exists()


def test_a_refusal_mid_batch_fails_that_item_only(loaded, monkeypatch: pytest.MonkeyPatch) -> None:
    model = loaded("llava")
    requests = _requests("llava", GREEDY)
    expected = [r.text for r in model.generate(requests)]
    real = model.processor.__class__.__call__

    def picky(self, *args, **kwargs):  # refuses any batch holding the 56x44 green image
        images = kwargs.get("images") or []
        if any(image.size == (56, 44) for row in images for image in row):
            raise ValueError("image size not supported")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(model.processor.__class__, "__call__", picky)
    answers = model.generate(requests)
    assert [a.text for a in answers][2] == expected[2]
    assert all(a.error and "refused this input: ValueError: image size not supported" in a.error
               for a in answers[:2])


def test_a_bug_in_the_adapter_still_raises(loaded, monkeypatch: pytest.MonkeyPatch) -> None:
    model = loaded("llava")
    request = replace(_requests("llava", GREEDY)[1], continuations=(" Yes",))

    def broken(*args, **kwargs):
        raise IndexError("a bug of ours, not a refusal")

    monkeypatch.setattr(model, "_continuation_spans", broken)
    with pytest.raises(IndexError, match="a bug of ours"):
        model.loglikelihood([request])
