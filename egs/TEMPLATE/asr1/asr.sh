#!/usr/bin/env bash
# The shared ASR pipeline. A corpus recipe (egs/<corpus>/asr1/run.sh) sets its options and calls this script.
# The stage logic lives in Python entry points (python -m toolkit.bin.<verb>); this file only sequences them.
#
# Stages:
#   1  data preparation: local/data.sh writes data/<train,dev,test sets> (Kaldi data dirs)
#   2  speed perturbation of the training set (off unless --speed_perturb_factors is given)
#   3  format audio: mono 16-bit wav at --fs, drop utterances outside [--min_dur, --max_dur], validate
#   4  fit the speech discretizer          5  dump speech units        6  tokenizers and vocabulary
#   7  train the speech-text LM            8  decode                   9  score and update RESULTS.md
# Stages 4-9 are not part of this version yet.
#
# Every stage logs to exp/logs/stage<N>.log and records exp/.done/stage<N> with a hash of its inputs and options:
# a rerun skips a stage whose inputs and options are unchanged and redoes it otherwise.
set -euo pipefail

# ---- options (each can be given as --name value) ----
stage=1                  # first stage to run
stop_stage=3             # last stage to run
nj=2                     # parallel jobs for data preparation, perturbation and formatting
ngpu=0                   # GPUs for training and decoding (later stages)
train_set=train          # training data dir under data/
valid_set=dev            # validation data dir under data/
test_sets="test"         # space-separated evaluation data dirs under data/
local_data_opts=""       # options passed to local/data.sh
speed_perturb_factors="" # e.g. "0.9 1.0 1.1"; empty: no speed perturbation
fs=16000                 # target sample rate of stage 3
min_dur=0.1              # stage 3 drops shorter utterances (seconds)
max_dur=30               # stage 3 drops longer utterances (seconds)
dumpdir=dump             # stage outputs
expdir=exp               # models, logs, .done markers
train_config=""          # training configuration (stage 7)
tag=""                   # name of the training run under exp/ (stage 7)
max_stage=3              # the last stage this version implements

help_message="Usage: $0 [--stage N] [--stop_stage M] [--nj N] [options]
Options (defaults in brackets):
  --stage ($stage) --stop_stage ($stop_stage) --nj ($nj) --ngpu ($ngpu)
  --train_set ($train_set) --valid_set ($valid_set) --test_sets ($test_sets)
  --local_data_opts ($local_data_opts)   options for local/data.sh, e.g. \"--train_utts 2000\"
  --speed_perturb_factors ($speed_perturb_factors)   e.g. \"0.9 1.0 1.1\"
  --fs ($fs) --min_dur ($min_dur) --max_dur ($max_dur)
  --dumpdir ($dumpdir) --expdir ($expdir) --train_config ($train_config) --tag ($tag)
  --cmd_backend (local|slurm) --sbatch_options \"...\"   see cmd.sh"

. ./cmd.sh
. utils/parse_options.sh
. ./path.sh

log() { echo "$(date '+%Y-%m-%d %H:%M:%S') (asr.sh) $*"; }
die() { log "error: $*" >&2; exit 1; }

[ "$#" -eq 0 ] || die "unexpected arguments: $* (options are --name value)"
[[ "$stage" =~ ^[0-9]+$ && "$stop_stage" =~ ^[0-9]+$ ]] || die "--stage and --stop_stage must be numbers"
[[ "$nj" =~ ^[1-9][0-9]*$ ]] || die "--nj must be a positive number, got '$nj'"
if [ "$stop_stage" -gt "$max_stage" ]; then
    die "--stop_stage $stop_stage: this version implements stages 1-$max_stage (stages 4-9 are not available yet)"
fi

if [ -n "$speed_perturb_factors" ]; then
    train_sp="${train_set}_sp"
else
    train_sp="$train_set"
fi
mkdir -p "$expdir/logs" "$expdir/.done"
# Stage output goes through `tee` into a log; tell the job runner whether a terminal is watching, so that it
# redraws progress bars in place there and writes a plain line every 30 s otherwise.
if [ -t 1 ]; then export TOOLKIT_INTERACTIVE=1; fi

# run_sharded SRC DST NAME MODULE [ARGS...]: run `python -m MODULE ARGS --src <shard> --dst <part>` on --nj shards
# of data dir SRC, combine the parts into DST.tmp and only then replace DST. New audio goes to DST.tmp/wav but
# wav.scp names DST/wav, its place after the rename.
run_sharded() {
    local src=$1 dst=$2 name=$3 module=$4
    shift 4
    local tmp="${dst}.tmp"
    local num_utts jobs
    num_utts=$(wc -l < "$src/utt2spk")
    jobs=$(( nj < num_utts ? nj : num_utts ))
    rm -rf "$tmp"
    python -m toolkit.bin.split_data_dir "$src" "$jobs"
    run_jobs --nj "$jobs" --log "$tmp/log/$name.JOB.log" -- \
        python -m "$module" "$@" --src "$src/split$jobs/JOB" --dst "$tmp/parts/JOB" \
        --wav-dir "$tmp/wav" --final-wav-dir "$(pwd)/$dst/wav"
    local parts=()
    for k in $(seq 1 "$jobs"); do parts+=("$tmp/parts/$k"); done
    python -m toolkit.bin.combine_data_dir --concat dropped_utts --out "$tmp" "${parts[@]}"
    rm -rf "$tmp/parts"
    rm -rf "$dst"
    mv "$tmp" "$dst"
}

