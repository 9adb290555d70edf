#!/usr/bin/env bash
# The embedded recipe: speech synthesised in-process by espeak-ng (no downloads), unseen-speaker dev/test sets.
# Any asr.sh option can be added, e.g. `./run.sh --stage 1 --stop_stage 3 --nj 4`.
# Corpus sizes go through local/data.sh: `./run.sh --local_data_opts "--train_utts 2000 --seed 3"`.
# Presets (--preset): default; quick = 15,000 training utterances and a narrower model (conf/train_sld_quick.yaml),
# for CPUs without native bf16, where the default takes about an hour (docs/hosts.md). Options
# given after --preset still win, e.g. `./run.sh --preset quick --local_data_opts "--train_utts 20000"`.
# Discretizers (--discretizer, conf/discretizer/<name>.yaml): mfcc_kmeans (default), hubert_kmeans (stage 4 first
# pretrains a small HuBERT on the corpus), encodec (stage 4 first trains a small EnCodec on the corpus).
set -euo pipefail
cd "$(dirname "$0")"
# Nothing in this recipe may download: its speech is synthesised and its models are trained here.
export HF_HUB_OFFLINE=1

# --preset is this script's own option (asr.sh does not know it); every other option goes to asr.sh.
preset=default
args=()
while [ $# -gt 0 ]; do
    case "$1" in
        --preset) preset="${2:-}"; shift $(( $# > 1 ? 2 : 1 )) ;;
        --preset=*) preset="${1#--preset=}"; shift ;;
        *) args+=("$1"); shift ;;
    esac
done
case "$preset" in
    default) preset_args=() ;;
    quick) preset_args=(--local_data_opts "--train_utts 15000" --train_config conf/train_sld_quick.yaml) ;;
    *) echo "error: --preset '$preset': use default or quick" >&2; exit 1 ;;
esac
set -- "${preset_args[@]+"${preset_args[@]}"}" "${args[@]+"${args[@]}"}"

# The discretizers whose model this recipe trains itself, in stage 4 before fitting/configuring the discretizer.
discretizer=mfcc_kmeans
args=("$@")
for i in "${!args[@]}"; do
    case "${args[$i]}" in
        --discretizer) discretizer="${args[$((i + 1))]:-}" ;;
        --discretizer=*) discretizer="${args[$i]#--discretizer=}" ;;
    esac
done
upstream=()
case "$discretizer" in
    hubert_kmeans)
        upstream=(--upstream_trainer toolkit.bin.pretrain_hubert --upstream_config conf/upstream/hubert.yaml
            --upstream_dir exp/upstream/hubert) ;;
    encodec)
        # Codec codes need more unit subwords than conf/tokenizer.yaml has; an explicit --tokenizer_config wins.
        upstream=(--upstream_trainer toolkit.bin.train_codec --upstream_config conf/codec/encodec_small.yaml
            --upstream_dir exp/codec/encodec_small --tokenizer_config conf/tokenizer_encodec.yaml) ;;
esac

for arg in "$@"; do
    if [ "$arg" = --help ] || [ "$arg" = -h ]; then
        echo "run.sh: --preset ($preset) default | quick (15,000 training utterances, conf/train_sld_quick.yaml); every other option goes to asr.sh:"
    fi
done

./asr.sh \
    --train_set train \
    --valid_set dev \
    --test_sets "test" \
    --fs 16000 \
    --min_dur 0.3 \
    --max_dur 20 \
    "${upstream[@]+"${upstream[@]}"}" \
    "$@"
