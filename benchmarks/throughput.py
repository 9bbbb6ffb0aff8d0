"""Benchmark: tokens per second on magma-tiny on the CPU, batched (8) versus one by one.

Eight requests (an image and a question each, different lengths) with the paper's sampling
(15 new tokens, temperature 0.7, top_k 0). The same requests are generated once with
``batch_size=8`` and once one request per call; both produce the same texts (checked).
Prints one JSON line. Usage:

    python benchmarks/throughput.py [--repeats 3] [--model magma-tiny] [--decode eager]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def requests(n: int):
    import numpy as np
    from PIL import Image

    from harness.hashing import image_id
    from harness.types import ImagePart, Request, TextPart

    out = []
    for i in range(n):
        pixels = np.random.default_rng(i).integers(0, 256, (300, 400, 3), dtype=np.uint8)
        image = Image.fromarray(pixels)
        question = "Q: Should I help the person in this picture?" + " Why?" * (i % 4) + " A:"
        out.append(Request(f"bench/{i}/0", (ImagePart(image_id(image), image), TextPart(question)), seed=i))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="magma-tiny")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--decode", default=None, help="the adapter's decode mode (default: its own)")
    args = parser.parse_args()
    from harness.registry import load_model

    overrides: dict = {"batch_size": args.batch}
    if args.decode:
        overrides["decode"] = args.decode
    model = load_model(args.model, overrides)
    batch = requests(args.batch)
    model.generate(batch)  # warm up: image prefixes are cached, kernels initialised

    timings: dict[str, list[float]] = {"batched": [], "one_by_one": []}
    texts = {}
    for _ in range(args.repeats):
        start = time.perf_counter()
        batched = model.generate(batch)
        timings["batched"].append(time.perf_counter() - start)
        start = time.perf_counter()
        single = [model.generate([r])[0] for r in batch]
        timings["one_by_one"].append(time.perf_counter() - start)
        texts = {"batched": [r.text for r in batched], "one_by_one": [r.text for r in single]}
    # count new tokens from the generator itself, not by re-tokenising the text
    from harness.models.magma import decoding

    prompts = [model.embed_prompt(r) for r in batch]
    generated = sum(len(s.token_ids) for s in decoding.generate_batch(
        model.model, prompts, [model._settings(r) for r in batch], [r.seed for r in batch], model.eos_id,
        sampler=model.sampler, mode=model.decode))
    result = {"benchmark": "throughput", "model": args.model, "decode": model.decode, "requests": len(batch),
              "new_tokens": generated, "same_texts": texts["batched"] == texts["one_by_one"]}
    for mode, values in timings.items():
        seconds = statistics.median(values)
        result[f"{mode}_s"] = round(seconds, 3)
        result[f"{mode}_tokens_per_s"] = round(generated / seconds, 1)
    result["speedup"] = round(result["one_by_one_s"] / result["batched_s"], 2)
    result["load_average_1min"] = round(os.getloadavg()[0], 2)  # the CPU is shared: context
    print(json.dumps(result))


if __name__ == "__main__":
    main()
