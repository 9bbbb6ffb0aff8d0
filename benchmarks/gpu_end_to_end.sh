#!/usr/bin/env bash
# The paper's whole protocol on a GPU, through the CLI exactly as a user types it, on a
# MAGMA-format checkpoint: 1-shot generation and multiple choice, finetuning (4 epochs,
# batch 8), then base and finetuned MAGMA 0-shot on train and test, and the paper's tables.
#
#   bash benchmarks/gpu_end_to_end.sh CHECKPOINT TOKENIZER_DIR OUTPUT_DIR [LIMIT]
#
# LIMIT, if given, takes the first LIMIT items of each task (the paper's protocol on all 624
# items of dataset v2 takes longer than a short GPU lease allows).
# With a random full-size checkpoint from `python benchmarks/gpu_magma.py --build-only` it
# checks that the real-size paths run (memory, dtype, device placement); the scores mean
# nothing. Each step prints the seconds it took.
set -euo pipefail
checkpoint=$1 tokenizer=$2 out=$3 limit=${4:-}
args="checkpoint=$checkpoint,tokenizer=$tokenizer${EXTRA_ARGS:+,$EXTRA_ARGS}"  # EXTRA_ARGS: more model args
only=()
if [ -n "$limit" ]; then only=(--limit "$limit"); fi

step() {
    local start=$SECONDS
    echo "+ $*"
    "$@"
    echo "[step took $((SECONDS - start)) s]"
}

step python3 run_bench.py --model magma --model-args "$args" \
    --tasks morality_1shot,morality_1shot_mc --batch-size 8 --output-dir "$out" --no-cache "${only[@]}"
step python3 run_bench.py finetune --model magma --model-args "$args" \
    --task morality_0shot_train --epochs 4 --batch-size 8 --output "$out/finetunes/magma-aligned" "${only[@]}"
step python3 run_bench.py --model magma --model-args "$args" \
    --tasks morality_0shot_train,morality_0shot --batch-size 8 --output-dir "$out" "${only[@]}"
step python3 run_bench.py --model magma --model-args "$args,finetuned=$out/finetunes/magma-aligned" \
    --tasks morality_0shot_train,morality_0shot --batch-size 8 --output-dir "$out" "${only[@]}"
step python3 run_bench.py leaderboard --output-dir "$out" --view paper
