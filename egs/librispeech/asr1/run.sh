#!/usr/bin/env bash
# LibriSpeech, the SLD paper's setup (docs/methods.md section 1): HuBERT-Large k-means units (or WavLM-Large, EnCodec),
# a GPT-2 medium speech-text LM trained with the lm / ce / sld losses, greedy decoding, WER on dev/test clean/other.
#     1. set LIBRISPEECH in db.sh (the folder holding train-clean-100/, dev-clean/, ...; the recipe never downloads)
#     2. ./run.sh                                     train_960 (+ speed perturbation), HuBERT units, train_sld.yaml
#        ./run.sh --train_set train_clean_100         the 100 h subset
#        ./run.sh --discretizer wavlm_large_km2000    (or encodec_24khz); --train_config conf/train_lm.yaml, ...
# Any asr.sh option can be added (./run.sh --help lists them). Data preparation options go through
# --local_data_opts, e.g. --local_data_opts "--db_root /data/LibriSpeech" (local/data.sh --help lists them).
# Decisions: transcripts stay upper case, as the corpus has them (text, tokenizer and scoring all see upper case);
# speakers are <reader>-<chapter>, Kaldi's LibriSpeech convention. The SSL models, EnCodec and GPT-2 medium are
# downloaded from the Hugging Face hub on first use.
# Sets: dev_clean is the validation set (best epoch by its WER). asr.sh decodes and scores the validation set as
# well as --test_sets, so dev_clean is not repeated there: all four dev/test sets are scored.
set -euo pipefail
cd "$(dirname "$0")"

# Options that this script reads as well as asr.sh (the last occurrence wins, as in asr.sh).
train_set=train_960       # train_960 | train_clean_100: local/data.sh prepares it, asr.sh trains on it
local_data_opts=""        # more options for local/data.sh (--db_root, --nj, --skip_missing)
discretizer=hubert_large_km2000
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --train_set|--train-set|--local_data_opts|--local-data-opts|--discretizer)
            if [ $# -lt 2 ]; then echo "$0: option '$1' needs a value" >&2; exit 1; fi
            case "$1" in
                --train_set|--train-set) train_set=$2 ;;
                --local_data_opts|--local-data-opts) local_data_opts=$2 ;;
                --discretizer) discretizer=$2 ;;
            esac
            shift 2 ;;
        --train_set=*|--train-set=*) train_set=${1#*=}; shift ;;
        --local_data_opts=*|--local-data-opts=*) local_data_opts=${1#*=}; shift ;;
        --discretizer=*) discretizer=${1#*=}; shift ;;
        *) args+=("$1"); shift ;;
    esac
done
case "$train_set" in
    train_960|train_clean_100) ;;
    *) echo "$0: --train_set must be train_960 or train_clean_100, got '$train_set'" >&2; exit 1 ;;
esac

# EnCodec's 8192 unit ids need their own unit subwords (conf/tokenizer_encodec.yaml); a --tokenizer_config given
# on the command line comes later and wins.
tokenizer=()
case "$discretizer" in
    encodec*) tokenizer=(--tokenizer_config conf/tokenizer_encodec.yaml) ;;
esac

./asr.sh \
    --train_set "$train_set" \
    --valid_set dev_clean \
    --test_sets "dev_other test_clean test_other" \
    --local_data_opts "--train_set $train_set $local_data_opts" \
    --fs 16000 \
    --speed_perturb_factors "0.9 1.0 1.1" \
    --discretizer_fit_perturbed false \
    --discretizer "$discretizer" \
    --nj 8 \
    --ngpu 1 \
    "${tokenizer[@]+"${tokenizer[@]}"}" \
    "${args[@]+"${args[@]}"}"
