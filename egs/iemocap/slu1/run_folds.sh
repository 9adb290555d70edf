#!/usr/bin/env bash
# SUPERB's emotion recognition score: the five leave-one-session-out folds of one run and their mean test accuracy.
#   ./run_folds.sh [--folds "1 2 3 4 5"] [any run.sh option, e.g. --distill_config conf/distill/glob.yaml]
# The first fold runs every stage; the others reuse stages 1-4 (data, audio, upstream, the distilled student) and
# train, run and score their own head. Prints each fold's accuracy and the mean (local/fold_summary.py), also written
# to exp/er_folds_<tag>.json. A failed fold stops the script: rerun the same command to resume it.
set -euo pipefail
cd "$(dirname "$0")"

folds="1 2 3 4 5"
# run.sh options that name the run, read here to find its scores (and passed on as they are)
tag=""
distill_config=conf/distill/pad_slocal.yaml
expdir=exp
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --help|-h) sed -n '2,6p' "$0"; exit 0 ;;
        --fold|--fold=*) echo "$0: the folds are chosen here: --folds \"1 3\" for a subset" >&2; exit 1 ;;
        --folds|--tag|--distill_config|--distill-config|--expdir)
            if [ $# -lt 2 ]; then echo "$0: option '$1' needs a value" >&2; exit 1; fi
            set -- "$1=$2" "${@:3}" ;;
        --folds=*|--tag=*|--distill_config=*|--distill-config=*|--expdir=*)
            name=${1%%=*} name=${name#--}
            printf -v "${name//-/_}" '%s' "${1#*=}"
            if [ "$name" != folds ]; then args+=("$1"); fi
            shift ;;
        *) args+=("$1"); shift ;;
    esac
done
if [ -z "$tag" ]; then
    if [ "$distill_config" = none ]; then tag=none; else tag=$(basename "${distill_config%.*}"); fi
fi

for k in $folds; do
    echo "$(date '+%H:%M:%S') (run_folds.sh) fold $k of tag $tag"
    ./run.sh --fold "$k" "${args[@]+"${args[@]}"}"
done
. ./path.sh
python local/fold_summary.py --exp "$expdir" --tags "$tag" --folds "$folds"
