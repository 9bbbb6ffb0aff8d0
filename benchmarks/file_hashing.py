"""Benchmark: identifying a checkpoint by content (harness.identity).

Writes a file of random bytes (default 1 GiB), then times, each in this process:
``hash_bytes`` (SHA-256 over the whole file, read in 8 MiB blocks) with the file in the page
cache, the same after dropping it from the cache where the OS allows (``posix_fadvise``
DONTNEED), BLAKE2b for comparison, and ``file_digest`` twice: the first computes and remembers
the digest, the second only looks it up. Prints one JSON line. Usage:

    python benchmarks/file_hashing.py [--size-gb 1] [--work-dir /tmp/hash-bench]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def drop_from_page_cache(path: Path) -> bool:
    if not hasattr(os, "posix_fadvise"):
        return False
    with open(path, "rb") as handle:
        os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    return True


def blake2b_of(path: Path, block: int) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=1.0)
    parser.add_argument("--work-dir", default=None)
    args = parser.parse_args()
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="hash-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ["VMB_HASH_CACHE"] = str(work / "file-hashes.json")
    from harness.identity import BLOCK_BYTES, file_digest, hash_bytes

    path = work / "model.bin"
    size = int(args.size_gb * (1 << 30))
    with open(path, "wb") as handle:
        for _ in range(size // (64 << 20)):
            handle.write(os.urandom(64 << 20))
        handle.write(os.urandom(size % (64 << 20)))
        handle.flush()
        os.fsync(handle.fileno())
    timings: dict[str, float] = {}

    def timed(name: str, call) -> None:  # noqa: ANN001
        start = time.perf_counter()
        call()
        timings[name] = round(time.perf_counter() - start, 3)

    timed("sha256_cached_pages_s", lambda: hash_bytes(path))
    dropped = drop_from_page_cache(path)
    timed("sha256_cold_s", lambda: hash_bytes(path))
    timed("blake2b_cached_pages_s", lambda: blake2b_of(path, BLOCK_BYTES))
    timed("file_digest_first_s", lambda: file_digest(path))
    timed("file_digest_remembered_s", lambda: file_digest(path))
    gib = size / (1 << 30)
    print(json.dumps({
        "bytes": size, **timings, "cold_read_possible": dropped,
        "sha256_gib_per_s_cached": round(gib / timings["sha256_cached_pages_s"], 2),
        "sha256_gib_per_s_cold": round(gib / timings["sha256_cold_s"], 2),
        "blake2b_gib_per_s_cached": round(gib / timings["blake2b_cached_pages_s"], 2),
        "load_avg_1min": round(os.getloadavg()[0], 2),
    }))
    path.unlink()


if __name__ == "__main__":
    main()
