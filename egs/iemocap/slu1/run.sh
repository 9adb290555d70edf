#!/usr/bin/env bash
# IEMOCAP, the PAD paper's setup (docs/methods.md section 2): distil bert-base-uncased into facebook/wav2vec2-base on 10 h
# of LibriSpeech with PAD-SLocal, then SUPERB's emotion recognition (ER: neu, hap + exc, ang, sad) on the frozen
# result, one leave-one-session-out fold: train on four sessions, test on session --fold.
#     1. set IEMOCAP and LIBRISPEECH in db.sh (the recipe never downloads; see README.md)
#     2. ./run.sh                                            fold 1, PAD-SLocal (conf/distill/pad_slocal.yaml)
#        ./run.sh --fold 3                                   another fold (the distilled student is reused)
#        ./run_folds.sh                                      the five folds and their mean accuracy (SUPERB's ER)
#        ./run.sh --distill_config conf/distill/glob.yaml    another method (any conf/distill/*.yaml)
#        ./run.sh --distill_config none                      the no-distillation baseline (wav2vec2-base itself)
#        ./run_comparison.sh                                 every method x 3 seeds x 5 folds, shared stages 1-3
# Any slu.sh option can be added (./run.sh --help lists them), e.g. --stage 4, --ngpu 0. Data preparation options go
# through --local_data_opts (local/data.sh --help lists them); run.sh adds --distill_data true in front of them.
#
# The distilled student does not depend on the fold, so one tag's distillation serves all five: stages 1-4 run under
# the tag (default: the distill config's name, or none), exp/distill/<tag>/model; stages 5-7 of fold k run under the
# tag fold<k>_<tag> on that student (slu.sh --distill_config none --upstream exp/distill/<tag>/model), giving
# exp/er_fold<k>_<tag>. Stages 1-3 list every fold's sets, so that they are the same for every fold and run once.
set -euo pipefail
cd "$(dirname "$0")"

# Options read here (the rest goes to slu.sh as it is).
fold=1
stage=1
stop_stage=7
tag=""
distill_config=conf/distill/pad_slocal.yaml
upstream=facebook/wav2vec2-base
expdir=exp
local_data_opts=""
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --help|-h)
            echo "Usage: $0 [--fold 1..5] [slu.sh options]   (run.sh reads --fold, --stage, --stop_stage, --tag,"
            echo "       --distill_config, --upstream, --expdir and --local_data_opts; slu.sh's options follow)"
            exec ./slu.sh --help ;;
        --fold|--stage|--stop_stage|--stop-stage|--tag|--distill_config|--distill-config|--upstream|--expdir|\
        --local_data_opts|--local-data-opts)
            if [ $# -lt 2 ]; then echo "$0: option '$1' needs a value" >&2; exit 1; fi
            set -- "$1=$2" "${@:3}" ;;
        --fold=*|--stage=*|--stop_stage=*|--stop-stage=*|--tag=*|--distill_config=*|--distill-config=*|--upstream=*|\
        --expdir=*|--local_data_opts=*|--local-data-opts=*)
            name=${1%%=*} name=${name#--}
            printf -v "${name//-/_}" '%s' "${1#*=}"
            shift ;;
        *) args+=("$1"); shift ;;
    esac
done
case "$fold" in 1|2|3|4|5) ;; *) echo "$0: --fold must be 1, 2, 3, 4 or 5, got '$fold'" >&2; exit 1 ;; esac
if ! [[ "$stage" =~ ^[0-9]+$ && "$stop_stage" =~ ^[0-9]+$ ]]; then
    echo "$0: --stage and --stop_stage must be numbers" >&2
    exit 1
fi
# Without the distillation data (--local_data_opts "--distill_data false": the task data only) the recipe runs the
# no-distillation baseline.
distill_sets=(--distill_set librispeech_10h --distill_valid librispeech_dev)
if [[ " $local_data_opts " == *" --distill_data false "* ]]; then
    if [ "$distill_config" != none ] && [ "$distill_config" != conf/distill/pad_slocal.yaml ]; then
        echo "$0: --distill_config $distill_config needs the distillation data; drop --distill_data false" >&2
        exit 1
    fi
    distill_config=none
    distill_sets=(--distill_set "" --distill_valid "")
fi
if [ -z "$tag" ]; then
    if [ "$distill_config" = none ]; then tag=none; else tag=$(basename "${distill_config%.*}"); fi
fi

all_folds=""
for k in 1 2 3 4 5; do all_folds="$all_folds fold${k}_train fold${k}_dev fold${k}_test"; done
common=(
    --tasks er
    "${distill_sets[@]}"
    --local_data_opts "--distill_data true $local_data_opts"
    # slu.sh trims only the first set of --er_sets (fold 1's training set in stages 1-3, which list every fold):
    # limits wider than the corpus trim nothing, so every fold trains on all its turns alike.
    --max_dur 60
    --expdir "$expdir"
    --nj 8
    --ngpu 1
)
if [ "$stage" -le 4 ]; then
    ./slu.sh "${common[@]}" --er_sets "${all_folds# }" --upstream "$upstream" --distill_config "$distill_config" \
        --tag "$tag" --stage "$stage" --stop_stage "$(( stop_stage < 4 ? stop_stage : 4 ))" \
        "${args[@]+"${args[@]}"}"
fi
if [ "$stop_stage" -ge 5 ]; then
    student=$upstream
    if [ "$distill_config" != none ]; then student=$expdir/distill/$tag/model; fi
    ./slu.sh "${common[@]}" --er_sets "fold${fold}_train fold${fold}_dev fold${fold}_test" --upstream "$student" \
        --distill_config none --tag "fold${fold}_$tag" --stage "$(( stage > 5 ? stage : 5 ))" \
        --stop_stage "$stop_stage" "${args[@]+"${args[@]}"}"
fi
