#!/usr/bin/env bash
# The shared ASR pipeline. A corpus recipe (egs/<corpus>/asr1/run.sh) sets its options and calls this script.
# The stage logic lives in Python entry points (python -m toolkit.bin.<verb>); this file only sequences them.
#
# Stages:
#   1  data preparation: local/data.sh writes data/<train,dev,test sets> (Kaldi data dirs)
#   2  speed perturbation of the training set (off unless --speed_perturb_factors is given)
#   3  format audio: mono 16-bit wav at --fs (or FLAC kept as is), drop utterances outside [--min_dur, --max_dur], validate
#   4  fit the speech discretizer (--discretizer, conf/discretizer/<name>.yaml) on the training set; first, when
#      --upstream_trainer is given, train the model it reads (HuBERT pretraining, a codec) into --upstream_dir
#   5  dump speech units of every set: dump/units/<discretizer>/<set>/units, and unit_report.{txt,json} beside them
#   6  text tokenizer, unit post-processing/subwords and the vocabulary layout; token ids of every set
#   7  train the decoder-only speech-text LM (--train_config), checkpoints and resume in exp/<tag>
#   8  decode dev and test sets (--decode_config): exp/<tag>/<decode dir>/<set>/text, where the decode dir is named
#      after the config (conf/decode.yaml: decode, conf/decode_beam8.yaml: decode_beam8, conf/x.yaml: decode_x), so
#      the results of several decoding configs stand side by side
#   9  score (WER, CER; sclite-style reports) and write exp/RESULTS.md (the recipe's RESULTS.md is curated by hand)
#  10  pack the model: exp/<tag>/model, one self-contained folder for python -m toolkit.bin.transcribe
#
# Every stage logs to exp/logs/stage<N>.log (stages 4-6: stage<N>.<discretizer>.log, 7-9: stage<N>.<tag>.log) and
# records exp/.done/stage<N>[...] with a hash of its inputs and options: a rerun skips a stage whose inputs and
# options are unchanged and redoes it otherwise.
set -euo pipefail

# ---- options (each can be given as --name value) ----
stage=1                  # first stage to run
stop_stage=10            # last stage to run
nj=2                     # parallel jobs for data preparation, perturbation and formatting
ngpu=0                   # GPUs for unit dumping (stage 5), training and decoding
num_nodes=1              # nodes for training (> 1: through Slurm, srun and torchrun; --ngpu GPUs on each)
train_set=train          # training data dir under data/
valid_set=dev            # validation data dir under data/
test_sets="test"         # space-separated evaluation data dirs under data/
local_data_opts=""       # options passed to local/data.sh
speed_perturb_factors="" # e.g. "0.9 1.0 1.1"; empty: no speed perturbation
fs=16000                 # target sample rate of stage 3
min_dur=0.1              # stage 3 drops shorter utterances (seconds)
channel=""               # multi-channel audio: the channel to keep (0-based); empty: refuse multi-channel audio
max_dur=30               # stage 3 drops longer utterances (seconds)
dumpdir=dump             # stage outputs
expdir=exp               # models, logs, .done markers
discretizer=mfcc_kmeans  # conf/discretizer/<discretizer>.yaml (stages 4-5)
discretizer_config=""    # default: conf/discretizer/$discretizer.yaml
discretizer_fit_perturbed=true  # false: stage 4 fits on the original utterances only, not their speed-perturbed copies
upstream_trainer=""      # stage 4 trains the discretizer's model first: toolkit.bin.pretrain_hubert | toolkit.bin.train_codec
upstream_config=""       # its config, e.g. conf/upstream/hubert.yaml
upstream_dir=""          # its output folder; the discretizer config names <upstream_dir>/model
upstream_args=""         # extra options for the upstream trainer, e.g. "--threads 2"
tokenizer_config=conf/tokenizer.yaml   # stage 6
train_config=conf/train_sld.yaml       # stage 7
train_args=""            # extra options for toolkit.bin.train, e.g. "--set optim.lr=5e-4"
decode_config=conf/decode.yaml         # stage 8
tag=""                   # name of the training run under exp/ (default: <train config>_<discretizer>)
inference_nj=1           # parallel decoding jobs
max_stage=10             # the last stage this version implements
dry_run=false            # true: print what each stage would run (status, inputs, outputs, commands); run nothing

