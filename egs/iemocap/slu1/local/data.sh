#!/usr/bin/env bash
# IEMOCAP data preparation for SUPERB's emotion recognition (see db.sh): neu, hap (with exc merged in), ang, sad.
#     data/session1 ... data/session5                 every kept turn of a session
#     data/fold<k>_train data/fold<k>_dev              the four other sessions; dev is a seeded 20% of their turns
#     data/fold<k>_test                                session k (leave-one-session-out, k = 1..5)
# Each holds wav.scp text utt2spk spk2utt utt2dur utt2emotion; speakers are <session><gender>, e.g. Ses01F.
# The work is done by `python -m toolkit.bin.prepare_iemocap` (--help for details).
# With --distill_data true (run.sh passes it) also the PAD paper's distillation data, data/librispeech_10h (a seeded
# 10 h draw of LibriSpeech train-clean-100) and data/librispeech_dev (dev-clean): see LIBRISPEECH in db.sh.
set -euo pipefail

db_root=""          # the IEMOCAP_full_release folder; default: $IEMOCAP from db.sh
dev_ratio=0.2       # share of each fold's training sessions held out as dev (SUPERB: 0.2)
seed=0              # seed of the dev split
nj=4                # threads reading the wav headers (durations) and checking the audio
distill_data=false  # true: also the PAD distillation data, data/librispeech_10h and data/librispeech_dev (run.sh
                    # sets it; ../../TEMPLATE/slu1/local_librispeech_10h.sh does the work)
librispeech=""      # with --distill_data true: the LibriSpeech folder; default: $LIBRISPEECH from db.sh

help_message="Usage: $0 [--db_root DIR] [--dev_ratio R] [--seed S] [--nj N]
       [--distill_data true|false] [--librispeech DIR]
  --db_root   defaults to \$IEMOCAP (db.sh): the IEMOCAP_full_release folder, holding Session1 ... Session5
  --dev_ratio share of the four training sessions of each fold held out as dev (default: $dev_ratio)
  --seed      seed of the dev split (default: $seed)
  --nj        threads reading the wav headers (default: $nj)
  --distill_data true|false  also prepare the distillation data, data/librispeech_10h and data/librispeech_dev
                             (default: $distill_data; run.sh passes true)
  --librispeech DIR          defaults to \$LIBRISPEECH (db.sh): the folder holding train-clean-100/ and dev-clean/
Writes data/session1..5 and data/fold{1..5}_{train,dev,test}."
. ./db.sh
. utils/parse_options.sh
. ./path.sh

log() { echo "$(date '+%H:%M:%S') (local/data.sh) $*"; }
die() { echo "error: $*" >&2; exit 1; }

[ "$#" -eq 0 ] || die "unexpected arguments: $* (options are --name value)"
[[ "$nj" =~ ^[1-9][0-9]*$ ]] || die "--nj must be a positive number, got '$nj'"
case "$distill_data" in true|false) ;; *) die "--distill_data must be true or false, got '$distill_data'" ;; esac
[[ "$seed" =~ ^[0-9]+$ ]] || die "--seed must be a whole number, got '$seed'"
db_root=${db_root:-$IEMOCAP}

where="Set IEMOCAP in $(pwd)/db.sh (or export it), or pass --db_root DIR (DIR being the IEMOCAP_full_release folder).
       The recipe does not download: request the corpus from https://sail.usc.edu/iemocap/ and extract it."
[ -n "$db_root" ] || die "the corpus folder is not set.
       $where"
# Every session is checked before any work, so that a missing one is reported at once.
for n in 1 2 3 4 5; do
    if [ ! -d "$db_root/Session$n" ]; then
        hint=""
        if [ -d "$db_root/IEMOCAP_full_release/Session$n" ]; then
            hint=" (found $db_root/IEMOCAP_full_release/Session$n: use --db_root $db_root/IEMOCAP_full_release)"
        fi
        die "$db_root/Session$n does not exist$hint.
       $where"
    fi
done

# The distillation data's folders are checked before any work too.
distill=(../../TEMPLATE/slu1/local_librispeech_10h.sh --db_root "${librispeech:-${LIBRISPEECH:-}}" --nj "$nj")
if [ "$distill_data" = true ]; then "${distill[@]}" --check true; fi

mkdir -p data
log "$db_root -> data/session{1..5} data/fold{1..5}_{train,dev,test}"
# The Python side writes every set to data/<set>.tmp and renames them only when all are complete.
python -m toolkit.bin.prepare_iemocap --db-root "$db_root" --out data --dev-ratio "$dev_ratio" --seed "$seed" \
    --nj "$nj"

sessions=() folds=()
for k in 1 2 3 4 5; do
    sessions+=("data/session$k")
    folds+=("data/fold${k}_train" "data/fold${k}_dev" "data/fold${k}_test")
done
# The sessions with their audio (16 kHz), the folds (made of the same files) without.
python -m toolkit.bin.validate_data_dir --data "${sessions[@]}" --sample-rate 16000 --nj "$nj"
python -m toolkit.bin.validate_data_dir --data "${folds[@]}" --no-audio
if [ "$distill_data" = true ]; then "${distill[@]}"; fi
log "done: ${sessions[*]} ${folds[*]}"
