#!/usr/bin/env bash
# The PAD paper's distillation data, shared by the real-corpus SLU recipes (their local/data.sh calls it with
# --distill_data true; run it from the recipe folder, egs/<corpus>/slu1):
#     data/librispeech_10h              a seeded random draw of --hours (10, the paper's) from train-clean-100: the
#                                       paired speech/transcripts that slu.sh distils on (--distill_set)
#     data/librispeech_dev              dev-clean: the distillation dev loss (--distill_valid)
#     data/librispeech_train_clean_100  the whole subset the draw comes from (kept: another draw needs no new pass
#                                       over the corpus)
# Transcripts stay upper case, as LibriSpeech has them; the distillation configs lowercase them for the uncased
# teacher (lowercase_text: true). The work is done by `python -m toolkit.bin.prepare_librispeech` and
# `python -m toolkit.bin.select_subset` (--help of each for details).
set -euo pipefail

db_root=""   # the LibriSpeech folder holding train-clean-100/ and dev-clean/; default: $LIBRISPEECH (db.sh)
hours=10     # hours drawn from train-clean-100
seed=1       # seed of the draw: the same corpus and seed always give the same utterances
nj=4         # threads reading the FLAC headers
check=false  # true: only check that the corpus folders exist (local/data.sh does so before any work)

help_message="Usage: $0 [--db_root DIR] [--hours H] [--seed S] [--nj N] [--check true|false]
  --db_root defaults to \$LIBRISPEECH (db.sh): the folder holding train-clean-100/ and dev-clean/
  --hours   hours drawn from train-clean-100 (default: $hours, the PAD paper's)
Writes data/librispeech_10h (the draw), data/librispeech_dev (dev-clean), data/librispeech_train_clean_100."
if [ -f ./db.sh ]; then . ./db.sh; fi
. utils/parse_options.sh

log() { echo "$(date '+%H:%M:%S') (local_librispeech_10h.sh) $*"; }
die() { echo "error: $*" >&2; exit 1; }

[ "$#" -eq 0 ] || die "unexpected arguments: $* (options are --name value)"
[[ "$nj" =~ ^[1-9][0-9]*$ ]] || die "--nj must be a positive number, got '$nj'"
case "$check" in true|false) ;; *) die "--check must be true or false, got '$check'" ;; esac
db_root=${db_root:-${LIBRISPEECH:-}}

where="Set LIBRISPEECH in $(pwd)/db.sh (or export it), or pass --librispeech DIR to local/data.sh
       (run.sh: --local_data_opts \"--librispeech DIR\"), DIR being the folder holding train-clean-100/ and dev-clean/.
       The recipe does not download: get train-clean-100.tar.gz and dev-clean.tar.gz from https://www.openslr.org/12
       and extract them there. (run.sh --local_data_opts \"--distill_data false\" prepares the task data only and runs the
       no-distillation baseline.)"
[ -n "$db_root" ] || die "the LibriSpeech folder (distillation data) is not set.
       $where"
# Both subsets are checked before any work, so that a missing one is reported at once.
for subset in train-clean-100 dev-clean; do
    if [ ! -d "$db_root/$subset" ]; then
        hint=""
        if [ -d "$db_root/LibriSpeech/$subset" ]; then
            hint=" (found $db_root/LibriSpeech/$subset: use $db_root/LibriSpeech)"
        fi
        die "LibriSpeech subset folder $db_root/$subset does not exist$hint.
       $where"
    fi
done
if [ "$check" = true ]; then exit 0; fi

. ./path.sh
mkdir -p data
for pair in train-clean-100:librispeech_train_clean_100 dev-clean:librispeech_dev; do
    subset=${pair%%:*} name=${pair#*:}
    log "$db_root/$subset -> data/$name"
    rm -rf "data/$name.tmp"
    python -m toolkit.bin.prepare_librispeech --db-root "$db_root/$subset" --out "data/$name.tmp" --nj "$nj"
    rm -rf "data/$name"
    mv "data/$name.tmp" "data/$name"
done
log "draw ${hours} h of data/librispeech_train_clean_100 (seed $seed) -> data/librispeech_10h"
python -m toolkit.bin.select_subset --data data/librispeech_train_clean_100 --hours "$hours" --seed "$seed" \
    --out data/librispeech_10h
# Without the audio: slu.sh's stage 2 reads every audio header again.
python -m toolkit.bin.validate_data_dir --data data/librispeech_10h data/librispeech_dev --no-audio
log "done: data/librispeech_10h data/librispeech_dev"
