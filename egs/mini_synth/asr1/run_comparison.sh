#!/usr/bin/env bash
# The paper's claim on our corpus: train the speech-text LM with loss masking (lm), multimodal CE (ce) and SLD (sld)
# on the same units, with several seeds each, then tabulate mean and spread of dev and test WER in RESULTS.md.
#   ./run_comparison.sh [--seeds "1 2 3"] [--losses "lm ce sld"] [--discretizer mfcc_kmeans] [any run.sh option]
set -euo pipefail
cd "$(dirname "$0")"

seeds="1 2 3"
losses="lm ce sld"
discretizer=mfcc_kmeans
help_message="Usage: $0 [--seeds \"1 2 3\"] [--losses \"lm ce sld\"] [--discretizer NAME] [-- run.sh options]"
. utils/parse_options.sh

# Stages 1-6 once: every run trains on the same units and tokens.
./run.sh --stage 1 --stop_stage 6 --discretizer "$discretizer" "$@"
for loss in $losses; do
    for seed in $seeds; do
        ./run.sh --stage 7 --stop_stage 9 --discretizer "$discretizer" --train_config "conf/train_$loss.yaml" \
            --tag "${loss}_${discretizer}_seed${seed}" --train_args "--set seed=$seed" "$@"
    done
done
echo "comparison done: $(pwd)/RESULTS.md ($(basename "$0") --seeds \"$seeds\" --losses \"$losses\")"
