#!/usr/bin/env bash
# The PAD paper's comparison on IEMOCAP: distil wav2vec2-base with every method of conf/distill (and none), several
# seeds each, train and score the ER head of every leave-one-session-out fold on each result, and report SUPERB's
# figure, the mean test accuracy over the folds, per run and as mean ± std over seeds (local/fold_summary.py;
# RESULTS.md also has every fold, with its own mean and spread over seeds).
#   ./run_comparison.sh [--methods "none glob ..."] [--seeds "1 2 3"] [--folds "1 2 3 4 5"] [--distill_args "..."]
#                       [--downstream_args "..."] [--tag_suffix ""] [-- any run.sh option]
# Methods are conf/distill/<method>.yaml, plus `none` (wav2vec2-base itself, no distillation). A seed sets the
# distillation's and the heads' seeds (tags <method>_seed<k>; the head of fold f: fold<f>_<method>_seed<k>). Stages 1-3
# (data, audio, upstream) run once and are shared, one distillation serves the five folds (run.sh), and the
# teacher's outputs are computed once into exp/distill/teacher_cache and shared by every run. Runs go one after the
# other (one GPU). A failed run is listed at the end and the others go on; rerunning the same command resumes it and
# skips what is complete.
set -euo pipefail
cd "$(dirname "$0")"

methods="none glob tlocal pad_glob pad_tlocal pad_slocal pad_glob_uniform pad_tlocal_uniform pad_slocal_uniform"
methods="$methods pad_slocal_stride joint"
seeds="1 2 3"
folds="1 2 3 4 5"
distill_args=""      # added to every run's toolkit.bin.distill options, after its seed
downstream_args=""   # added to every run's toolkit.bin.train_downstream options, after its seed
tag_suffix=""        # appended to every method's name, to keep comparisons with different options apart
help_message="Usage: $0 [--methods \"none glob ...\"] [--seeds \"1 2 3\"] [--folds \"1 2 3 4 5\"] [--distill_args ARGS]
       [--downstream_args ARGS] [--tag_suffix S] [-- run.sh options]"
. utils/parse_options.sh

for method in $methods; do
    if [ "$method" != none ] && [ ! -f "conf/distill/$method.yaml" ]; then
        echo "error: unknown method '$method': conf/distill/$method.yaml does not exist" >&2
        exit 1
    fi
done
for seed in $seeds; do
    [[ "$seed" =~ ^[0-9]+$ ]] || { echo "error: --seeds must list whole numbers, got '$seed'" >&2; exit 1; }
done

# Stages 1-3 once: every run reads the same data and audio.
./run.sh --stage 1 --stop_stage 3 "$@"
mkdir -p exp/logs
done_tags=()
failed=()
for method in $methods; do
    for seed in $seeds; do
        tag="${method}${tag_suffix}_seed${seed}"
        config="conf/distill/$method.yaml"
        if [ "$method" = none ]; then config=none; fi
        echo "$(date '+%H:%M:%S') $tag, folds $folds (log: exp/logs/comparison.$tag.log)"
        if ./run_folds.sh --folds "$folds" --stage 4 --distill_config "$config" --tag "$tag" \
            --distill_args "--set seed=$seed --teacher-cache exp/distill/teacher_cache $distill_args" \
            --downstream_args "--set seed=$seed $downstream_args" "$@" > "exp/logs/comparison.$tag.log" 2>&1; then
            done_tags+=("$tag")
        else
            failed+=("$tag")
            echo "$(date '+%H:%M:%S') $tag FAILED; see exp/logs/comparison.$tag.log" >&2
        fi
    done
done
. ./path.sh
python -m toolkit.bin.make_results --exp exp --out exp/RESULTS.md
if [ "${#done_tags[@]}" -gt 0 ]; then
    python local/fold_summary.py --exp exp --tags "${done_tags[@]}" --folds "$folds" | tee exp/er_comparison.txt
fi
if [ "${#failed[@]}" -gt 0 ]; then
    echo "failed: ${failed[*]}; see exp/logs/comparison.<tag>.log (rerun the same command to resume them)" >&2
    exit 1
fi
echo "comparison done: exp/er_comparison.txt (fold means), $(pwd)/exp/RESULTS.md (every fold)"
