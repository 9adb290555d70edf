#!/usr/bin/env bash
# The PAD paper's claims on our corpus: distil the same pretrained HuBERT with every method (and none), several seeds
# each, train the IC and SF heads on each result, and tabulate mean and spread of IC accuracy and SF slot-type F1 /
# slot-value CER in RESULTS.md.
#   ./run_comparison.sh [--methods "none glob ..."] [--seeds "1 2 3"] [--jobs 1] [--distill_args "..."]
#                       [--downstream_args "..."] [--tag_suffix ""] [-- any run.sh option]
# Methods are conf/distill/<method>.yaml, plus `none` (the pretrained HuBERT itself, no distillation). A seed sets
# the distillation's and the downstream heads' seeds. Stages 1-3 (data, audio, HuBERT) run once and are shared; the
# teacher's outputs are computed once into exp/distill/teacher_cache and shared by every run.
# --jobs N runs N methods at once (on a CPU box give each a share of the cores: --distill_args "--threads 1" and
# --downstream_args "--threads 1").
set -euo pipefail
cd "$(dirname "$0")"

methods="none glob tlocal pad_glob pad_tlocal pad_slocal pad_glob_uniform pad_tlocal_uniform pad_slocal_uniform pad_slocal_stride joint"
seeds="1 2 3"
jobs=1
distill_args=""      # added to every run's toolkit.bin.distill options, after its seed
downstream_args=""   # added to every run's toolkit.bin.train_downstream options, after its seed
tag_suffix=""        # appended to every tag, to keep comparisons with different options apart
help_message="Usage: $0 [--methods \"none glob ...\"] [--seeds \"1 2 3\"] [--jobs N] [--distill_args ARGS] [--downstream_args ARGS] [--tag_suffix S] [-- run.sh options]"
. utils/parse_options.sh

for method in $methods; do
    if [ "$method" != none ] && [ ! -f "conf/distill/$method.yaml" ]; then
        echo "error: unknown method '$method': conf/distill/$method.yaml does not exist" >&2
        exit 1
    fi
done

./run.sh --stage 1 --stop_stage 3 "$@"
mkdir -p exp/logs
tags=()
pids=()
for method in $methods; do
    for seed in $seeds; do
        tag="${method}${tag_suffix}_seed${seed}"
        config="conf/distill/$method.yaml"
        if [ "$method" = none ]; then config=none; fi
        ./run.sh --stage 4 --stop_stage 7 --distill_config "$config" --tag "$tag" \
            --distill_args "--set seed=$seed --teacher-cache exp/distill/teacher_cache $distill_args" \
            --downstream_args "--set seed=$seed $downstream_args" "$@" > "exp/logs/comparison.$tag.log" 2>&1 &
        tags+=("$tag")
        pids+=($!)
        echo "$(date '+%H:%M:%S') started $tag (log: exp/logs/comparison.$tag.log)"
        while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do wait -n || true; done
    done
done
failed=()
for i in "${!pids[@]}"; do wait "${pids[$i]}" || failed+=("${tags[$i]}"); done
. ./path.sh
python -m toolkit.bin.make_results --exp-dir exp --out RESULTS.md
if [ "${#failed[@]}" -gt 0 ]; then
    echo "failed: ${failed[*]}; see exp/logs/comparison.<tag>.log (rerun the same command to resume them)" >&2
    exit 1
fi
echo "comparison done: $(pwd)/RESULTS.md"
