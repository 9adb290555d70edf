#!/usr/bin/env bash
# The PAD paper's comparison on a recipe's corpus: distil the same upstream with every method of conf/distill (and
# none), several seeds each, train the recipe's downstream heads on each result, and tabulate the mean and spread over
# seeds of every score in exp/RESULTS.md. Shared by the SLU recipes (a symlink in each).
#   ./run_comparison.sh [--methods "none glob ..."] [--seeds "1 2 3"] [--jobs 1] [--distill_args "..."]
#                       [--downstream_args "..."] [--tag_suffix ""] [-- any run.sh option]
# Methods are conf/distill/<method>.yaml, the ablations of conf/distill/ablations.txt (a base config and the keys it
# changes, e.g. `pad_glob_uniform pad_glob loss.prior=uniform`), and `none` (the upstream itself, no distillation). A
# seed sets the
# distillation's and the heads' seeds (tags <method>_seed<k>). Stages 1-3 (data, audio, upstream) run once and are
# shared; the teacher's outputs are computed once into exp/distill/teacher_cache and shared by every run.
# --jobs N runs N of them at once (one per GPU, or on a CPU box each with a share of the cores: --distill_args
# "--threads 1" --downstream_args "--threads 1"). A failed run is listed at the end and the others go on; rerunning
# the same command resumes it and skips what is complete.
set -euo pipefail
cd "$(dirname "$0")"

methods="none glob tlocal pad_glob pad_tlocal pad_slocal pad_glob_uniform pad_tlocal_uniform pad_slocal_uniform"
methods="$methods pad_slocal_stride joint"
seeds="1 2 3"
jobs=1
distill_args=""      # added to every run's toolkit.bin.distill options, after its seed
downstream_args=""   # added to every run's toolkit.bin.train_downstream options, after its seed
tag_suffix=""        # appended to every method's name, to keep comparisons with different options apart
help_message="Usage: $0 [--methods \"none glob ...\"] [--seeds \"1 2 3\"] [--jobs N] [--distill_args ARGS]
       [--downstream_args ARGS] [--tag_suffix S] [-- run.sh options]"
. utils/parse_options.sh

# method_config METHOD: prints "<config> [--set KEY=VALUE ...]" of a method (ablations.txt: base config + changes).
method_config() {
    local method=$1 name base changes
    if [ "$method" = none ]; then echo none; return 0; fi
    if [ -f "conf/distill/$method.yaml" ]; then echo "conf/distill/$method.yaml"; return 0; fi
    if [ -f conf/distill/ablations.txt ]; then
        while read -r name base changes; do
            if [ "$name" = "$method" ] && [ -f "conf/distill/$base.yaml" ]; then
                echo "conf/distill/$base.yaml$(for c in $changes; do printf ' --set %s' "$c"; done)"
                return 0
            fi
        done < <(grep -v '^#' conf/distill/ablations.txt)
    fi
    return 1
}
for method in $methods; do
    if ! method_config "$method" > /dev/null; then
        echo "error: unknown method '$method': no conf/distill/$method.yaml, nor a line in conf/distill/ablations.txt" >&2
        exit 1
    fi
done
for seed in $seeds; do
    [[ "$seed" =~ ^[0-9]+$ ]] || { echo "error: --seeds must list whole numbers, got '$seed'" >&2; exit 1; }
done
[[ "$jobs" =~ ^[1-9][0-9]*$ ]] || { echo "error: --jobs must be a positive number, got '$jobs'" >&2; exit 1; }

# Stages 1-3 once: every run reads the same data, audio and upstream.
./run.sh --stage 1 --stop_stage 3 "$@"
mkdir -p exp/logs
tags=()
pids=()
for method in $methods; do
    for seed in $seeds; do
        tag="${method}${tag_suffix}_seed${seed}"
        read -r config changes <<< "$(method_config "$method")"
        ./run.sh --stage 4 --stop_stage 7 --distill_config "$config" --tag "$tag" \
            --distill_args "--set seed=$seed --teacher-cache exp/distill/teacher_cache ${changes:-} $distill_args" \
            --downstream_args "--set seed=$seed $downstream_args" "$@" > "exp/logs/comparison.$tag.log" 2>&1 &
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
# Every run rewrote exp/RESULTS.md when it ended; once more now that all scores exist.
. ./path.sh
python -m toolkit.bin.make_results --exp exp --out exp/RESULTS.md
if [ "${#failed[@]}" -gt 0 ]; then
    echo "failed: ${failed[*]}; see exp/logs/comparison.<tag>.log (rerun the same command to resume them)" >&2
    exit 1
fi
echo "comparison done: $(pwd)/exp/RESULTS.md (mean and spread over seeds at its end)"
