#!/usr/bin/env bash
# Audio SNIPS data preparation as SUPERB's slot filling task splits it (see db.sh): by voice,
#     data/train   Ivy Joanna Joey Justin Kendra Kimberly Matthew Salli   (the train/ folder)
#     data/valid   Aditi Amy Geraint Nicole                               (the valid/ folder)
#     data/test    Brian Emma Raveena Russell                             (the test/ folder)
# Each holds wav.scp text (lower case, no tags) text.slots (`... B-city kaneville E-city ...`) utt2intent utt2spk
# spk2utt utt2dur. The work is done by `python -m toolkit.bin.prepare_snips` (one split at a time; --help).
# With --distill_data true (run.sh passes it) also the PAD paper's distillation data, data/librispeech_10h (a seeded
# 10 h draw of LibriSpeech train-clean-100) and data/librispeech_dev (dev-clean): see LIBRISPEECH in db.sh.
set -euo pipefail

db_root=""          # the SNIPS folder holding all.iob.snips.txt and train/ valid/ test/; default: $SNIPS from db.sh
nj=4                # threads reading the wav headers (durations) and checking the audio
distill_data=false  # true: also the PAD distillation data, data/librispeech_10h and data/librispeech_dev (run.sh
                    # sets it; ../../TEMPLATE/slu1/local_librispeech_10h.sh does the work)
librispeech=""      # with --distill_data true: the LibriSpeech folder; default: $LIBRISPEECH from db.sh

help_message="Usage: $0 [--db_root DIR] [--nj N]
       [--distill_data true|false] [--librispeech DIR]
  --db_root defaults to \$SNIPS (db.sh): the folder holding all.iob.snips.txt and the train/ valid/ test/ wav folders
  --nj      threads reading the wav headers (default: $nj)
  --distill_data true|false  also prepare the distillation data, data/librispeech_10h and data/librispeech_dev
                             (default: $distill_data; run.sh passes true)
  --librispeech DIR          defaults to \$LIBRISPEECH (db.sh): the folder holding train-clean-100/ and dev-clean/
Writes data/train, data/valid, data/test with SUPERB's voices."
. ./db.sh
. utils/parse_options.sh
. ./path.sh

log() { echo "$(date '+%H:%M:%S') (local/data.sh) $*"; }
die() { echo "error: $*" >&2; exit 1; }

[ "$#" -eq 0 ] || die "unexpected arguments: $* (options are --name value)"
[[ "$nj" =~ ^[1-9][0-9]*$ ]] || die "--nj must be a positive number, got '$nj'"
case "$distill_data" in true|false) ;; *) die "--distill_data must be true or false, got '$distill_data'" ;; esac
db_root=${db_root:-$SNIPS}
splits="train valid test"

where="Set SNIPS in $(pwd)/db.sh (or export it), or pass --db_root DIR (DIR holding all.iob.snips.txt and $splits).
       The recipe does not download: get the audio and annotation from
       https://github.com/aws-samples/aws-lex-noisy-spoken-language-understanding and convert them with s3prl's
       preprocess/snips_prepare_data.sh (https://github.com/s3prl/s3prl), as SUPERB does."
[ -n "$db_root" ] || die "the corpus folder is not set.
       $where"
# Everything is checked before any work, so that a missing part is reported at once.
for needed in all.iob.snips.txt $splits; do
    if [ ! -e "$db_root/$needed" ]; then
        hint=""
        if [ -e "$db_root/SNIPS/$needed" ]; then
            hint=" (found $db_root/SNIPS/$needed: use --db_root $db_root/SNIPS)"
        fi
        die "$db_root/$needed does not exist$hint.
       $where"
    fi
done

# The distillation data's folders are checked before any work too.
distill=(../../TEMPLATE/slu1/local_librispeech_10h.sh --db_root "${librispeech:-${LIBRISPEECH:-}}" --nj "$nj")
if [ "$distill_data" = true ]; then "${distill[@]}" --check true; fi

mkdir -p data
for split in $splits; do
    log "$db_root/$split -> data/$split"
    rm -rf "data/$split.tmp"
    python -m toolkit.bin.prepare_snips --db-root "$db_root" --split "$split" --out "data/$split.tmp" --nj "$nj"
    rm -rf "data/$split"
    mv "data/$split.tmp" "data/$split"
done

# The audio headers are opened again, so a wav at another rate is caught here.
python -m toolkit.bin.validate_data_dir --data data/train data/valid data/test --sample-rate 16000 --nj "$nj"
if [ "$distill_data" = true ]; then "${distill[@]}"; fi
log "done: data/train data/valid data/test"
