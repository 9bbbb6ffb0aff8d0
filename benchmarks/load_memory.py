"""Benchmark: peak resident memory while loading a >= 1 GB MAGMA-format checkpoint.

Builds (once) a random MAGMA in the original ``model.pt`` format with GPT-J's vocabulary and
enough layers to pass ``--size-gb``, then, each in a fresh process, measures:

- ``ours``: ``load_magma`` (mmap + meta device + assign) in the file's dtype, followed by one
  forward pass so that every weight has really been read into memory;
- ``original``: what ``Magma.from_checkpoint`` does: materialise the model, ``torch.load``
  the whole file beside it, ``load_state_dict(strict=False)``; same forward pass.

Prints one JSON line per method: peak RSS growth over the process's RSS just before loading
(after imports), as a ratio to the file size. Usage:

    python benchmarks/load_memory.py --size-gb 1.1 --work-dir /tmp/magma-bench
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def bench_config(size_gb: float):
    from harness.models.magma.config import MagmaConfig

    base = MagmaConfig(n_layer=1, hidden_size=1024, n_head=16, rotary_dim=64, n_inner=4096,
                       adapter_bottleneck=256, encoder_width=32, encoder_layers=(1, 1, 1, 1),
                       image_size=384)
    embed = (base.vocab_rows + base.lm_head_rows) * base.hidden_size
    per_layer = 4 * base.hidden_size ** 2 + 2 * base.hidden_size * base.n_inner + 2 * base.hidden_size * base.adapter_bottleneck
    layers = int((size_gb * 1e9 / 2 - embed) // per_layer) + 1
    return replace(base, n_layer=max(1, layers))


def build(path: Path, size_gb: float) -> None:
    import torch

    from harness.models.magma.tiny import random_state_dict, write_checkpoint

    config = bench_config(size_gb)
    state = random_state_dict(config, seed=0, dtype=torch.float16)
    write_checkpoint(state, config, path)


def measure(path: Path, method: str) -> dict:
    import torch
    import transformers.models.gptj.modeling_gptj  # noqa: F401  (importing code is not loading weights)

    from harness.models.magma.checkpoint import load_magma
    from harness.models.magma.config import infer_config
    from harness.models.magma.modeling import MagmaForCausalLM

    torch.set_num_threads(1)
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    baseline = rss_kib("VmRSS")
    start = time.perf_counter()
    if method == "ours":
        model = load_magma(path, dtype="float16", device_map="cpu")
    else:
        raw = torch.load(path, map_location="cpu", weights_only=True)
        state = raw["module"]
        config = infer_config(state, raw.get("magma_config"))
        torch.set_default_dtype(torch.float16)
        model = MagmaForCausalLM(config)  # the original builds first, then loads beside it
        torch.set_default_dtype(torch.float32)
        model.load_state_dict(state, strict=False)
        model.reset_rotary_table()
        del raw, state
    load_s = time.perf_counter() - start
    after_load = rss_kib("VmRSS")
    with torch.no_grad():  # read every weight once: an unread mmap page costs nothing yet
        ids = torch.arange(8).unsqueeze(0)
        model(model.embed_tokens(ids))
        model.embed_images(torch.zeros(1, 3, 64, 64))
        for p in model.parameters():  # one element per 4 KiB page, without temporary copies
            p.detach().reshape(-1)[::1024].sum()
    peak = rss_kib("VmHWM")
    size = path.stat().st_size
    return {"benchmark": "load_memory", "method": method, "file_bytes": size, "load_s": round(load_s, 2),
            "rss_growth_after_load_ratio": round((after_load - baseline) * 1024 / size, 3),
            "peak_rss_growth_ratio": round((peak - baseline) * 1024 / size, 3),
            "peak_rss_total_ratio": round(peak * 1024 / size, 3),
            "baseline_rss_mib": round(baseline / 1024)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=1.1)
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/magma-bench"))
    parser.add_argument("--methods", default="ours,original")
    parser.add_argument("--measure", choices=["ours", "original"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    path = args.work_dir / f"magma-{args.size_gb}gb.pt"
    if args.measure:
        print(json.dumps(measure(path, args.measure)), flush=True)
        return
    if not path.is_file():
        args.work_dir.mkdir(parents=True, exist_ok=True)
        build(path, args.size_gb)
    for method in args.methods.split(","):
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        subprocess.run([sys.executable, __file__, "--size-gb", str(args.size_gb), "--work-dir",
                        str(args.work_dir), "--measure", method], check=True, env=env)


if __name__ == "__main__":
    main()
