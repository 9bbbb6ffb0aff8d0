"""GPU benchmark: a full-size random MAGMA, loaded through our path, timed as it generates.

For a lent H100/H200 and a few minutes. Needs only torch, transformers and accelerate (it
imports our MAGMA modules without the rest of the harness) and no network.

1. Builds random weights at MAGMA v1's sizes (GPT-J 6B + CLIP RN50x16 + adapters, 6.43 B
   parameters) on the GPU in float16, and writes them in the original ``model.pt`` format
   (``{"module": ...}``, original names, duplicate keys, attention buffers) to /dev/shm when it
   has room (RAM-backed, so writing 13 GB takes seconds), else to the temp dir.
2. Loads that file with ``load_magma`` (mmap, meta device, assign, accelerate device map) in
   float16 (``--dtype``), timing it and recording peak GPU memory and the process's peak RSS.
3. Generates 15 new tokens (temperature 0.7, top_k 0; no EOS, so every row makes all 15) for
   8 requests (a 384 px image + text of different lengths each), in batches of 1 and of 8:
   - ours: ``decoding.generate_batch`` in each ``--modes`` mode (default ``compiled`` and
     ``eager``; ``compiled`` is the static cache + torch.compile / CUDA graphs path),
     reporting tokens per second and whether batch 1 and batch 8 gave the same tokens;
   - transformers' ``generate`` on the same weights and the same left-padded prompt
     embeddings (``lm.generate(inputs_embeds=..., do_sample=True)``, its dynamic cache).

Prints one JSON line. ``--tiny`` runs the same steps at tiny sizes (on the CPU if no GPU).

    python benchmarks/gpu_magma.py            # on the GPU machine
    python benchmarks/gpu_magma.py --tiny     # anywhere, in seconds
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
import types
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Import harness.models.magma without harness/__init__.py (which pulls in YAML and the rest).
_package = types.ModuleType("harness")
_package.__path__ = [str(ROOT / "harness")]  # type: ignore[attr-defined]
sys.modules.setdefault("harness", _package)

import torch  # noqa: E402

from harness.models.magma import decoding  # noqa: E402
from harness.models.magma.checkpoint import load_magma  # noqa: E402
from harness.models.magma.config import MagmaConfig  # noqa: E402
from harness.models.magma.tiny import TINY_CONFIG, random_state_dict, write_checkpoint  # noqa: E402
from harness.types import GenerationSettings  # noqa: E402


def peak_rss_gib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 2**20
    return float("nan")


def work_dir(expected_bytes: int, requested: Path | None) -> Path:
    if requested:
        return requested
    shm = Path("/dev/shm")
    if shm.is_dir() and shutil.disk_usage(shm).free > 1.3 * expected_bytes:
        return shm
    return Path(tempfile.gettempdir())


def build(config: MagmaConfig, path: Path, device: torch.device, store_config: bool) -> float:
    start = time.perf_counter()
    on_device = random_state_dict(config, seed=0, dtype=torch.float16, device=device)
    state = {}
    for name in list(on_device):
        state[name] = on_device.pop(name).cpu()  # one tensor at a time leaves the GPU
    write_checkpoint(state, config, path, store_config=store_config)
    del state
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return time.perf_counter() - start


def prompts(model, n: int, generator: torch.Generator) -> list[torch.Tensor]:
    size = model.config.image_size
    out = []
    with torch.no_grad():
        for i in range(n):
            pixels = torch.randn(1, 3, size, size, generator=generator)
            image = model.embed_images(pixels.to(model.word_embedding.weight.device))[0]
            ids = torch.randint(0, model.config.vocab_rows - 1, (12 + 4 * i,), generator=generator)
            out.append(torch.cat([image, model.embed_tokens(ids)]))
    return out


SETTINGS = GenerationSettings()  # the paper's: 15 new tokens, temperature 0.7, top_k 0
NO_EOS = -1  # no token id: every row generates all its tokens, in every implementation


def _timed(run, repeats: int) -> tuple[object, float]:
    """Best wall time of ``repeats`` calls after one warm-up call (which also compiles)."""
    outputs = run()
    times = []
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        outputs = run()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return outputs, min(times)


def ours(model, batch_prompts, batch: int, mode: str, repeats: int):
    seeds = list(range(len(batch_prompts)))

    def run():
        outputs = []
        for start in range(0, len(batch_prompts), batch):
            chunk = batch_prompts[start:start + batch]
            outputs += decoding.generate_batch(model, chunk, [SETTINGS] * len(chunk),
                                               seeds[start:start + batch], NO_EOS, mode=mode)
        return outputs

    outputs, best = _timed(run, repeats)
    new_tokens = sum(len(o.token_ids) for o in outputs)  # type: ignore[attr-defined]
    return outputs, {"s": round(best, 3), "new_tokens": new_tokens,
                     "tokens_per_s": round(new_tokens / best, 1)}


def transformers_generate(model, batch_prompts, batch: int, repeats: int):
    """transformers' own sampling loop on the same language model and prompt embeddings.

    The lm_head rows that no token embeds are suppressed, as ours masks them (else a sampled
    one crashes the next embedding lookup).
    """
    unembedded = list(range(model.config.vocab_rows, model.config.lm_head_rows))

    def run():
        new_tokens = 0
        for start in range(0, len(batch_prompts), batch):
            embeds, mask, _ = decoding.left_pad(batch_prompts[start:start + batch])
            out = model.lm.generate(inputs_embeds=embeds, attention_mask=mask, do_sample=True,
                                    temperature=SETTINGS.temperature, top_k=0, top_p=1.0,
                                    max_new_tokens=SETTINGS.max_new_tokens,
                                    min_new_tokens=SETTINGS.max_new_tokens, pad_token_id=0,
                                    suppress_tokens=unembedded)
            new_tokens += out.shape[0] * (out.shape[1] if out.shape[1] <= SETTINGS.max_new_tokens
                                          else out.shape[1] - embeds.shape[1])
        return new_tokens

    new_tokens, best = _timed(run, repeats)
    return {"s": round(best, 3), "new_tokens": new_tokens,
            "tokens_per_s": round(int(new_tokens) / best, 1)}  # type: ignore[call-overload]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="tiny sizes, for checking the script")
    parser.add_argument("--dtype", default="float16")
    parser.add_argument("--modes", default="compiled,eager",
                        help="our decode modes to time, comma-separated (auto, eager, static, compiled)")
    parser.add_argument("--no-transformers", action="store_true", help="skip transformers' generate")
    parser.add_argument("--device-map", default="auto")
    parser.add_argument("--work-dir", type=Path)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--keep", action="store_true", help="keep the written checkpoint")
    parser.add_argument("--build-only", action="store_true",
                        help="write the checkpoint (implies --keep), print its path, and stop")
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if args.tiny:
        config = replace(TINY_CONFIG, vocab_rows=1000, lm_head_rows=1142)
    else:
        config = MagmaConfig()
    n_params = sum(t.numel() for t in _meta_state(config).values())
    path = work_dir(2 * n_params, args.work_dir) / f"magma-random-{'tiny' if args.tiny else 'full'}.pt"
    result: dict = {"benchmark": "gpu_magma", "tiny": args.tiny, "parameters": n_params,
                    "device": torch.cuda.get_device_name() if device.type == "cuda" else "cpu",
                    "torch": torch.__version__, "dtype": args.dtype, "device_map": args.device_map}
    try:
        result["build_s"] = round(build(config, path, device, store_config=args.tiny), 1)
        result["file_gib"] = round(path.stat().st_size / 2**30, 2)
        if args.build_only:
            args.keep = True
            result["checkpoint"] = str(path)
            print(json.dumps(result), flush=True)
            return
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        start = time.perf_counter()
        model = load_magma(path, dtype=args.dtype, device_map=args.device_map)
        if device.type == "cuda":
            torch.cuda.synchronize()
            result["gpu_mem_after_load_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        result["load_s"] = round(time.perf_counter() - start, 2)
        result["peak_rss_gib_after_load"] = round(peak_rss_gib(), 2)
        batch_prompts = prompts(model, 8, torch.Generator().manual_seed(0))
        for mode in [m for m in args.modes.split(",") if m]:
            tokens = {}
            for batch in (1, 8):
                tokens[batch], result[f"ours_{mode}_batch_{batch}"] = ours(
                    model, batch_prompts, batch, mode, args.repeats)
                print("so far:", json.dumps(result), flush=True)  # kept if a later step fails
            result[f"ours_{mode}_same_tokens_batch_1_vs_8"] = (
                [o.token_ids for o in tokens[1]] == [o.token_ids for o in tokens[8]])  # type: ignore[attr-defined]
        if not args.no_transformers:
            for batch in (1, 8):
                result[f"transformers_generate_batch_{batch}"] = transformers_generate(
                    model, batch_prompts, batch, args.repeats)
                print("so far:", json.dumps(result), flush=True)
        if device.type == "cuda":
            result["peak_gpu_mem_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    finally:
        if not args.keep:
            path.unlink(missing_ok=True)
    print(json.dumps(result), flush=True)


def _meta_state(config: MagmaConfig) -> dict[str, torch.Tensor]:
    from harness.models.magma.modeling import MagmaForCausalLM

    with torch.device("meta"):
        return MagmaForCausalLM(config).state_dict()


if __name__ == "__main__":
    main()
