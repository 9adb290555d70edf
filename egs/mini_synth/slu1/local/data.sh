#!/usr/bin/env bash
# Data preparation of the embedded SLU recipe: synthesise train/dev/test with espeak-ng (as egs/mini_synth/asr1 does),
# then cut the sets the SLU pipeline reads out of them:
#     data/train, data/dev           HuBERT pretraining (stage 3)
#     data/paired                    the paired speech/transcript set for distillation (--paired_utts of train)
#     data/ic_{train,dev,test}       intent classification: the FSC-like commands, intent action|object|location
#     data/sf_{train,dev,test}       slot filling: the SNIPS-like queries (not commands, not chit-chat), text.slots
#     data/{ic,sf}_test_{seen,accent}  the test sets' two conditions: base voices heard in training, and the unseen accent
# dev and test speakers are unseen in training; test has a base voice (accent) never heard in training.
# The downstream training sets are small on purpose (--ic_train_utts, --sf_train_utts): with thousands of examples
# per class every upstream reaches ~100%, and the comparison would measure nothing.
set -euo pipefail

train_utts=8000       # synthesised training utterances (pretraining, and the pool of the other train sets)
dev_utts=600
test_utts=800
paired_utts=3000      # distillation set, drawn from train
ic_train_utts=1000    # IC training set, drawn from the commands of train
sf_train_utts=1500    # SF training set, drawn from the slot-bearing queries of train
# The first 48 training speakers (toolkit/synth/speakers.py), the corpus of this recipe's RESULTS.md; the ASR recipe
# has the same default.
train_speakers=48
seed=1
nj=2
db_root=downloads/mini_synth

help_message="Usage: $0 [--train_utts N] [--dev_utts N] [--test_utts N] [--paired_utts N] [--ic_train_utts N]
       [--sf_train_utts N] [--train_speakers N] [--seed S] [--nj N] [--db_root DIR]"
. ./cmd.sh
. utils/parse_options.sh
. ./path.sh

for dset in train dev test; do
    count_var="${dset}_utts"
    count=${!count_var}
    # Each run synthesises into a new folder: data/$dset keeps naming the previous audio until the new set is
    # complete, so a failed or killed run loses nothing. Older folders of the set go once data/$dset is replaced.
    mkdir -p "$db_root"
    out=$(mktemp -d "$db_root/$dset.XXXXXX")
    speakers=()
    if [ "$dset" = train ]; then speakers=(--num-speakers "$train_speakers"); fi
    jobs=$(( nj < count ? nj : count ))
    echo "$(date '+%H:%M:%S') synthesising $count utterances for $dset in $jobs job(s) -> $out"
    run_jobs --nj "$jobs" --log "$out/log/synth.JOB.log" -- \
        python -m toolkit.bin.synth_corpus --out "$(pwd)/$out/shardJOB" --split "$dset" --num-utts "$count" \
        --seed "$seed" --shard JOB --num-shards "$jobs" ${speakers[@]+"${speakers[@]}"}
    parts=()
    for k in $(seq 1 "$jobs"); do parts+=("$out/shard$k"); done
    rm -rf "data/$dset.tmp"
    python -m toolkit.bin.combine_data_dir --data "${parts[@]}" --out "data/$dset.tmp"
    rm -rf "data/$dset"
    mv "data/$dset.tmp" "data/$dset"
    for old in "$db_root/$dset" "$db_root/$dset".*; do
        if [ -e "$old" ] && [ "$old" != "$out" ]; then rm -rf "$old"; fi
    done
done

python -m toolkit.bin.subset_by_label --data data/train --out data/paired --table text --max-utts "$paired_utts" --seed "$seed"
# FSC-like commands carry a '|'-joined intent; SNIPS-like queries a plain one; chit-chat is `chat`.
commands=(--table utt2intent --match '\|')
queries=(--table utt2intent --exclude '\||^chat$')
python -m toolkit.bin.subset_by_label --data data/train --out data/ic_train "${commands[@]}" --max-utts "$ic_train_utts" --seed "$seed"
python -m toolkit.bin.subset_by_label --data data/train --out data/sf_train "${queries[@]}" --max-utts "$sf_train_utts" --seed "$seed"
for dset in dev test; do
    python -m toolkit.bin.subset_by_label --data "data/$dset" --out "data/ic_$dset" "${commands[@]}"
    python -m toolkit.bin.subset_by_label --data "data/$dset" --out "data/sf_$dset" "${queries[@]}"
done
# The two test conditions, scored apart: speakers on base voices heard in training (with variants unseen there), and
# speakers of the accent no training speaker has (en-gb-scotland). Their union is ic_test / sf_test.
for task in ic sf; do
    python -m toolkit.bin.subset_by_label --data "data/${task}_test" --out "data/${task}_test_seen" --table spk2voice \
        --exclude 'base=en-gb-scotland'
    python -m toolkit.bin.subset_by_label --data "data/${task}_test" --out "data/${task}_test_accent" --table spk2voice \
        --match 'base=en-gb-scotland'
done