# --help (utils/parse_options.sh) calls this after every option is parsed: the values shown are the recipe's.
usage() {
    cat <<EOF
Usage: $0 [--stage N] [--stop_stage M] [--nj N] [options]
Options (values in brackets: this recipe's, after its run.sh and any options given before --help):
  --stage ($stage) --stop_stage ($stop_stage) --nj ($nj) --ngpu ($ngpu) --num_nodes ($num_nodes)
  --train_set ($train_set) --valid_set ($valid_set) --test_sets ($test_sets)
  --local_data_opts ($local_data_opts)   options for local/data.sh, e.g. "--train_utts 2000"
  --speed_perturb_factors ($speed_perturb_factors)   e.g. "0.9 1.0 1.1"
  --fs ($fs) --min_dur ($min_dur) --max_dur ($max_dur) --channel (none)   channel of multi-channel audio to keep
  --dumpdir ($dumpdir) --expdir ($expdir)
  --discretizer ($discretizer) --discretizer_config (conf/discretizer/<discretizer>.yaml)
  --upstream_trainer (none) --upstream_config --upstream_dir --upstream_args "..."   model trained in stage 4
  --tokenizer_config ($tokenizer_config) --train_config ($train_config) --train_args "..."
  --decode_config ($decode_config) --tag (<train config>_<discretizer>) --inference_nj ($inference_nj)
  --dry_run (false|true)   print what each stage would run; nothing is executed or written
  --cmd_backend (local|slurm) --sbatch_options "..."   see cmd.sh

Stages:
$(sed -n '/^# Stages:/,/^#$/p' "${BASH_SOURCE[0]}" | sed '1d;$d;s/^#//')
EOF
}

command_line=""  # for the model card (stage 10), quoted as typed
if [ "$#" -gt 0 ]; then command_line=$(printf "%q " "$@"); fi
. ./cmd.sh
. utils/parse_options.sh
. ./path.sh
. utils/pipeline.sh

log() { echo "$(date '+%Y-%m-%d %H:%M:%S') (asr.sh) $*"; }
die() { log "error: $*" >&2; exit 1; }

[ "$#" -eq 0 ] || die "unexpected arguments: $* (options are --name value)"
[[ "$stage" =~ ^[0-9]+$ && "$stop_stage" =~ ^[0-9]+$ ]] || die "--stage and --stop_stage must be numbers"
[[ "$nj" =~ ^[1-9][0-9]*$ ]] || die "--nj must be a positive number, got '$nj'"
[[ "$num_nodes" =~ ^[1-9][0-9]*$ ]] || die "--num_nodes must be a positive number, got '$num_nodes'"
if [ "$stop_stage" -gt "$max_stage" ]; then
    die "--stop_stage $stop_stage: the pipeline has stages 1-$max_stage"
fi

if [ -n "$speed_perturb_factors" ]; then
    train_sp="${train_set}_sp"
else
    train_sp="$train_set"
fi
discretizer_config=${discretizer_config:-conf/discretizer/$discretizer.yaml}
if [ -z "$tag" ]; then tag="$(basename "${train_config%.*}")_${discretizer}"; fi
units_dir="$dumpdir/units/$discretizer"
decode_name=$(basename "${decode_config%.*}")
case $decode_name in decode*) decode_dir=$decode_name ;; *) decode_dir=decode_$decode_name ;; esac
tokens_dir="$dumpdir/tokens/$discretizer"
tokenizer_dir="$expdir/tokenizers/$discretizer"
all_sets="$train_sp $valid_set $test_sets"
[[ "$channel" =~ ^[0-9]*$ ]] || die "--channel must be a channel number (0-based), got '$channel'"
[[ "$dry_run" =~ ^(true|false)$ ]] || die "--dry_run must be true or false, got '$dry_run'"
[[ "$discretizer_fit_perturbed" =~ ^(true|false)$ ]] || \
    die "--discretizer_fit_perturbed must be true or false, got '$discretizer_fit_perturbed'"
if [ "$dry_run" = false ]; then mkdir -p "$expdir/logs" "$expdir/.done"; fi
# Stage output goes through `tee` into a log; tell the job runner whether a terminal is watching, so that it
# redraws progress bars in place there and writes a plain line every 30 s otherwise.
if [ -t 1 ]; then export TOOLKIT_INTERACTIVE=1; fi

