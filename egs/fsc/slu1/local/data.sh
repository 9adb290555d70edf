#!/usr/bin/env bash
# Fluent Speech Commands data preparation: data/train data/valid data/test, one per csv of the corpus (see db.sh).
# Each holds wav.scp text utt2spk spk2utt utt2dur and utt2intent (`action|object|location`, e.g. activate|lights|none).
# Transcripts keep the corpus' case; speakers are FSC's speakerId.
# The work is done by `python -m toolkit.bin.prepare_fsc` (one split at a time; --help for details).
# With --distill_data true (run.sh passes it) also the PAD paper's distillation data, data/librispeech_10h (a seeded
# 10 h draw of LibriSpeech train-clean-100) and data/librispeech_dev (dev-clean): see LIBRISPEECH in db.sh.
set -euo pipefail

db_root=""          # the fluent_speech_commands_dataset folder; default: $FSC from db.sh
nj=4                # threads reading the wav headers (durations) and checking the audio
distill_data=false  # true: also the PAD distillation data, data/librispeech_10h and data/librispeech_dev (run.sh
                    # sets it; ../../TEMPLATE/slu1/local_librispeech_10h.sh does the work)
librispeech=""      # with --distill_data true: the LibriSpeech folder; default: $LIBRISPEECH from db.sh

help_message="Usage: $0 [--db_root DIR] [--nj N]
       [--distill_data true|false] [--librispeech DIR]
  --db_root defaults to \$FSC (db.sh): the fluent_speech_commands_dataset folder, holding data/*_data.csv and wavs/
  --nj      threads reading the wav headers (default: $nj)
  --distill_data true|false  also prepare the distillation data, data/librispeech_10h and data/librispeech_dev
                             (default: $distill_data; run.sh passes true)
  --librispeech DIR          defaults to \$LIBRISPEECH (db.sh): the folder holding train-clean-100/ and dev-clean/
Writes data/train, data/valid, data/test."
. ./db.sh
. utils/parse_options.sh
. ./path.sh

log() { echo "$(date '+%H:%M:%S') (local/data.sh) $*"; }
die() { echo "error: $*" >&2; exit 1; }

[ "$#" -eq 0 ] || die "unexpected arguments: $* (options are --name value)"
[[ "$nj" =~ ^[1-9][0-9]*$ ]] || die "--nj must be a positive number, got '$nj'"
case "$distill_data" in true|false) ;; *) die "--distill_data must be true or false, got '$distill_data'" ;; esac
db_root=${db_root:-$FSC}
splits="train valid test"

where="Set FSC in $(pwd)/db.sh (or export it), or pass --db_root DIR
       (DIR being the fluent_speech_commands_dataset folder).
       The recipe does not download: get the corpus from
       https://fluent.ai/fluent-speech-commands-a-dataset-for-spoken-language-understanding-research/ and extract it."
[ -n "$db_root" ] || die "the corpus folder is not set.
       $where"
# Every csv is checked before any work, so that a missing one is reported at once.
for split in $splits; do
    if [ ! -f "$db_root/data/${split}_data.csv" ]; then
        hint=""
        inner="$db_root/fluent_speech_commands_dataset"
        if [ -f "$inner/data/${split}_data.csv" ]; then
            hint=" (found $inner/data/${split}_data.csv: use --db_root $inner)"
        fi
        die "$db_root/data/${split}_data.csv does not exist$hint.
       $where"
    fi
done

# The distillation data's folders are checked before any work too.
distill=(../../TEMPLATE/slu1/local_librispeech_10h.sh --db_root "${librispeech:-${LIBRISPEECH:-}}" --nj "$nj")
if [ "$distill_data" = true ]; then "${distill[@]}" --check true; fi

mkdir -p data
for split in $splits; do
    log "$db_root/data/${split}_data.csv -> data/$split"
    rm -rf "data/$split.tmp"
    python -m toolkit.bin.prepare_fsc --db-root "$db_root" --split "$split" --out "data/$split.tmp" --nj "$nj"
    rm -rf "data/$split"
    mv "data/$split.tmp" "data/$split"
done

# The audio headers are opened again, so a wav at another rate is caught here.
python -m toolkit.bin.validate_data_dir --data data/train data/valid data/test --sample-rate 16000 --nj "$nj"
if [ "$distill_data" = true ]; then "${distill[@]}"; fi
log "done: data/train data/valid data/test"
