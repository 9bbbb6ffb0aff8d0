"""Loading original-format MAGMA files: every key accounted for, clear errors otherwise."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from harness.errors import BenchError
from harness.models.magma import checkpoint as ckpt
from harness.models.magma.config import infer_config
from harness.models.magma.tiny import TINY_CONFIG, random_state_dict


def _original(tiny_files: tuple[Path, Path]) -> dict[str, torch.Tensor]:
    return torch.load(tiny_files[0], weights_only=True)["module"]


def test_round_trip_accounts_for_every_key(tiny_files):
    state, stored = ckpt.read_checkpoint(tiny_files[0])
    config = infer_config(state, stored)
    assert (config.n_layer, config.hidden_size, config.n_head, config.encoder_layers) == (2, 64, 4, (1, 2, 1, 1))
    assert config.lm_head_rows - config.vocab_rows == 142
    assert config.adapter_bottleneck == 16 and config.max_positions == 512

    model = ckpt.load_magma(tiny_files[0], dtype="float32", device_map="cpu")
    ours = model.state_dict()
    accounting = ckpt.account_for_keys(list(state), set(ours))
    assert not accounting.unexpected and not accounting.missing
    assert len(accounting.mapped) + len(accounting.ignored) == len(state)
    assert len(accounting.mapped) == len(ours)
    ignored = set(accounting.ignored)
    assert "word_embedding.weight" in ignored
    assert "transformer.1.mlp.1.adapter.2.weight" in ignored
    assert {f"lm.transformer.h.0.attn.attention.{b}" for b in ("bias", "masked_bias", "scale_attn")} <= ignored
    # every mapped tensor arrived unchanged under its new name
    for original_key, our_key in accounting.mapped.items():
        assert torch.equal(ours[our_key], state[original_key]), original_key
    assert torch.equal(ours["lm.transformer.h.1.mlp.0.fc_in.weight"], state["lm.transformer.h.1.mlp.0.c_fc.weight"])
    assert model.lm.transformer.rotary_emb.embed_positions.device.type == "cpu"


def test_tiny_build_is_deterministic_and_keeps_the_original_layout(tiny_files, tmp_path):
    raw = torch.load(tiny_files[0], weights_only=True)
    assert set(raw) == {"module", "magma_config"}
    state = raw["module"]
    # the duplicates share storage, as in the original file, so they cost no space
    assert state["word_embedding.weight"].data_ptr() == state["lm.transformer.wte.weight"].data_ptr()
    assert state["transformer.0.ln_1.weight"].data_ptr() == state["lm.transformer.h.0.ln_1.weight"].data_ptr()
    assert "lm.lm_head.bias" in state and "image_prefix.enc.layer2.0.downsample.1.running_var" in state
    config = replace(TINY_CONFIG, vocab_rows=40, lm_head_rows=50)
    first, again, other = (random_state_dict(config, s) for s in (3, 3, 4))
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert not torch.equal(first["lm.lm_head.weight"], other["lm.lm_head.weight"])


def test_load_assigns_the_file_tensors_without_copying(tiny_files, monkeypatch):
    state, stored = ckpt.read_checkpoint(tiny_files[0])
    monkeypatch.setattr(ckpt, "read_checkpoint", lambda path: (state, stored))
    model = ckpt.load_magma(tiny_files[0], dtype="float32", device_map="cpu")
    assert model.lm.lm_head.weight.data_ptr() == state["lm.lm_head.weight"].data_ptr()
    assert model.lm.transformer.h[1].attn.q_proj.weight.data_ptr() == \
        state["lm.transformer.h.1.attn.attention.q_proj.weight"].data_ptr()


@pytest.mark.parametrize("dtype, expected", [("bfloat16", torch.bfloat16), ("float16", torch.float16)])
def test_half_precision_runs_on_cpu(tiny_files, dtype, expected):
    model = ckpt.load_magma(tiny_files[0], dtype=dtype, device_map="cpu")
    assert model.lm.lm_head.weight.dtype == expected
    assert model.image_prefix.enc.layer1[0].bn1.num_batches_tracked.dtype == torch.long
    prefix = model.embed_images(torch.randn(1, 3, 96, 96))
    logits = model(prefix).logits
    assert prefix.shape == (1, 9, 64) and logits.shape == (1, 9, model.config.lm_head_rows)
    assert torch.isfinite(logits).all()


def test_truncated_file_is_a_clear_error(tiny_files, tmp_path):
    blob = tiny_files[0].read_bytes()
    truncated = tmp_path / "model.pt"
    truncated.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(BenchError, match="damaged or truncated"):
        ckpt.load_magma(truncated, device_map="cpu")


def test_not_a_torch_file_is_a_clear_error(tmp_path):
    junk = tmp_path / "model.pt"
    junk.write_bytes(b"<html>rate limited</html>")
    with pytest.raises(BenchError, match="model.pt"):
        ckpt.load_magma(junk, device_map="cpu")


def test_another_architecture_is_a_clear_error(tmp_path):
    gpt2_like = {"transformer.wte.weight": torch.zeros(10, 4), "transformer.h.0.attn.c_attn.weight": torch.zeros(4, 12)}
    path = tmp_path / "gpt2.pt"
    torch.save(gpt2_like, path)
    with pytest.raises(BenchError, match="not a MAGMA checkpoint.*lm.transformer.wte.weight"):
        ckpt.load_magma(path, device_map="cpu")


def test_missing_key_is_listed(tiny_files, tmp_path):
    state = _original(tiny_files)
    del state["lm.transformer.h.1.mlp.1.adapter.2.bias"]
    path = tmp_path / "model.pt"
    torch.save({"module": state, "magma_config": {"n_head": 4, "rotary_dim": 8, "image_size": 96}}, path)
    with pytest.raises(BenchError, match=r"1 missing key\(s\) \(lm.transformer.h.1.mlp.1.adapter.2.bias\)"):
        ckpt.load_magma(path, device_map="cpu")


def test_unexpected_key_is_listed(tiny_files, tmp_path):
    state = _original(tiny_files)
    state["lm.transformer.h.0.attn.attention.k_norm.weight"] = torch.ones(4)
    path = tmp_path / "model.pt"
    torch.save({"module": state, "magma_config": {"n_head": 4, "rotary_dim": 8, "image_size": 96}}, path)
    with pytest.raises(BenchError, match="unexpected key.*k_norm"):
        ckpt.load_magma(path, device_map="cpu")


def test_wrong_shape_is_a_clear_error(tiny_files, tmp_path):
    state = _original(tiny_files)
    state["lm.transformer.h.1.attn.attention.v_proj.weight"] = torch.zeros(64, 32)
    path = tmp_path / "model.pt"
    torch.save({"module": state, "magma_config": {"n_head": 4, "rotary_dim": 8, "image_size": 96}}, path)
    with pytest.raises(BenchError, match="shapes do not fit.*v_proj"):
        ckpt.load_magma(path, device_map="cpu")


def test_sizes_no_shape_reveals_come_from_arguments(tiny_files):
    state, _ = ckpt.read_checkpoint(tiny_files[0])
    with pytest.raises(BenchError, match="num_heads"):
        infer_config(state, {}, {"n_head": 5})  # 64 is not divisible by 5
    assert infer_config(state, {}, {"n_head": 2, "rotary_dim": 16, "image_size": 64}).image_tokens == 4
    with pytest.raises(BenchError, match="cannot set 'hidden_size'"):
        infer_config(state, {}, {"hidden_size": 128})
    # the real file stores no sizes: MAGMA v1's defaults apply
    assert infer_config(state, {}, {"rotary_dim": 4}).n_head == 16


def test_real_checkpoint_key_names_map_onto_gptj():
    assert ckpt.map_key("lm.transformer.h.27.attn.attention.out_proj.weight") == "lm.transformer.h.27.attn.out_proj.weight"
    assert ckpt.map_key("lm.transformer.h.3.mlp.0.c_proj.bias") == "lm.transformer.h.3.mlp.0.fc_out.bias"
    assert ckpt.map_key("image_prefix.enc.layer3.17.bn2.running_mean") == "image_prefix.enc.layer3.17.bn2.running_mean"
    assert ckpt.is_ignorable("lm.transformer.h.5.attn.attention.masked_bias")
    assert not ckpt.is_ignorable("lm.transformer.h.5.attn.attention.q_proj.weight")


def test_offline_hub_says_how_to_pass_a_local_file(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BenchError, match=r"--model-args checkpoint=/path/to/model.pt") as info:
        ckpt.resolve_checkpoint(None, "Aleph-Alpha/magma-research", "model.pt", ("osanseviero/magma",))
    assert "\n" not in str(info.value)
    with pytest.raises(BenchError, match="does not exist"):
        ckpt.resolve_checkpoint("/nowhere/model.pt", "x/y", "model.pt")


def test_tiny_twin_is_cached_and_its_tokenizer_matches_gpt2_layout(tiny_files, tiny_cache):
    from harness.models.magma.checkpoint import load_tokenizer
    from harness.models.magma.tiny import ensure_tiny

    built = tiny_files[0].stat().st_mtime_ns
    assert ensure_tiny(0, tiny_cache) == tiny_files
    assert tiny_files[0].stat().st_mtime_ns == built  # found, not rebuilt
    tok = load_tokenizer(str(tiny_files[1]), vocab_rows=10_000)
    # as in GPT-2 + MAGMA: <|endoftext|> then <|image|> are the last two ids
    assert tok.eos_token_id == len(tok) - 2
    assert tok.convert_tokens_to_ids(ckpt.IMAGE_TOKEN) == len(tok) - 1
    text = "Q: Do I help her? A: Yes, café 🙂"
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text  # byte-level: any text
    with pytest.raises(BenchError, match="embeds only"):
        load_tokenizer(str(tiny_files[1]), vocab_rows=100)


def test_hub_download_falls_back_to_the_mirror(tiny_files, monkeypatch):
    import huggingface_hub

    asked = []

    def fake_download(repo_id: str, filename: str) -> str:
        asked.append((repo_id, filename))
        if repo_id == "Aleph-Alpha/magma-research":
            raise huggingface_hub.errors.GatedRepoError("gated")
        return str(tiny_files[0])

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    path = ckpt.resolve_checkpoint(None, "Aleph-Alpha/magma-research", "model.pt", ("osanseviero/magma",))
    assert path == tiny_files[0]
    assert asked == [("Aleph-Alpha/magma-research", "model.pt"), ("osanseviero/magma", "model.pt")]
    asked.clear()
    assert ckpt.resolve_checkpoint("hf://someone/magma-ft/ft.pt", "x/y", "model.pt") == tiny_files[0]
    assert asked == [("someone/magma-ft", "ft.pt")]


def test_pickled_objects_besides_tensors_are_refused_with_a_remedy(tmp_path):
    import argparse

    path = tmp_path / "deepspeed.pt"
    torch.save({"module": {"lm.transformer.wte.weight": torch.zeros(2, 2)},
                "args": argparse.Namespace(lr=1e-4)}, path)
    with pytest.raises(BenchError, match="besides tensors.*keep only its weights") as info:
        ckpt.read_checkpoint(path)
    assert "\n" not in str(info.value)


def test_auto_precision_is_magmas_float16_on_gpus_and_float32_on_the_cpu(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert ckpt.resolve_dtype("auto", "auto") == torch.float16  # even where bfloat16 would run
    assert ckpt.resolve_dtype("auto", "cpu") == torch.float32
    assert ckpt.resolve_dtype("bfloat16", "auto") == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert ckpt.resolve_dtype("auto", "auto") == torch.float32
