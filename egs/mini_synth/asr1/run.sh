#!/usr/bin/env bash
# The embedded recipe: speech synthesised in-process by espeak-ng (no downloads), unseen-speaker dev/test sets.
# Any asr.sh option can be added, e.g. `./run.sh --stage 1 --stop_stage 3 --nj 4`.
# Corpus sizes go through local/data.sh: `./run.sh --local_data_opts "--train_utts 2000 --seed 3"`.
set -euo pipefail
cd "$(dirname "$0")"
# Nothing in this recipe may download: its speech is synthesised and its models are trained here.
export HF_HUB_OFFLINE=1
./asr.sh \
    --train_set train \
    --valid_set dev \
    --test_sets "test" \
    --fs 16000 \
    --min_dur 0.3 \
    --max_dur 20 \
    "$@"
