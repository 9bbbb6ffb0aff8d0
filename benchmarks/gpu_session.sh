#!/usr/bin/env bash
# Everything a short GPU lease should measure, in one command (docs/benchmarks.md):
#   1. benchmarks/gpu_magma.py: a random full-size MAGMA written in the original format,
#      loaded through our path, our decode modes against transformers' generate;
#   2. benchmarks/gpu_end_to_end.sh on that checkpoint, LIMIT items per task, with the static
#      decode (each step is a fresh process, and recompiling in each would spend the lease;
#      step 1 times the compiled mode).
# Writes each step's output under OUT_DIR (default $OUT, the device tool's folder, else
# /tmp/gpu-session). Run from the repository root:
#
#   bash benchmarks/gpu_session.sh [LIMIT]
set -uo pipefail
limit=${1:-24}
out=${OUT:-/tmp/gpu-session}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
{
    date -u +%FT%TZ
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    python3 -c "import sys, torch, transformers, accelerate; print(sys.version.split()[0], torch.__version__, transformers.__version__, accelerate.__version__)"
} 2>&1 | tee "$out/machine.txt"

# The decode benchmark, keeping the checkpoint for the end-to-end steps.
# (Where it goes is decided before it is written: /dev/shm if it has room.)
dir=$(python3 -c "from benchmarks.gpu_magma import work_dir; print(work_dir(13 * 2**30, None))")
timeout 330 python3 benchmarks/gpu_magma.py --keep --work-dir "$dir" 2>&1 | grep -v "^W[0-9]" | tee "$out/gpu_magma.log"
checkpoint=$dir/magma-random-full.pt
[ -f "$checkpoint" ] || { echo "no checkpoint at $checkpoint"; exit 1; }

# MAGMA's real tokenizer (GPT-2's) cannot be fetched there: magma-tiny's BPE stands in.
python3 -c "from pathlib import Path; from harness.models.magma.tiny import train_tokenizer; train_tokenizer(Path('/tmp/gpu-tokenizer'))"
EXTRA_ARGS=decode=static timeout 230 bash benchmarks/gpu_end_to_end.sh "$checkpoint" /tmp/gpu-tokenizer /tmp/gpu-e2e "$limit" 2>&1 \
    | grep -v "^W[0-9]" | tee "$out/end_to_end.log"
cp /tmp/gpu-e2e/leaderboard.jsonl "$out/" 2>/dev/null
rm -f "$checkpoint"