# ---- stages: stageN runs the work; stageN_io sets what the .done hash covers ----
stage1_io() {
    inputs=(local)  # every script in local/, not only data.sh; the audio it finds is covered by the outputs' hash
    options="local_data_opts=$local_data_opts train_set=$train_set valid_set=$valid_set test_sets=$test_sets"
    outputs=(data/"$train_set" data/"$valid_set")
    for t in $test_sets; do outputs+=(data/"$t"); done
}
stage1() {
    log "data preparation: local/data.sh $local_data_opts"
    # shellcheck disable=SC2086
    local/data.sh --nj "$nj" $local_data_opts
    for dset in "$train_set" "$valid_set" $test_sets; do
        python -m toolkit.bin.validate_data_dir --data "data/$dset" --no-audio
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
    options="fs=$fs min_dur=$min_dur max_dur=$max_dur channel=$channel"
}
stage3() {
    local dset
    for dset in "$train_sp" "$valid_set" $test_sets; do
        log "format data/$dset -> $dumpdir/raw/$dset (${fs} Hz, ${min_dur}-${max_dur} s)"
        # Only the training set is filtered by duration: evaluation sets are scored on every utterance.
        local limits=()
        if [ "$dset" = "$train_sp" ]; then limits=(--min-dur "$min_dur" --max-dur "$max_dur"); fi
        run_sharded "data/$dset" "$dumpdir/raw/$dset" format toolkit.bin.format_data_dir \
            --sample-rate "$fs" "${limits[@]+"${limits[@]}"}" ${channel:+--channel "$channel"}
        python -m toolkit.bin.validate_data_dir --data "$dumpdir/raw/$dset" --sample-rate "$fs"
        local dropped
        dropped=$(wc -l < "$dumpdir/raw/$dset/dropped_utts")
        if [ "$dropped" -gt 0 ]; then
            log "dropped $dropped utterance(s) of $dset outside the duration limits: see $dumpdir/raw/$dset/dropped_utts"
        fi
    done
}

stage4_io() {
    inputs=("$dumpdir/raw/$train_sp" "$discretizer_config")
    outputs=("$expdir/discretizer/$discretizer")
    if [ -n "$upstream_trainer" ]; then inputs+=("$upstream_config"); outputs+=("$upstream_dir/model"); fi
    options="discretizer=$discretizer upstream_trainer=$upstream_trainer upstream_dir=$upstream_dir"
    options+=" discretizer_fit_perturbed=$discretizer_fit_perturbed"
}
stage4() {
    if [ -n "$upstream_trainer" ]; then
        [ -n "$upstream_config" ] && [ -n "$upstream_dir" ] || die "--upstream_trainer needs --upstream_config and --upstream_dir"
        # Resumable like stage 7: rerunning after a crash continues from the last checkpoint.
        log "train the discretizer's model: $upstream_trainer --config $upstream_config -> $upstream_dir"
        # shellcheck disable=SC2086
        python -m "$upstream_trainer" --config "$upstream_config" --train "$dumpdir/raw/$train_sp" \
            --valid "$dumpdir/raw/$valid_set" --out "$upstream_dir" $upstream_args
    fi
    local fit_data="$dumpdir/raw/$train_sp"
    if [ -n "$speed_perturb_factors" ] && [ "$discretizer_fit_perturbed" = false ]; then
        # Perturbed copies have ids and speakers prefixed sp<factor>- (stage 2): keep the speakers without one.
        fit_data="$dumpdir/raw/${train_set}_unperturbed"
        python -m toolkit.bin.subset_by_label --data "$dumpdir/raw/$train_sp" --out "$fit_data" --table utt2spk \
            --exclude '^sp[0-9.]+-'
    fi
    log "fit $discretizer on $fit_data -> $expdir/discretizer/$discretizer"
    rm -rf "$expdir/discretizer/$discretizer.tmp"
    python -m toolkit.bin.fit_discretizer --config "$discretizer_config" --data "$fit_data" \
        --out "$expdir/discretizer/$discretizer.tmp"
    rm -rf "$expdir/discretizer/$discretizer"
    mv "$expdir/discretizer/$discretizer.tmp" "$expdir/discretizer/$discretizer"
}

