#!/usr/bin/env bash
# SLURP data preparation (see db.sh): one utterance per recording.
#     data/train data/devel data/test     the real recordings (audio/slurp_real), close-talk and far-field
#     data/train_synth                    the synthetic training prompts (audio/slurp_synth); --synth false skips it
# Each holds wav.scp text text.slots (`wake me up at B-time eight E-time o'clock`) utt2intent (scenario_action)
# utt2spk (metadata.json's usrid, e.g. FO-488; `synth` for train_synth) spk2utt utt2dur.
# The work is done by `python -m toolkit.bin.prepare_slurp` (one split at a time; --help for details).
set -euo pipefail

db_root=""   # the SLURP repository folder; default: $SLURP from db.sh
synth=true   # true: also data/train_synth from train_synthetic.jsonl and audio/slurp_synth
nj=4         # threads reading the FLAC headers (durations) and checking the audio

help_message="Usage: $0 [--db_root DIR] [--synth true|false] [--nj N]
  --db_root defaults to \$SLURP (db.sh): the SLURP repository folder, holding dataset/slurp/ and audio/
  --synth   also prepare data/train_synth (default: $synth)
  --nj      threads reading the FLAC headers (default: $nj)
Writes data/train, data/devel, data/test [and data/train_synth]."
. ./db.sh
. utils/parse_options.sh
. ./path.sh

log() { echo "$(date '+%H:%M:%S') (local/data.sh) $*"; }
die() { echo "error: $*" >&2; exit 1; }

[ "$#" -eq 0 ] || die "unexpected arguments: $* (options are --name value)"
[[ "$nj" =~ ^[1-9][0-9]*$ ]] || die "--nj must be a positive number, got '$nj'"
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

mkdir -p data
for split in $splits; do
    log "$db_root -> data/$split"
    rm -rf "data/$split.tmp"
    python -m toolkit.bin.prepare_slurp --db_root "$db_root" --split "$split" --out "data/$split.tmp" --nj "$nj"
    rm -rf "data/$split"
    mv "data/$split.tmp" "data/$split"
done

dirs=()
for split in $splits; do dirs+=("data/$split"); done
# `python -m toolkit.bin.validate_data_dir data/<split> --sample-rate 16000` for each, in one process (its import
# is slow); the audio headers are opened again, so a file at another rate is caught here.
python -c 'import sys; from toolkit.bin.validate_data_dir import main
nj = sys.argv[1]
sys.exit(max([main([d, "--sample-rate", "16000", "--nj", nj]) for d in sys.argv[2:]]))' "$nj" "${dirs[@]}"
log "done: ${dirs[*]}"
