#!/usr/bin/env bash
# LibriSpeech data preparation: one Kaldi data dir per subset, from the extracted corpus (see db.sh).
#     data/dev_clean data/dev_other data/test_clean data/test_other      always
#     data/train_clean_100 [data/train_clean_360 data/train_other_500]  the subsets of --train_set
#     data/train_960                                                   (--train_set train_960) their combination
# Transcripts stay upper case, as the corpus has them; speakers are <reader>-<chapter>, as in Kaldi's recipe.
# The work is done by `python -m toolkit.bin.prepare_librispeech` (one subset at a time; --help for details).
set -euo pipefail

train_set=train_960   # train_960 (train-clean-100 + train-clean-360 + train-other-500) | train_clean_100
db_root=""            # the LibriSpeech folder (holding dev-clean/, ...); default: $LIBRISPEECH from db.sh
nj=4                  # threads reading the FLAC headers (durations)
skip_missing=false    # true: leave out utterances whose audio or transcript is missing, instead of failing

help_message="Usage: $0 [--train_set train_960|train_clean_100] [--db_root DIR] [--nj N] [--skip_missing true|false]
  --db_root defaults to \$LIBRISPEECH (db.sh), the folder holding train-clean-100/, dev-clean/, ..."
. ./db.sh
. utils/parse_options.sh
. ./path.sh

log() { echo "$(date '+%H:%M:%S') (local/data.sh) $*"; }
die() { echo "error: $*" >&2; exit 1; }

[ "$#" -eq 0 ] || die "unexpected arguments: $* (options are --name value)"
[[ "$nj" =~ ^[1-9][0-9]*$ ]] || die "--nj must be a positive number, got '$nj'"
db_root=${db_root:-$LIBRISPEECH}
case "$train_set" in
    train_960) train_subsets="train-clean-100 train-clean-360 train-other-500" ;;
    train_clean_100) train_subsets="train-clean-100" ;;
    *) die "--train_set must be train_960 or train_clean_100, got '$train_set'" ;;
esac
case "$skip_missing" in
    true) skip_opt=(--skip-missing) ;;
    false) skip_opt=() ;;
    *) die "--skip_missing must be true or false, got '$skip_missing'" ;;
esac
subsets="dev-clean dev-other test-clean test-other $train_subsets"

# Every subset is checked before any work, so that a missing one is reported at once and not after hours.
for subset in $subsets; do
    if [ ! -d "$db_root/$subset" ]; then
        hint=""
        if [ -d "$db_root/LibriSpeech/$subset" ]; then hint=" (found $db_root/LibriSpeech/$subset: use --db_root $db_root/LibriSpeech)"; fi
        die "LibriSpeech subset folder $db_root/$subset does not exist$hint.
       Set LIBRISPEECH in $(pwd)/db.sh (or export it), or pass --db_root DIR (run.sh: --local_data_opts \"--db_root DIR\"),
       DIR being the folder that holds $subsets.
       The recipe does not download: get the archives from https://www.openslr.org/12 and extract them there."
    fi
done

mkdir -p data
for subset in $subsets; do
    name=${subset//-/_}   # dev-clean -> dev_clean, train-clean-100 -> train_clean_100
    log "$db_root/$subset -> data/$name"
    rm -rf "data/$name.tmp"
    python -m toolkit.bin.prepare_librispeech --db-root "$db_root/$subset" --out "data/$name.tmp" --nj "$nj" \
        "${skip_opt[@]+"${skip_opt[@]}"}"
    rm -rf "data/$name"
    mv "data/$name.tmp" "data/$name"
done

if [ "$train_set" = train_960 ]; then
    parts=()
    for subset in $train_subsets; do parts+=("data/${subset//-/_}"); done
    log "combine ${parts[*]} -> data/train_960"
    rm -rf data/train_960.tmp
    python -m toolkit.bin.combine_data_dir --data "${parts[@]}" --out data/train_960.tmp
    rm -rf data/train_960
    mv data/train_960.tmp data/train_960
fi

names=()
for subset in $subsets; do names+=("${subset//-/_}"); done
if [ "$train_set" = train_960 ]; then names+=(train_960); fi
python -m toolkit.bin.validate_data_dir --data "${names[@]/#/data/}" --no-audio
log "done: $(printf 'data/%s ' "${names[@]}")"