stage5_io() {
    inputs=("$expdir/discretizer/$discretizer")
    outputs=()
    for dset in $all_sets; do inputs+=("$dumpdir/raw/$dset"); outputs+=("$units_dir/$dset/units"); done
    options="nj-independent"
}
stage5() {
    local dset jobs num_utts
    # With GPUs each job runs the SSL/codec model on its own GPU (run_jobs --gpus: job k sees GPU (k-1) mod ngpu).
    local device_args=(--device cpu) gpu_args=()
    if [ "$ngpu" -gt 0 ]; then device_args=(--device cuda); gpu_args=(--gpus "$ngpu"); fi
    for dset in $all_sets; do
        log "dump $discretizer units of $dumpdir/raw/$dset -> $units_dir/$dset/units"
        num_utts=$(wc -l < "$dumpdir/raw/$dset/utt2spk")
        jobs=$(( nj < num_utts ? nj : num_utts ))
        python -m toolkit.bin.split_data_dir --data "$dumpdir/raw/$dset" --num-shards "$jobs"
        # Written into <set>.tmp and renamed when complete: a failure leaves the previous units in place.
        local tmp="$units_dir/$dset.tmp"
        rm -rf "$tmp"
        mkdir -p "$tmp"
        run_jobs --nj "$jobs" --log "$tmp/log/dump.JOB.log" ${gpu_args[@]+"${gpu_args[@]}"} -- \
            python -m toolkit.bin.dump_units --discretizer "$expdir/discretizer/$discretizer" \
            --data "$dumpdir/raw/$dset/split$jobs/JOB" --out "$tmp/units.JOB" ${device_args[@]+"${device_args[@]}"}
        cat $(for k in $(seq 1 "$jobs"); do echo "$tmp/units.$k"; done) | LC_ALL=C sort > "$tmp/units"
        rm -f "$tmp"/units.[0-9]*
        # Unit quality next to the units: usage, bitrate and, where the corpus has phone alignments, PNMI.
        local ali=()
        if [ -f "$dumpdir/raw/$dset/phone_ali" ]; then ali=(--phone-ali "$dumpdir/raw/$dset/phone_ali"); fi
        python -m toolkit.bin.unit_report --units "$tmp/units" --discretizer "$expdir/discretizer/$discretizer" \
            --utt2dur "$dumpdir/raw/$dset/utt2dur" "${ali[@]+"${ali[@]}"}" --out "$tmp" > /dev/null
        rm -rf "$units_dir/$dset"
        mv "$tmp" "$units_dir/$dset"
    done
    log "unit report of $test_sets: $(grep -h '^phones\|^bitrate' "$units_dir/${test_sets%% *}/unit_report.txt" | tr -s ' ' | paste -sd ';')"
}

stage6_io() {
    inputs=("$tokenizer_config" "$units_dir/$train_sp/units" "$dumpdir/raw/$train_sp/text")
    outputs=("$tokenizer_dir/vocab.json")
    for dset in $all_sets; do inputs+=("$units_dir/$dset/units"); outputs+=("$tokens_dir/$dset/speech"); done
    options=""
}
stage6() {
    log "tokenizers from $dumpdir/raw/$train_sp/text and $units_dir/$train_sp/units -> $tokenizer_dir"
    rm -rf "$tokenizer_dir.tmp"
    python -m toolkit.bin.train_tokenizers --config "$tokenizer_config" --text "$dumpdir/raw/$train_sp/text" \
        --units "$units_dir/$train_sp/units" --out "$tokenizer_dir.tmp"
    rm -rf "$tokenizer_dir"
    mv "$tokenizer_dir.tmp" "$tokenizer_dir"
    local dset
    for dset in $all_sets; do
        python -m toolkit.bin.make_sequences --tokenizers "$tokenizer_dir" --units "$units_dir/$dset/units" \
            --text "$dumpdir/raw/$dset/text" --out "$tokens_dir/$dset"
    done
}

stage7_io() {
    inputs=("$train_config" "$tokenizer_dir/vocab.json" "$tokens_dir/$train_sp" "$tokens_dir/$valid_set")
    outputs=("$expdir/$tag/best")
    options="train_args=$train_args ngpu=$ngpu"
}
stage7() {
    log "train $expdir/$tag with $train_config (rerun the same command to resume after a crash)"
    local launcher=(python -m toolkit.bin.train)
    # Several GPUs or nodes: DDP ranks started by toolkit.bin.launch (one node: no rendezvous port on the network;
    # several: srun and torchrun, inside or as a Slurm allocation).
    if [ "$ngpu" -gt 1 ] || [ "$num_nodes" -gt 1 ]; then
        launcher=(python -m toolkit.bin.launch --nproc "$(( ngpu > 1 ? ngpu : 1 ))" --nnodes "$num_nodes"
            --srun-options "$sbatch_options" -- -m toolkit.bin.train)
    fi
    local device=cpu
    if [ "$ngpu" -gt 0 ]; then device=cuda; fi
    # shellcheck disable=SC2086
    "${launcher[@]}" --config "$train_config" --train "$tokens_dir/$train_sp" --valid "$tokens_dir/$valid_set" \
        --tokenizers "$tokenizer_dir" --out "$expdir/$tag" --device "$device" $train_args
}

