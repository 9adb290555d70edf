#!/usr/bin/env bash
# Audio SNIPS, the PAD paper's setup (docs/methods.md section 2): distil bert-base-uncased into facebook/wav2vec2-base on
# 10 h of LibriSpeech with PAD-SLocal, then SUPERB's slot filling (SF) on the frozen result: CTC over characters and
# slot tags, scored by slot-type F1 and slot-value CER; train/valid/test by SUPERB's voices.
#     1. set SNIPS and LIBRISPEECH in db.sh (the recipe never downloads; see README.md)
#     2. ./run.sh                                            PAD-SLocal (conf/distill/pad_slocal.yaml)
#        ./run.sh --distill_config conf/distill/glob.yaml    another method (any conf/distill/*.yaml)
#        ./run.sh --distill_config none                      the no-distillation baseline (wav2vec2-base itself)
#        ./run_comparison.sh                                 every method x 3 seeds, shared stages 1-3
# Any slu.sh option can be added (./run.sh --help lists them), e.g. --stage 4, --ngpu 0. Data preparation options go
# through --local_data_opts (local/data.sh --help lists them); run.sh adds --distill_data true in front of them.
# The models are downloaded from the Hugging Face hub on first use (or give local folders: --upstream DIR, and
# --teacher DIR or --distill_args "--set teacher=DIR").
set -euo pipefail
cd "$(dirname "$0")"

# Read here as well as passed on: the distillation data is prepared unless the user's options say otherwise.
local_data_opts=""
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --local_data_opts|--local-data-opts)
            if [ $# -lt 2 ]; then echo "$0: option '$1' needs a value" >&2; exit 1; fi
            local_data_opts=$2; shift 2 ;;
        --local_data_opts=*|--local-data-opts=*) local_data_opts=${1#*=}; shift ;;
        *) args+=("$1"); shift ;;
    esac
done

# Without the distillation data (--local_data_opts "--distill_data false": the task data only) the recipe runs the
# no-distillation baseline; slu.sh options given on the command line still come after and win.
no_distill=()
if [[ " $local_data_opts " == *" --distill_data false "* ]]; then
    no_distill=(--distill_config none --distill_set "" --distill_valid "")
fi

./slu.sh \
    --tasks sf \
    --sf_sets "train valid test" \
    --distill_set librispeech_10h \
    --distill_valid librispeech_dev \
    --local_data_opts "--distill_data true $local_data_opts" \
    --upstream facebook/wav2vec2-base \
    --distill_config conf/distill/pad_slocal.yaml \
    --nj 8 \
    --ngpu 1 \
    "${no_distill[@]+"${no_distill[@]}"}" \
    "${args[@]+"${args[@]}"}"
