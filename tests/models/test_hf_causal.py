"""The hf adapter on tiny random text LMs (GPT-2 without BOS, Llama with BOS), built offline."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from harness.errors import BenchError  # noqa: E402
from harness.registry import load_model  # noqa: E402
from harness.types import GenerationSettings, Request, TextPart  # noqa: E402
from tests.models.test_hf import RED  # noqa: E402
from tests.models.tiny_lms import build_tiny_lm  # noqa: E402

SAMPLED = GenerationSettings(max_new_tokens=6, temperature=0.9)
GREEDY = GenerationSettings(max_new_tokens=6, temperature=0.0)
CONTEXT = "I took the last cookie.\nQuestion: Is this wrong?\nAnswer:"


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return {kind: build_tiny_lm(tmp_path_factory.mktemp(kind), kind) for kind in ("gpt2", "llama")}


@pytest.fixture(scope="module", params=["gpt2", "llama"])
def model(request: pytest.FixtureRequest, folders: dict[str, Path]):
    return load_model("hf", {"pretrained": str(folders[request.param]), "dtype": "float32",
                             "device": "cpu"})


def _full_sequence_score(model, context: str, continuation: str) -> float:
    """The continuation's log-probability from one unpadded pass over the whole text."""
    return _score(model, *model.encode_pair(context, continuation))


def _score(model, head: list[int], tail: list[int]) -> float:
    ids = torch.tensor([head + tail])
    with torch.inference_mode():
        log_probs = model.model(input_ids=ids).logits.float().log_softmax(-1)[0]
    return float(sum(log_probs[len(head) - 1 + i, token] for i, token in enumerate(tail)))


def test_hf_serves_a_text_checkpoint_through_the_causal_lm_class(model) -> None:
    assert type(model).__name__ == "HFCausalModel"
    assert type(model.model).__name__ in {"GPT2LMHeadModel", "LlamaForCausalLM"}
    assert model.registry_name == f"hf:{model.init_args['pretrained']}"
    assert model.max_length == 256 and model.describe()["weights"].startswith("local-")


def test_unknown_argument_names_the_accepted_ones(folders: dict[str, Path]) -> None:
    with pytest.raises(BenchError, match="processor_args.*Accepted: .*max_length"):
        load_model("hf", {"pretrained": str(folders["gpt2"]), "processor_args": {}})


def test_encode_pair_moves_trailing_spaces_into_the_continuation(model) -> None:
    head, tail = model.encode_pair("Answer: ", "yes")
    head2, tail2 = model.encode_pair("Answer:", " yes")
    assert (head, tail) == (head2, tail2)
    bos = model.tokenizer.bos_token_id
    assert (head[0] == bos) == (model.tokenizer.bos_token == "<s>")
    empty_head, empty_tail = model.encode_pair("", "The fox")
    assert empty_head == [model.prefix_token_id] and empty_tail


def test_loglikelihood_batched_equals_an_unpadded_pass(model) -> None:
    requests = [Request("t/0/0", (TextPart(CONTEXT),), continuations=(" no", " yes")),
                Request("t/1/0", (TextPart("Hi "),), continuations=("there", " A: 4."))]
    batched = model.loglikelihood(requests)
    alone = [model.loglikelihood([r])[0] for r in reversed(requests)][::-1]
    for response, request in zip(batched, requests):
        expected = [_full_sequence_score(model, request.text, c) for c in request.continuations]
        assert response.loglikelihoods == pytest.approx(expected, abs=1e-4)
    flat = [x for r in batched for x in r.loglikelihoods]
    assert flat == pytest.approx([x for r in alone for x in r.loglikelihoods], abs=1e-5)


def test_rolling_windows_cover_every_token_once(model, folders: dict[str, Path]) -> None:
    text = "The quick brown fox jumps over the lazy dog. " * 6
    whole = model.loglikelihood_rolling([Request("r/0/0", (TextPart(text),))])[0].loglikelihoods[0]
    tokens = model._tokens(text)  # all of them predicted, the first after the prefix token
    assert whole == pytest.approx(_score(model, [model.prefix_token_id], tokens), abs=1e-3)
    short = load_model("hf-causal", {"pretrained": model.init_args["pretrained"], "dtype": "float32",
                                     "device": "cpu", "max_length": 16})
    windows = short.rolling_windows(text)
    assert len(windows) > 2 and [t for _, w in windows for t in w] == tokens
    assert all(len(c) + len(w) - 1 <= 16 for c, w in windows)
    windowed = short.loglikelihood_rolling([Request("r/0/0", (TextPart(text),))])[0].loglikelihoods[0]
    assert windowed != pytest.approx(whole, abs=1e-3)  # shorter contexts change the score


@pytest.mark.parametrize("settings", [SAMPLED, GREEDY], ids=["sampled", "greedy"])
def test_generate_depends_only_on_the_request(model, settings: GenerationSettings) -> None:
    requests = [Request(f"g/{i}/0", (TextPart(text),), settings, seed=10 + i)
                for i, text in enumerate(["Question:", CONTEXT, "The quick brown fox"])]
    batched = [r.text for r in model.generate(requests)]
    alone = [model.generate([r])[0].text for r in requests]
    assert batched == alone and all(isinstance(t, str) for t in batched)
    if not settings.greedy:
        draws = {model.generate([replace(requests[0], seed=s, generation=replace(
            settings, max_new_tokens=12))])[0].text for s in range(4)}
        assert len(draws) > 1


def test_images_are_refused_one_request_at_a_time(model) -> None:
    with_image = Request("i/0/0", (RED, TextPart("Q: A:")), continuations=(" yes",))
    plain = Request("i/1/0", (TextPart("Q: A:"),), continuations=(" yes",))
    first, second = model.loglikelihood([with_image, plain])
    assert first.error and "text-only" in first.error and second.loglikelihoods


def test_a_vlm_checkpoint_still_goes_to_the_vlm_adapter(tmp_path: Path) -> None:
    from transformers import GPT2Config, LlavaConfig

    from harness.models.hf_causal import is_text_only

    assert is_text_only(GPT2Config()) and not is_text_only(LlavaConfig())


def test_run_bench_scores_ethics_cm_on_a_local_text_model(folders: dict[str, Path],
                                                            tmp_path: Path) -> None:
    """The README's command: --model hf on a text checkpoint, ethics_cm on local CSVs."""
    import json

    from harness.commands.cli import main
    from harness.paths import PROJECT_ROOT, TASKS_DIR

    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "ethics_cm.yaml").write_text(
        f"include: {TASKS_DIR / 'ethics' / 'ethics_cm.yaml'}\ntask: ethics_cm\n"
        f"dataset_path: {PROJECT_ROOT / 'tests' / 'data' / 'ethics_cm'}\n")
    out = tmp_path / "out"
    assert main(["--model", "hf", "--model-args", f"pretrained={folders['llama']},dtype=float32",
                 "--tasks", "ethics_cm", "--include-path", str(tmp_path / "tasks"),
                 "--output-dir", str(out), "--no-progress"]) == 0
    rows = [json.loads(x) for x in (out / "leaderboard.jsonl").read_text().splitlines()]
    assert [(r["task"], r["judge"], r["n"]) for r in rows] == [("ethics_cm", "loglikelihood", 5)]
    samples = [json.loads(x) for x in next(out.glob("runs/*/samples.jsonl")).read_text().splitlines()]
    assert samples[0]["prompt"].endswith("\nQuestion: Is this wrong?\nAnswer:")
    assert all(len(s["loglikelihoods"]) == 2 for s in samples)
