#!/usr/bin/env bash
# SLURP data preparation (see db.sh): one utterance per recording.
#     data/train data/devel data/test     the real recordings (audio/slurp_real), close-talk and far-field
#     data/train_synth                    the synthetic training prompts (audio/slurp_synth); --synth false skips it
#     data/train_real_synth               data/train and data/train_synth together (only with --synth true)
# Each holds wav.scp text text.slots (`wake me up at B-time eight E-time o'clock`) utt2intent (scenario_action)
# utt2spk (metadata.json's usrid, e.g. FO-488; `synth` for train_synth) spk2utt utt2dur.
# The work is done by `python -m toolkit.bin.prepare_slurp` (one split at a time; --help for details).
# With --distill_data true (run.sh passes it) also the PAD paper's distillation data, data/librispeech_10h (a seeded
# 10 h draw of LibriSpeech train-clean-100) and data/librispeech_dev (dev-clean): see LIBRISPEECH in db.sh.
set -euo pipefail

db_root=""          # the SLURP repository folder; default: $SLURP from db.sh
synth=true          # true: also data/train_synth from train_synthetic.jsonl and audio/slurp_synth
nj=4                # threads reading the FLAC headers (durations) and checking the audio
distill_data=false  # true: also the PAD distillation data, data/librispeech_10h and data/librispeech_dev (run.sh
                    # sets it; ../../TEMPLATE/slu1/local_librispeech_10h.sh does the work)
librispeech=""      # with --distill_data true: the LibriSpeech folder; default: $LIBRISPEECH from db.sh

help_message="Usage: $0 [--db_root DIR] [--synth true|false] [--nj N]
       [--distill_data true|false] [--librispeech DIR]
  --db_root defaults to \$SLURP (db.sh): the SLURP repository folder, holding dataset/slurp/ and audio/
  --synth   also prepare data/train_synth (default: $synth)
  --nj      threads reading the FLAC headers (default: $nj)
  --distill_data true|false  also prepare the distillation data, data/librispeech_10h and data/librispeech_dev
                             (default: $distill_data; run.sh passes true)
  --librispeech DIR          defaults to \$LIBRISPEECH (db.sh): the folder holding train-clean-100/ and dev-clean/
Writes data/train, data/devel, data/test [and data/train_synth, data/train_real_synth]."
. ./db.sh
. utils/parse_options.sh
. ./path.sh

log() { echo "$(date '+%H:%M:%S') (local/data.sh) $*"; }
die() { echo "error: $*" >&2; exit 1; }

[ "$#" -eq 0 ] || die "unexpected arguments: $* (options are --name value)"
[[ "$nj" =~ ^[1-9][0-9]*$ ]] || die "--nj must be a positive number, got '$nj'"
case "$distill_data" in true|false) ;; *) die "--distill_data must be true or false, got '$distill_data'" ;; esac
case "$synth" in
    true) splits="train devel test train_synth" ;;
    false) splits="train devel test" ;;
    *) die "--synth must be true or false, got '$synth'" ;;
esac
db_root=${db_root:-$SLURP}

where="Set SLURP in $(pwd)/db.sh (or export it), or pass --db_root DIR (DIR being the clone of the SLURP repository).
       The recipe does not download: clone https://github.com/pswietojanski/slurp and extract its audio
       (https://zenodo.org/record/4274930: slurp_real.tar.gz, slurp_synth.tar.gz) into DIR/audio."
[ -n "$db_root" ] || die "the corpus folder is not set.
       $where"
# Everything is checked before any work, so that a missing part is reported at once.
needed="dataset/slurp/metadata.json dataset/slurp/train.jsonl dataset/slurp/devel.jsonl dataset/slurp/test.jsonl"
needed="$needed audio/slurp_real"
if [ "$synth" = true ]; then needed="$needed dataset/slurp/train_synthetic.jsonl audio/slurp_synth"; fi
for path in $needed; do
    if [ ! -e "$db_root/$path" ]; then
        hint=""
        if [ -e "$db_root/slurp/$path" ]; then hint=" (found $db_root/slurp/$path: use --db_root $db_root/slurp)"; fi
        die "$db_root/$path does not exist$hint.
       $where"
    fi
done

# The distillation data's folders are checked before any work too.
distill=(../../TEMPLATE/slu1/local_librispeech_10h.sh --db_root "${librispeech:-${LIBRISPEECH:-}}" --nj "$nj")
if [ "$distill_data" = true ]; then "${distill[@]}" --check true; fi

mkdir -p data
for split in $splits; do
    log "$db_root -> data/$split"
    rm -rf "data/$split.tmp"
    python -m toolkit.bin.prepare_slurp --db-root "$db_root" --split "$split" --out "data/$split.tmp" --nj "$nj"
    rm -rf "data/$split"
    mv "data/$split.tmp" "data/$split"
done

dirs=()
for split in $splits; do dirs+=("data/$split"); done
if [ "$synth" = true ]; then
    # The real and the synthetic training prompts together, for heads trained on both: run.sh --local_data_opts
    # "--synth true" --ic_sets "train_real_synth devel test" (run.sh's default trains on the real recordings only).
    log "combine data/train data/train_synth -> data/train_real_synth"
    rm -rf data/train_real_synth.tmp
    python -m toolkit.bin.combine_data_dir --data data/train data/train_synth --out data/train_real_synth.tmp
    rm -rf data/train_real_synth
    mv data/train_real_synth.tmp data/train_real_synth
fi
# The audio headers are opened again, so a file at another rate is caught here.
python -m toolkit.bin.validate_data_dir --data "${dirs[@]}" --sample-rate 16000 --nj "$nj"
if [ "$distill_data" = true ]; then "${distill[@]}"; fi
log "done: ${dirs[*]}"