stage8_io() {
    inputs=("$decode_config" "$expdir/$tag/best")
    outputs=()
    for dset in $valid_set $test_sets; do outputs+=("$expdir/$tag/$decode_dir/$dset/text"); done
    options="inference_nj=$inference_nj"
}
stage8() {
    local dset device=cpu gpu_args=()
    # With GPUs each decoding job gets its own (run_jobs --gpus), so --inference_nj N decodes on N GPUs at once.
    if [ "$ngpu" -gt 0 ]; then device=cuda; gpu_args=(--gpus "$ngpu"); fi
    for dset in $valid_set $test_sets; do
        local out="$expdir/$tag/$decode_dir/$dset"
        log "decode $tokens_dir/$dset with $expdir/$tag/best -> $out"
        # Written into <set>.tmp and renamed when complete: a failure (a bad decode config included) leaves the
        # previous hypotheses and scores in place.
        local tmp="$out.tmp"
        rm -rf "$tmp"
        mkdir -p "$tmp"
        run_jobs --nj "$inference_nj" --log "$tmp/log/decode.JOB.log" ${gpu_args[@]+"${gpu_args[@]}"} -- \
            python -m toolkit.bin.decode --exp "$expdir/$tag" --tokens "$tokens_dir/$dset" --config "$decode_config" \
            --out "$tmp" --shard JOB --num-shards "$inference_nj" --device "$device"
        if [ "$inference_nj" -gt 1 ]; then
            cat $(for k in $(seq 1 "$inference_nj"); do echo "$tmp/text.$k"; done) | LC_ALL=C sort > "$tmp/text"
            rm -f "$tmp"/text.[0-9]*
        fi
        rm -rf "$out"
        mv "$tmp" "$out"
    done
}

stage9_io() {
    inputs=()
    outputs=("$expdir/RESULTS.md")
    for dset in $valid_set $test_sets; do inputs+=("$expdir/$tag/$decode_dir/$dset/text"); done
    options="tag=$tag"
}
stage9() {
    local dset
    for dset in $valid_set $test_sets; do
        python -m toolkit.bin.score_asr --ref "$dumpdir/raw/$dset/text" --hyp "$expdir/$tag/$decode_dir/$dset/text" \
            --utt2spk "$dumpdir/raw/$dset/utt2spk" --out "$expdir/$tag/$decode_dir/$dset"
    done
    # The run's own report: the recipe's RESULTS.md holds curated, published numbers and is never rewritten here.
    python -m toolkit.bin.make_results --exp "$expdir" --out "$expdir/RESULTS.md"
    log "results: $(pwd)/$expdir/RESULTS.md"
}

stage10_io() {
    inputs=("$expdir/$tag/best" "$expdir/$tag/config.yaml" "$expdir/discretizer/$discretizer" "$decode_config")
    for dset in $valid_set $test_sets; do inputs+=("$expdir/$tag/$decode_dir/$dset/score.json"); done
    outputs=("$expdir/$tag/model")
    options=""
}
stage10() {
    log "pack $expdir/$tag with $expdir/discretizer/$discretizer -> $expdir/$tag/model"
    python -m toolkit.bin.pack_model --exp "$expdir/$tag" --discretizer "$expdir/discretizer/$discretizer" \
        --decode-config "$decode_config" --out "$expdir/$tag/model" --command "$(basename "$0") $command_line"
    log "transcribe audio with: python -m toolkit.bin.transcribe --model $expdir/$tag/model <file.wav>"
}

# ---- the driver ----
stage_name=([1]="data preparation" [2]="speed perturbation" [3]="format audio" [4]="fit discretizer"
    [5]="dump units" [6]="tokenizers" [7]="training" [8]="decoding" [9]="scoring" [10]="packing")
stage_marker() {
    # Stages 4-6 are per discretizer and 7-9 per training run, so switching between them never redoes work.
    case $1 in
        4|5|6) echo "$expdir/.done/stage$1.$discretizer" ;;
        7|10) echo "$expdir/.done/stage$1.$tag" ;;
        8|9) echo "$expdir/.done/stage$1.$tag.$decode_dir" ;;
        *) echo "$expdir/.done/stage$1" ;;
    esac
}
run_stages