# ---- stages: stageN runs the work; stageN_io sets what the .done hash covers ----
stage1_io() {
    inputs=(local/data.sh)
    options="local_data_opts=$local_data_opts train_set=$train_set valid_set=$valid_set test_sets=$test_sets"
    outputs=(data/"$train_set" data/"$valid_set")
    for t in $test_sets; do outputs+=(data/"$t"); done
}
stage1() {
    log "data preparation: local/data.sh $local_data_opts"
    # shellcheck disable=SC2086
    local/data.sh --nj "$nj" $local_data_opts
    for dset in "$train_set" "$valid_set" $test_sets; do
        python -m toolkit.bin.validate_data_dir "data/$dset" --no-audio
    done
}

stage2_io() {
    inputs=(data/"$train_set")
    options="speed_perturb_factors=$speed_perturb_factors"
    outputs=()
    if [ -n "$speed_perturb_factors" ]; then outputs=(data/"$train_sp"); fi
}
stage2() {
    if [ -z "$speed_perturb_factors" ]; then
        log "speed perturbation is off (--speed_perturb_factors is empty); stage 3 reads data/$train_set"
        return 0
    fi
    log "speed perturbation of data/$train_set with factors $speed_perturb_factors -> data/$train_sp"
    # shellcheck disable=SC2086
    run_sharded "data/$train_set" "data/$train_sp" speed_perturb toolkit.bin.speed_perturb \
        --factors $speed_perturb_factors
}

stage3_io() {
    inputs=(data/"$train_sp" data/"$valid_set")
    outputs=("$dumpdir/raw/$train_sp" "$dumpdir/raw/$valid_set")
    for t in $test_sets; do inputs+=(data/"$t"); outputs+=("$dumpdir/raw/$t"); done
    options="fs=$fs min_dur=$min_dur max_dur=$max_dur"
}
stage3() {
    local dset
    for dset in "$train_sp" "$valid_set" $test_sets; do
        log "format data/$dset -> $dumpdir/raw/$dset (${fs} Hz, ${min_dur}-${max_dur} s)"
        # Only the training set is filtered by duration: evaluation sets are scored on every utterance.
        local limits=()
        if [ "$dset" = "$train_sp" ]; then limits=(--min-dur "$min_dur" --max-dur "$max_dur"); fi
        run_sharded "data/$dset" "$dumpdir/raw/$dset" format toolkit.bin.format_data_dir \
            --sample-rate "$fs" "${limits[@]+"${limits[@]}"}"
        python -m toolkit.bin.validate_data_dir "$dumpdir/raw/$dset" --sample-rate "$fs"
        local dropped
        dropped=$(wc -l < "$dumpdir/raw/$dset/dropped_utts")
        if [ "$dropped" -gt 0 ]; then
            log "dropped $dropped utterance(s) of $dset outside the duration limits: see $dumpdir/raw/$dset/dropped_utts"
        fi
    done
}

# ---- the driver ----
stage_name=([1]="data preparation" [2]="speed perturbation" [3]="format audio")
for n in $(seq "$stage" "$stop_stage"); do
    declare -F "stage$n" > /dev/null || die "stage $n is not implemented"
    "stage${n}_io"
    marker="$expdir/.done/stage$n"
    if python -m toolkit.bin.stage check --label "stage $n (${stage_name[$n]})" --marker "$marker" \
        --inputs "${inputs[@]+"${inputs[@]}"}" --outputs "${outputs[@]+"${outputs[@]}"}" --options "$options"; then
        continue
    fi
    logfile="$expdir/logs/stage$n.log"
    start=$(date +%s)
    # The stage runs in a subshell outside any `if`, so that `set -e` stops it at its first failing command
    # (bash ignores errexit inside a function called from a condition).
    set +e
    ( set -e; "stage$n" ) 2>&1 | tee "$logfile"
    rc=${PIPESTATUS[0]}
    set -e
    if [ "$rc" -ne 0 ]; then
        echo "" >&2
        log "stage $n (${stage_name[$n]}) FAILED; last lines of $logfile:" >&2
        python -c 'import sys; from toolkit.jobs import log_tail; from pathlib import Path; print(log_tail(Path(sys.argv[1])))' \
            "$logfile" >&2
        exit 1
    fi
    python -m toolkit.bin.stage mark --marker "$marker" --inputs "${inputs[@]+"${inputs[@]}"}" --options "$options"
    log "stage $n (${stage_name[$n]}) finished in $(( $(date +%s) - start )) s; log: $logfile"
done
log "stages $stage-$stop_stage done"
