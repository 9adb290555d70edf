#!/usr/bin/env bash
# The paper's claim on our corpus: train the speech-text LM with loss masking (lm), multimodal CE (ce) and SLD (sld)
# on the same units, for one or more discretizers, with several seeds each; then exp/RESULTS.md gets the per-run tables
# (make_results) and the losses x discretizers table, mean ± spread of WER beside each discretizer's unit quality
# (make_grid).
#   ./run_comparison.sh [--seeds "1 2 3"] [--losses "lm ce sld"] [--discretizers "mfcc_kmeans hubert_kmeans encodec"]
#                       [--jobs 1] [--train_args "..."] [--tag_prefix ""] [--tag_suffix ""] [-- any run.sh option]
# Runs are tagged <prefix><loss>_<discretizer><suffix>_seed<N>. --jobs N trains N runs at once (on a CPU box, give
# each a share of the cores: --train_args "--threads 1"; on one GPU, `-- --ngpu 1` and e.g. --jobs 10).
# --discretizer NAME is the same as --discretizers NAME.
set -euo pipefail
cd "$(dirname "$0")"

seeds="1 2 3"
losses="lm ce sld"
discretizers=mfcc_kmeans
discretizer=""  # one discretizer, kept for older command lines
jobs=1
train_args=""   # added to every run's toolkit.bin.train options, after its seed
tag_prefix=""   # prepended to every tag, e.g. to keep GPU runs apart from CPU runs
tag_suffix=""   # appended to every tag, to keep comparisons with different options apart
help_message="Usage: $0 [--seeds \"1 2 3\"] [--losses \"lm ce sld\"] [--discretizers \"NAME ...\"] [--jobs N]
    [--train_args ARGS] [--tag_prefix P] [--tag_suffix S] [-- run.sh options]"
. utils/parse_options.sh
if [ -n "$discretizer" ]; then discretizers=$discretizer; fi
for loss in $losses; do
    [ -f "conf/train_$loss.yaml" ] \
        || { echo "error: unknown loss '$loss': conf/train_$loss.yaml does not exist" >&2; exit 1; }
done
for disc in $discretizers; do
    [ -f "conf/discretizer/$disc.yaml" ] \
        || { echo "error: unknown discretizer '$disc': conf/discretizer/$disc.yaml does not exist" >&2; exit 1; }
done
for seed in $seeds; do
    [[ "$seed" =~ ^[0-9]+$ ]] || { echo "error: --seeds must list whole numbers, got '$seed'" >&2; exit 1; }
done
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || { echo "error: --jobs must be a positive number, got '$jobs'" >&2; exit 1; }

# Stages 1-6 once per discretizer: every run of a discretizer trains on the same units and tokens.
for disc in $discretizers; do
    ./run.sh --stage 1 --stop_stage 6 --discretizer "$disc" "$@"
done
mkdir -p exp/logs
tags=()
pids=()
for seed in $seeds; do
    for disc in $discretizers; do
        for loss in $losses; do
            tag="${tag_prefix}${loss}_${disc}${tag_suffix}_seed${seed}"
            ./run.sh --stage 7 --stop_stage 9 --discretizer "$disc" --train_config "conf/train_$loss.yaml" \
                --tag "$tag" --train_args "--set seed=$seed $train_args" "$@" > "exp/logs/comparison.$tag.log" 2>&1 &
            tags+=("$tag")
            pids+=($!)
            echo "$(date '+%H:%M:%S') started $tag (log: exp/logs/comparison.$tag.log)"
            # At most $jobs runs at once: wait for one to end before starting the next.
            while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
        done
    done
done
# bash keeps the exit status of every background run, also of those `wait -n` has already collected.
failed=()
for i in "${!pids[@]}"; do wait "${pids[$i]}" || failed+=("${tags[$i]}"); done
# Every run rewrote exp/RESULTS.md when it ended; once more now that all scores exist, then the losses x discretizers table.
. ./path.sh
python -m toolkit.bin.make_results --exp exp --out exp/RESULTS.md
python -m toolkit.bin.make_grid --losses "$losses" --discretizers "$discretizers" \
    --tag-format "${tag_prefix}{loss}_{discretizer}${tag_suffix}_seed{seed}" --out exp/RESULTS.md
if [ "${#failed[@]}" -gt 0 ]; then
    echo "failed: ${failed[*]}; see exp/logs/comparison.<tag>.log (rerun the same command to resume them)" >&2
    exit 1
fi
echo "comparison done: $(pwd)/exp/RESULTS.md"
