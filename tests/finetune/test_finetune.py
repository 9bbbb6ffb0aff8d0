"""Finetuning MAGMA (harness.finetune.train + harness.models.magma.finetuned) on magma-tiny."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from harness.errors import BenchError
from harness.finetune.config import FinetuneConfig, lr_factor
from harness.finetune.data import (
    IGNORE_INDEX,
    TrainingExample,
    caption_delimiter,
    encode_example,
    examples_from_requests,
)
from harness.finetune.setup import select_trainable
from harness.finetune.train import train
from harness.models.magma import finetuned
from harness.types import Request, TextPart
from tests import finetune_fixtures as fixtures

ROOT = Path(__file__).resolve().parents[2]
# 12 examples, batch 4: 3 optimizer steps per epoch, 12 in 4 epochs.
CONFIG = FinetuneConfig(batch_size=4, epochs=4, seed=7)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors: threads only contend on the shared 2-core machine (50x slower there)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _fresh_accelerate_state():
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    yield
    AcceleratorState._reset_state(reset_partial_state=True)


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: t.detach().clone() for name, t in
            [*module.named_parameters(), *module.named_buffers()]}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One full 4-epoch run: (adapter after training, snapshot before, result, output dir)."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    model = fixtures.tiny_model(seed=0)
    view = model.finetune_view()
    before = _snapshot(view.module)
    output = tmp_path_factory.mktemp("ft") / "full"
    result = train(view, fixtures.examples(), CONFIG, output,
                   {"base_model": "magma-tiny", "variant": "aligned"}, log=lambda _: None)
    return model, before, result, output


def _scoring_requests() -> list[Request]:
    return [Request(ex.example_id, ex.parts, continuations=(" Yes, it is kind.",
                                                            " No, it is wrong."))
            for ex in fixtures.examples()]


def test_caption_delimiter_adds_one_space_unless_one_is_there():
    assert caption_delimiter("Q: Do I help her?\nA:", "Yes.") == " "
    assert caption_delimiter("Q: Do I help her?\nA: ", "Yes.") == ""
    assert caption_delimiter("Q: Do I help her?\nA:", " Yes.") == ""
    assert caption_delimiter("Q: x\nA:", "Yes.", preferred="\n") == "\n"


def test_labels_cover_the_caption_and_only_the_answer_with_mask_prompt():
    view = fixtures.tiny_view()
    example = fixtures.examples(1)[0]
    full = encode_example(example, view, mask_prompt=False)
    masked = encode_example(example, view, mask_prompt=True)
    kinds = [kind for kind, _ in full.segments]
    assert kinds == ["image", "text", "text"]
    prompt_ids, answer_ids = full.segments[1][1], full.segments[2][1]
    assert prompt_ids == view.encode_text("Q: Do I help her cross the street?\nA:")
    assert answer_ids == [*view.encode_text(" Yes, it is kind."), view.eos_token_id]
    assert full.labels[1] == tuple(prompt_ids)
    assert masked.labels[1] == (IGNORE_INDEX,) * len(prompt_ids)
    assert full.n_label_tokens == len(prompt_ids) + len(answer_ids)
    assert masked.n_label_tokens == len(answer_ids)


def test_examples_come_from_generate_requests_with_a_target():
    request = Request("t/1/0", (TextPart("Q: a?\nA:"),), target="No.")
    (example,) = examples_from_requests([request], delimiter=" ")
    assert (example.example_id, example.answer) == ("t/1/0", "No.")
    with pytest.raises(BenchError, match="no ideal answer"):
        examples_from_requests([replace(request, target=None)])
    with pytest.raises(BenchError, match="generate_until"):
        examples_from_requests([replace(request, continuations=(" Yes", " No"))])


def test_only_adapters_projection_and_layernorm_train():
    view = fixtures.tiny_view()
    main, encoder = select_trainable(view.module, train_image_encoder=False)
    assert encoder == []
    assert all(".adapter" in n or n.startswith(("image_prefix.proj.", "image_prefix.ln."))
               for n in main)
    assert any(".adapter" in n for n in main) and "image_prefix.ln.weight" in main
    trainable = {n for n, p in view.module.named_parameters() if p.requires_grad}
    assert trainable == set(main)
    _, encoder = select_trainable(view.module, train_image_encoder=True)
    assert encoder and all(n.startswith("image_prefix.enc.") for n in encoder)


def test_linear_warmup_then_constant():
    assert [lr_factor(s, 4, "linear") for s in range(6)] == [0.2, 0.4, 0.6, 0.8, 1.0, 1.0]
    assert lr_factor(0, 0, "linear") == 1.0


def test_log_warmup_is_deepspeeds_warmup_lr():
    # DeepSpeed's WarmupLR (warmup_type "log", its default, which MAGMA's training used):
    # gamma = ln(iteration + 1) / ln(warmup), with warmup at least 2; then 1.
    assert [lr_factor(s, 4) for s in range(6)] == pytest.approx(
        [0.0, math.log(2) / math.log(4), math.log(3) / math.log(4), 1.0, 1.0, 1.0])
    # MAGMA's 100 warmup steps: 62% of the full rate at step 16, where a linear ramp gives 17%
    assert lr_factor(16, 100) == pytest.approx(0.6152, abs=1e-4)
    assert lr_factor(16, 100, "linear") == pytest.approx(17 / 101)
    assert lr_factor(0, 1) == 0.0 and lr_factor(1, 1) == 1.0 and lr_factor(0, 0) == 1.0
    with pytest.raises(ValueError):
        lr_factor(0, 4, "cosine")


def test_loss_falls_over_four_epochs(trained):
    _, _, result, output = trained
    assert result.finished and result.steps_done == 12
    losses = result.losses
    assert sum(losses[-3:]) / 3 < sum(losses[:3]) / 3 - 0.05
    records = [json.loads(line) for line in (output / "loss.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == list(range(1, 13))
    assert [r["epoch"] for r in records] == [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    # log warmup over one epoch (3 steps): 0, ln 2 / ln 3, ln 3 / ln 3, then the full rate
    assert [r["lr"] for r in records[:4]] == pytest.approx(
        [0.0, 8e-4 * math.log(2) / math.log(3), 8e-4, 8e-4])
    assert (output / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (output / "resume").exists()


def test_frozen_parameters_are_unchanged_bit_for_bit(trained):
    model, before, _, output = trained
    view = model.finetune_view()
    saved = set(load_file(str(output / finetuned.WEIGHTS_FILE)))
    after = _snapshot(view.module)
    frozen = [name for name in before if name not in saved]
    assert any(name.startswith("lm.transformer.h.0.attn") for name in frozen)
    assert any(name.endswith("running_mean") for name in frozen)  # BatchNorm stats kept
    for name in frozen:
        assert torch.equal(before[name], after[name]), name
    assert all(not torch.equal(before[name], after[name]) for name in saved)


def test_saves_only_trained_parameters_with_fingerprint_and_config(trained):
    model, _, _, output = trained
    view = model.finetune_view()
    manifest = json.loads((output / finetuned.MANIFEST_FILE).read_text())
    saved = load_file(str(output / finetuned.WEIGHTS_FILE))
    assert set(saved) == {n for n, p in view.module.named_parameters()
                          if ".adapter" in n or n.startswith(("image_prefix.proj",
                                                              "image_prefix.ln",
                                                              "image_prefix.enc."))}
    assert manifest["base_fingerprint"] == finetuned.base_fingerprint(
        fixtures.tiny_view(seed=0).module)
    assert manifest["config"]["batch_size"] == 4 and manifest["config"]["betas"] == [0.9, 0.95]
    assert manifest["config"]["train_image_encoder"] and manifest["config"]["warmup_schedule"] == "log"
    assert manifest["variant"] == "aligned" and manifest["examples"]["count"] == 12


def test_reloaded_finetuned_model_gives_the_same_loglikelihoods(trained):
    in_memory_model, _, _, output = trained
    requests = _scoring_requests()
    in_memory = [r.loglikelihoods for r in in_memory_model.loglikelihood(requests)]
    reloaded_model = fixtures.tiny_model(seed=0, finetuned=str(output))
    reloaded = [r.loglikelihoods for r in reloaded_model.loglikelihood(requests)]
    base_model = fixtures.tiny_model(seed=0)
    base = [r.loglikelihoods for r in base_model.loglikelihood(requests)]
    assert reloaded == in_memory
    assert base != reloaded
    assert reloaded_model.variant.startswith("aligned@")
    assert reloaded_model.describe()["variant"] == reloaded_model.variant
    assert reloaded_model.fingerprint() != base_model.fingerprint()


def test_weights_for_another_base_are_refused(trained):
    _, _, _, output = trained
    other = fixtures.tiny_view(seed=1)
    with pytest.raises(BenchError, match="trained on another base model"):
        finetuned.apply_finetuned(other.module, output)
    with pytest.raises(BenchError, match="trained on another base model"):
        fixtures.tiny_model(seed=1, finetuned=str(output))


def test_fingerprint_ignores_the_dtype_the_base_was_loaded_in():
    view = fixtures.tiny_view(seed=0)
    as_float32 = finetuned.base_fingerprint(view.module)
    assert finetuned.base_fingerprint(view.module.to(torch.bfloat16)) == as_float32


def test_damaged_or_unfinished_output_is_a_clear_error(trained, tmp_path):
    _, _, _, output = trained
    view = fixtures.tiny_view(seed=0)
    with pytest.raises(BenchError, match="no finetune.json"):
        finetuned.apply_finetuned(view.module, tmp_path)
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in (finetuned.MANIFEST_FILE, finetuned.WEIGHTS_FILE):
        (copy / name).write_bytes((output / name).read_bytes())
    with open(copy / finetuned.WEIGHTS_FILE, "r+b") as handle:
        handle.seek(-4, os.SEEK_END)
        handle.write(b"\0\0\0\0")
    with pytest.raises(BenchError, match="does not match its manifest"):
        finetuned.apply_finetuned(view.module, copy)


@pytest.mark.slow
def test_interrupted_run_resumes_to_the_same_weights(trained, tmp_path):
    _, _, full, full_output = trained
    output = tmp_path / "resumed"
    stopped = train(fixtures.tiny_view(), fixtures.examples(), replace(CONFIG, max_steps=5),
                    output, {"variant": "aligned"}, log=lambda _: None)
    assert not stopped.finished and (output / "resume" / "progress.json").is_file()
    assert not (output / finetuned.MANIFEST_FILE).exists()
    # As if killed between removing the old resume state and renaming the new one into place.
    (output / "resume").rename(output / "resume.tmp")
    with pytest.raises(BenchError, match="unfinished run with other settings"):
        train(fixtures.tiny_view(), fixtures.examples(), replace(CONFIG, lr=1e-3), output,
              log=lambda _: None)
    resumed = train(fixtures.tiny_view(), fixtures.examples(), CONFIG, output,
                    {"variant": "aligned"}, log=lambda _: None)
    assert resumed.finished and resumed.losses == full.losses
    expected = load_file(str(full_output / finetuned.WEIGHTS_FILE))
    got = load_file(str(output / finetuned.WEIGHTS_FILE))
    assert all(torch.equal(expected[name], got[name]) for name in expected)
    again = train(fixtures.tiny_view(), fixtures.examples(), CONFIG, output, log=lambda _: None)
    assert again.finished and again.losses == ()  # already done: nothing retrained


@pytest.fixture(scope="module")
def one_epoch(tmp_path_factory):
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    output = tmp_path_factory.mktemp("ft") / "one-epoch"
    train(fixtures.tiny_view(), fixtures.examples(), replace(CONFIG, epochs=1), output,
          log=lambda _: None)
    return load_file(str(output / finetuned.WEIGHTS_FILE))


def _assert_close(expected: dict[str, torch.Tensor], got: dict[str, torch.Tensor]) -> None:
    assert set(expected) == set(got)
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=1e-4, atol=1e-6, msg=name)


def test_gradient_accumulation_gives_the_same_update(one_epoch, tmp_path):
    output = tmp_path / "accumulated"
    train(fixtures.tiny_view(), fixtures.examples(),
          replace(CONFIG, epochs=1, micro_batch_size=1), output, log=lambda _: None)
    _assert_close(one_epoch, load_file(str(output / finetuned.WEIGHTS_FILE)))


@pytest.mark.slow
def test_two_process_accelerate_launch_trains_and_writes_one_output(tmp_path):
    from harness.commands.cli import main

    flags = ["finetune", "--model", "magma-tiny", "--task", "morality_0shot_train", "--limit",
             "8", "--epochs", "1", "--batch-size", "4", "--output"]
    assert main([*flags, str(tmp_path / "one")]) == 0
    # Without MPI, `accelerate launch --cpu` starts one process; --multi_gpu with
    # ACCELERATE_USE_CPU=1 starts two through torch's launcher, talking over gloo.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
           "ACCELERATE_USE_CPU": "1"}
    output = tmp_path / "ddp"
    launched = subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes",
         "2", "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
         str(ROOT / "run_bench.py"), *flags, str(output)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert launched.returncode == 0, launched.stderr[-3000:]
    assert sorted(p.name for p in output.iterdir()) == [
        "finetune.json", "loss.jsonl", "loss.png", "trained.safetensors"]
    assert len((output / "loss.jsonl").read_text().splitlines()) == 2  # once, not per process
    assert launched.stdout.count("finetuned weights in") == 1
    assert json.loads((output / "finetune.json").read_text())["num_processes"] == 2
    _assert_close(load_file(str(tmp_path / "one" / finetuned.WEIGHTS_FILE)),
                  load_file(str(output / finetuned.WEIGHTS_FILE)))


def test_finished_output_with_other_settings_is_refused(trained):
    _, _, _, output = trained
    with pytest.raises(BenchError, match="already holds a finished finetune run"):
        train(fixtures.tiny_view(), fixtures.examples(), replace(CONFIG, epochs=5), output,
              log=lambda _: None)


def test_a_model_in_half_precision_needs_mixed_precision(tmp_path):
    view = fixtures.tiny_view()
    view.module.to(torch.bfloat16)
    with pytest.raises(BenchError, match="--mixed-precision bf16"):
        train(view, fixtures.examples(2), CONFIG, tmp_path / "x", log=lambda _: None)


def test_example_without_an_image_is_refused():
    view = fixtures.tiny_view()
    example = TrainingExample("t/0/0", (TextPart("Q: a?\nA:"),), "No.")
    with pytest.raises(BenchError, match="no image"):
        encode_example(example, view, mask_prompt=False)


@pytest.mark.slow
def test_protocol_from_the_command_line_puts_base_and_finetuned_rows_side_by_side(tmp_path):
    from harness.commands.cli import main
    from harness.reports.leaderboard import read_rows

    output = tmp_path / "ft"
    assert main(["finetune", "--model", "magma-tiny", "--task", "morality_0shot_train",
                 "--limit", "6", "--epochs", "1", "--batch-size", "4",
                 "--output", str(output)]) == 0
    manifest = json.loads((output / "finetune.json").read_text())
    assert manifest["task"] == "morality_0shot_train" and manifest["examples"]["count"] == 6
    for model_args in ([], ["--model-args", f"finetuned={output}"]):
        assert main(["--model", "magma-tiny", *model_args, "--tasks", "morality_0shot_mc",
                     "--limit", "3", "--output-dir", str(tmp_path / "runs")]) == 0
    rows = read_rows(tmp_path / "runs" / "leaderboard.jsonl")
    assert [row["variant"] for row in rows] == [None, manifest["variant"] + "@"
                                                + manifest["weights_sha256"][:8]]
    assert rows[0]["model_fingerprint"] != rows[1]["model_fingerprint"]


def test_gradient_checkpointing_gives_the_same_update(one_epoch, tmp_path):
    output = tmp_path / "checkpointed"
    view = fixtures.tiny_view()
    train(view, fixtures.examples(), replace(CONFIG, epochs=1, gradient_checkpointing=True),
          output, log=lambda _: None)
    lm = view.module.lm
    flag = getattr(lm, "is_activation_checkpointing", None)
    assert not (lm.is_gradient_checkpointing if flag is None else flag)  # off again after
    _assert_close(one_epoch, load_file(str(output / finetuned.WEIGHTS_FILE)))


def test_bf16_base_trains_float32_weights_under_mixed_precision(tmp_path):
    view = fixtures.tiny_view()
    view.module.to(torch.bfloat16)
    before = _snapshot(view.module)
    train(view, fixtures.examples(4), replace(CONFIG, epochs=1, mixed_precision="bf16"),
          tmp_path / "bf16", log=lambda _: None)
    saved = load_file(str(tmp_path / "bf16" / finetuned.WEIGHTS_FILE))
    assert all(tensor.dtype == torch.float32 for tensor in saved.values())
    parameters = dict(view.module.named_parameters())
    frozen = [name for name in parameters if name not in saved]
    assert all(parameters[name].dtype == torch.bfloat16 for name in frozen)
    assert all(torch.equal(before[name], parameters[name]) for name in frozen)


def test_image_encoder_trains_at_its_own_learning_rate(tmp_path):
    view = fixtures.tiny_view()
    before = _snapshot(view.module)
    config = replace(CONFIG, epochs=1, warmup_schedule="linear")
    assert config.train_image_encoder  # MAGMA_v1.yml's default
    train(view, fixtures.examples(4), config, tmp_path / "enc", log=lambda _: None)
    saved = load_file(str(tmp_path / "enc" / finetuned.WEIGHTS_FILE))
    after = dict(view.module.named_parameters())

    def largest_change(prefix: str) -> float:
        return max(float((after[n].detach() - before[n]).abs().max())
                   for n in saved if n.startswith(prefix))

    # One AdamW step moves each weight by about lr x the warmup factor (1/2 here), give or
    # take float32 rounding (an ulp of a BatchNorm weight near 1 is 1.2e-7).
    assert 0 < largest_change("image_prefix.enc.") <= 2e-6 / 2 * 1.5
    assert largest_change("image_prefix.proj.") == pytest.approx(8e-4 / 2, rel=0.01)
    assert all(torch.equal(before[n], t) for n, t in view.module.named_buffers())


def test_prompts_with_several_images_and_overlong_examples():
    from harness.finetune.data import caption_loss_module

    view = fixtures.tiny_view()
    first, second = fixtures.examples(2)
    demo = TrainingExample("t/2/0", (*first.parts, TextPart(" Yes, it is kind.\n"),
                                     *second.parts), second.answer)
    encoded = encode_example(demo, view, mask_prompt=True)
    assert [kind for kind, _ in encoded.segments] == [
        "image", "text", "text", "image", "text", "text"]
    assert encoded.n_label_tokens == len(encoded.segments[-1][1])  # answer + EOS only
    loss = caption_loss_module(view).eval()
    with torch.no_grad():
        assert float(loss([encoded])) > 0
    limit = view.module.lm.config.n_positions
    long = TrainingExample("t/3/0", first.parts, "no " * limit)
    with pytest.raises(BenchError, match="t/3/0: longer than the model's"):
        loss([encode_example(long, view, mask_prompt=False)])
