#!/usr/bin/env bash
# The paper's claim on our corpus: train the speech-text LM with loss masking (lm), multimodal CE (ce) and SLD (sld)
# on the same units, with several seeds each, then tabulate mean and spread of dev and test WER in RESULTS.md.
#   ./run_comparison.sh [--seeds "1 2 3"] [--losses "lm ce sld"] [--discretizer mfcc_kmeans] [--jobs 1]
#                       [--train_args "..."] [--tag_suffix ""] [-- any run.sh option]
# --jobs N trains N runs at once (on a CPU box, give each a share of the cores: --train_args "--threads 1").
set -euo pipefail
cd "$(dirname "$0")"

seeds="1 2 3"
losses="lm ce sld"
discretizer=mfcc_kmeans
jobs=1
train_args=""   # added to every run's toolkit.bin.train options, after its seed
tag_suffix=""   # appended to every tag, to keep comparisons with different options apart
help_message="Usage: $0 [--seeds \"1 2 3\"] [--losses \"lm ce sld\"] [--discretizer NAME] [--jobs N] [--train_args ARGS] [--tag_suffix S] [-- run.sh options]"
. utils/parse_options.sh

# Stages 1-6 once: every run trains on the same units and tokens.
./run.sh --stage 1 --stop_stage 6 --discretizer "$discretizer" "$@"
mkdir -p exp/logs
tags=()
pids=()
for loss in $losses; do
    for seed in $seeds; do
        tag="${loss}_${discretizer}${tag_suffix}_seed${seed}"
        ./run.sh --stage 7 --stop_stage 9 --discretizer "$discretizer" --train_config "conf/train_$loss.yaml" \
            --tag "$tag" --train_args "--set seed=$seed $train_args" "$@" > "exp/logs/comparison.$tag.log" 2>&1 &
        tags+=("$tag")
        pids+=($!)
        echo "$(date '+%H:%M:%S') started $tag (log: exp/logs/comparison.$tag.log)"
        # At most $jobs runs at once: wait for one to end before starting the next.
        while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
    done
done
# bash keeps the exit status of every background run, also of those `wait -n` has already collected.
failed=()
for i in "${!pids[@]}"; do wait "${pids[$i]}" || failed+=("${tags[$i]}"); done
# Every run rewrote RESULTS.md when it ended; once more now that all scores exist.
. ./path.sh
python -m toolkit.bin.make_results --exp-dir exp --out RESULTS.md
if [ "${#failed[@]}" -gt 0 ]; then
    echo "failed: ${failed[*]}; see exp/logs/comparison.<tag>.log (rerun the same command to resume them)" >&2
    exit 1
fi
echo "comparison done: $(pwd)/RESULTS.md"
