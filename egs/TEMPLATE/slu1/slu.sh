#!/usr/bin/env bash
# The shared SLU pipeline of PAD: distil a text teacher into a speech SSL model, then measure the distilled model on
# SUPERB-style downstream tasks (a frozen upstream, a learnable weighted sum of its layers, a small head).
# A corpus recipe (egs/<corpus>/slu1/run.sh) sets its options and calls this script; the stage logic lives in Python
# entry points (python -m toolkit.bin.<verb>) and this file only sequences them.
#
# Stages:
#   1  data preparation: local/data.sh writes the paired distillation set and every task's sets under data/
#   2  format audio: mono 16-bit wav at --fs (or FLAC kept as is) under dump/raw/<set>, validated; training sets
#      lose utterances outside [--min_dur, --max_dur]
#   3  upstream: with --upstream_trainer, train the speech SSL model (HuBERT pretraining) into --upstream_dir;
#      otherwise --upstream names a hub model or folder and this stage only checks that it loads
#   4  distillation (--distill_config, conf/distill/<method>.yaml) of the teacher into the upstream:
#      exp/distill/<tag>/model; --distill_config none skips it (the "no distillation" baseline)
#   5  downstream training, one head per task of --tasks (conf/downstream/<task>.yaml): exp/<task>_<tag>/head.pt
#   6  inference on every task's dev and test sets: exp/<task>_<tag>/eval/<set>/hyp.<label table>
#   7  scoring (exp/<task>_<tag>/eval/<set>/score.json) and exp/RESULTS.md (the recipe's RESULTS.md is curated by hand)
#   8  pack the upstream and every task's head: exp/slu_<tag>/model, one folder for python -m toolkit.bin.understand
#
# Tasks (--tasks) and their sets (--<task>_sets "train dev test [test2 ...]", data dirs under data/):
#   ic  intent classification, labels in utt2intent ('|'-joined fields for FSC-style intents)
#   sf  slot filling, text.slots (transcripts with B-<type> ... E-<type> tags)
#   er  emotion recognition, utt2emotion
#
# Every stage logs to exp/logs/stage<N>[.<tag>].log and records exp/.done/stage<N>[.<tag>] with a hash of its
# inputs and options: a rerun skips a stage whose inputs and options are unchanged, and a crashed training resumes.
set -euo pipefail

# ---- options (each can be given as --name value) ----
stage=1                  # first stage to run
stop_stage=8             # last stage to run
nj=2                     # parallel jobs for data preparation and formatting
ngpu=0                   # 0: CPU; >= 1: training and inference on CUDA; > 1: distillation and heads under torchrun (DDP)
num_nodes=1              # nodes for training (> 1: through Slurm, srun and torchrun; --ngpu GPUs on each)
local_data_opts=""       # options passed to local/data.sh
tasks="ic sf"            # downstream tasks: ic sf er
ic_sets="ic_train ic_dev ic_test"   # train, dev, then test sets of each task
sf_sets="sf_train sf_dev sf_test"
er_sets="er_train er_dev er_test"
distill_set=paired       # paired speech/transcripts for distillation (wav.scp + text); "" with --distill_config none
distill_valid=""         # its dev set (empty: the distiller holds out part of distill_set)
pretrain_set=train       # stage 3 with --upstream_trainer: its training and dev sets
pretrain_valid=dev
fs=16000                 # sample rate of stage 2
min_dur=0.3              # stage 2 drops shorter training utterances (seconds)
channel=""               # multi-channel audio: the channel to keep (0-based); empty: refuse multi-channel audio
max_dur=30               # stage 2 drops longer training utterances (seconds)
dumpdir=dump
expdir=exp
upstream=""              # the speech SSL model: hub name or folder (when no --upstream_trainer)
upstream_trainer=""      # stage 3 trains the upstream: toolkit.bin.pretrain_hubert
upstream_config=""       # its config, e.g. conf/upstream/hubert.yaml
upstream_dir=""          # its output folder; the model is <upstream_dir>/model
upstream_args=""         # extra options for the upstream trainer, e.g. "--threads 2"
teacher=""               # text teacher (hub name, folder or packaged model); empty: the distill config's
distill_config=conf/distill/pad_slocal.yaml   # or "none": no distillation
distill_args=""          # extra options for toolkit.bin.distill, e.g. "--set seed=2 --threads 2"
downstream_conf_dir=conf/downstream           # <dir>/<task>.yaml
downstream_args=""       # extra options for toolkit.bin.train_downstream, e.g. "--set seed=2"
tag=""                   # run name (default: the distill config's name, or "none")
max_stage=8
dry_run=false            # true: print what each stage would run (status, inputs, outputs, commands); run nothing

# --help (utils/parse_options.sh) calls this after every option is parsed: the values shown are the recipe's.
usage() {
    cat <<EOF
Usage: $0 [--stage N] [--stop_stage M] [options]
Options (values in brackets: this recipe's, after its run.sh and any options given before --help):
  --stage ($stage) --stop_stage ($stop_stage) --nj ($nj) --ngpu ($ngpu) --num_nodes ($num_nodes) --local_data_opts "..."
  --tasks ($tasks) --ic_sets ($ic_sets) --sf_sets ($sf_sets) --er_sets ($er_sets)
  --distill_set ($distill_set) --distill_valid ($distill_valid) --pretrain_set ($pretrain_set) --pretrain_valid ($pretrain_valid)
  --fs ($fs) --min_dur ($min_dur) --max_dur ($max_dur) --dumpdir ($dumpdir) --expdir ($expdir)
  --channel (none)   the channel of multi-channel audio to keep (0-based)
  --upstream (hub name or folder) | --upstream_trainer --upstream_config --upstream_dir --upstream_args "..."
  --teacher (config's) --distill_config ($distill_config | none) --distill_args "..."
  --downstream_conf_dir ($downstream_conf_dir) --downstream_args "..." --tag (<distill config name>)
  --dry_run (false|true)   print what each stage would run; nothing is executed or written
  --cmd_backend (local|slurm) --sbatch_options "..."   see cmd.sh

Stages:
$(sed -n '/^# Stages:/,/^#$/p' "${BASH_SOURCE[0]}" | sed '1d;$d;s/^#//')
EOF
}

command_line=""  # for the model card (stage 8), quoted as typed
if [ "$#" -gt 0 ]; then command_line=$(printf "%q " "$@"); fi
. ./cmd.sh
. utils/parse_options.sh
. ./path.sh
. utils/pipeline.sh

log() { echo "$(date '+%Y-%m-%d %H:%M:%S') (slu.sh) $*"; }
die() { log "error: $*" >&2; exit 1; }

[ "$#" -eq 0 ] || die "unexpected arguments: $* (options are --name value)"
[[ "$stage" =~ ^[0-9]+$ && "$stop_stage" =~ ^[0-9]+$ ]] || die "--stage and --stop_stage must be numbers"
[[ "$nj" =~ ^[1-9][0-9]*$ ]] || die "--nj must be a positive number, got '$nj'"
[[ "$num_nodes" =~ ^[1-9][0-9]*$ ]] || die "--num_nodes must be a positive number, got '$num_nodes'"
[[ "$ngpu" =~ ^[0-9]+$ ]] || die "--ngpu must be a number, got '$ngpu'"
[ "$stop_stage" -le "$max_stage" ] || die "--stop_stage $stop_stage: the pipeline has stages 1-$max_stage"
for task in $tasks; do
    case "$task" in
        ic|sf|er) ;;
        *) die "--tasks: unknown task '$task' (ic, sf, er)" ;;
    esac
    sets_var="${task}_sets"
    read -r -a task_sets <<< "${!sets_var}"
    [ "${#task_sets[@]}" -ge 3 ] || die "--${task}_sets needs a train, a dev and at least one test set, got '${!sets_var}'"
done
if [ -n "$upstream_trainer" ]; then
    [ -n "$upstream_config" ] && [ -n "$upstream_dir" ] || die "--upstream_trainer needs --upstream_config and --upstream_dir"
    upstream_model="$upstream_dir/model"
else
    [ -n "$upstream" ] || die "give --upstream (a hub name or folder) or --upstream_trainer"
    upstream_model="$upstream"
fi
if [ -z "$tag" ]; then
    if [ "$distill_config" = none ]; then tag=none; else tag=$(basename "${distill_config%.*}"); fi
fi
if [ "$distill_config" != none ] && [ -z "$distill_set" ]; then
    die "--distill_config $distill_config needs --distill_set (the paired data); only --distill_config none runs without"
fi
if [ "$distill_config" = none ]; then
    student_model="$upstream_model"
else
    student_model="$expdir/distill/$tag/model"
fi
device=cpu
if [ "$ngpu" -gt 0 ]; then device=cuda; fi

# Every data set the pipeline reads, each once: the paired set, the pretraining sets, every task's sets.
all_sets=$(
    {
        echo "$distill_set" "$distill_valid"
        if [ -n "$upstream_trainer" ]; then echo "$pretrain_set" "$pretrain_valid"; fi
        for task in $tasks; do v="${task}_sets"; echo "${!v}"; done
    } | tr ' ' '\n' | awk 'NF && !seen[$0]++'
)
train_sets=$(
    {
        echo "$distill_set" "$pretrain_set"
        for task in $tasks; do v="${task}_sets"; echo "${!v}" | awk '{print $1}'; done
    } | tr ' ' '\n' | awk 'NF && !seen[$0]++'
)
label_table() {
    case $1 in ic) echo utt2intent ;; sf) echo text.slots ;; er) echo utt2emotion ;; esac
}
task_sets() { local v="${1}_sets"; echo "${!v}"; }
[[ "$channel" =~ ^[0-9]*$ ]] || die "--channel must be a channel number (0-based), got '$channel'"
[[ "$dry_run" =~ ^(true|false)$ ]] || die "--dry_run must be true or false, got '$dry_run'"
if [ "$dry_run" = false ]; then mkdir -p "$expdir/logs" "$expdir/.done"; fi
if [ -t 1 ]; then export TOOLKIT_INTERACTIVE=1; fi

# ---- stages: stageN runs the work; stageN_io sets what the .done hash covers ----
stage1_io() {
    inputs=(local)  # every script in local/, not only data.sh; the audio it finds is covered by the outputs' hash
    options="local_data_opts=$local_data_opts sets=$(echo $all_sets)"
    outputs=()
    for dset in $all_sets; do outputs+=(data/"$dset"); done
}
stage1() {
    log "data preparation: local/data.sh $local_data_opts"
    # shellcheck disable=SC2086
    local/data.sh --nj "$nj" $local_data_opts
    local dset
    for dset in $all_sets; do
        [ -d "data/$dset" ] || die "local/data.sh did not write data/$dset"
        python -m toolkit.bin.validate_data_dir --data "data/$dset" --no-audio
    done
}

stage2_io() {
    inputs=()
    outputs=()
    for dset in $all_sets; do inputs+=(data/"$dset"); outputs+=("$dumpdir/raw/$dset"); done
    options="fs=$fs min_dur=$min_dur max_dur=$max_dur channel=$channel train_sets=$(echo $train_sets)"
}
stage2() {
    local dset
    for dset in $all_sets; do
        local limits=()
        # Evaluation sets keep every utterance: they are scored on all of them.
        if echo "$train_sets" | grep -qx "$dset"; then limits=(--min-dur "$min_dur" --max-dur "$max_dur"); fi
        log "format data/$dset -> $dumpdir/raw/$dset (${fs} Hz${limits[*]:+, $min_dur-$max_dur s})"
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

stage3_io() {
    inputs=()
    outputs=()
    options="upstream=$upstream upstream_trainer=$upstream_trainer upstream_dir=$upstream_dir"
    if [ -n "$upstream_trainer" ]; then
        inputs=("$upstream_config" "$dumpdir/raw/$pretrain_set" "$dumpdir/raw/$pretrain_valid")
        outputs=("$upstream_model")
    fi
}
stage3() {
    if [ -n "$upstream_trainer" ]; then
        # Resumable: rerunning after a crash continues from the last checkpoint.
        log "train the upstream: $upstream_trainer --config $upstream_config -> $upstream_dir"
        # shellcheck disable=SC2086
        python -m "$upstream_trainer" --config "$upstream_config" --train "$dumpdir/raw/$pretrain_set" \
            --valid "$dumpdir/raw/$pretrain_valid" --out "$upstream_dir" --device "$device" $upstream_args
    else
        log "upstream $upstream_model (not trained here); checking that it loads"
        python -c 'import sys; from toolkit.models.downstream import Upstream; u = Upstream(sys.argv[1]); print(f"{u.name}: {u.num_layers} hidden states of {u.dim} dims, {u.frame_rate:g} frames/s")' \
            "$upstream_model"
    fi
}

stage4_io() {
    inputs=()
    outputs=()
    if [ -n "$distill_set" ]; then inputs+=("$dumpdir/raw/$distill_set"); fi
    options="distill_config=$distill_config teacher=$teacher distill_args=$distill_args student=$upstream_model"
    if [ "$distill_config" != none ]; then inputs+=("$distill_config"); outputs=("$student_model"); fi
    if [ -n "$distill_valid" ]; then inputs+=("$dumpdir/raw/$distill_valid"); fi
    if [ -e "$upstream_model" ]; then inputs+=("$upstream_model"); fi
}
stage4() {
    if [ "$distill_config" = none ]; then
        log "no distillation (--distill_config none): the downstream tasks read $upstream_model itself"
        return 0
    fi
    local extra=(--set "student=$upstream_model")
    if [ -n "$teacher" ]; then extra+=(--set "teacher=$teacher"); fi
    if [ -n "$distill_valid" ]; then extra+=(--valid "$dumpdir/raw/$distill_valid"); fi
    log "distil with $distill_config into $expdir/distill/$tag (rerun the same command to resume after a crash)"
    local launcher=(python -m toolkit.bin.distill)
    # Several GPUs or nodes: DDP ranks started by toolkit.bin.launch (one node: no rendezvous port on the network;
    # several: srun and torchrun, inside or as a Slurm allocation).
    if [ "$ngpu" -gt 1 ] || [ "$num_nodes" -gt 1 ]; then
        launcher=(python -m toolkit.bin.launch --nproc "$(( ngpu > 1 ? ngpu : 1 ))" --nnodes "$num_nodes"
            --srun-options "$sbatch_options" -- -m toolkit.bin.distill)
    fi
    # shellcheck disable=SC2086
    "${launcher[@]}" --config "$distill_config" --data "$dumpdir/raw/$distill_set" \
        --out "$expdir/distill/$tag" --device "$device" "${extra[@]}" $distill_args
}

stage5_io() {
    inputs=()
    outputs=()
    if [ -e "$student_model" ]; then inputs+=("$student_model"); fi
    local task sets
    for task in $tasks; do
        read -r -a sets <<< "$(task_sets "$task")"
        inputs+=("$downstream_conf_dir/$task.yaml" "$dumpdir/raw/${sets[0]}" "$dumpdir/raw/${sets[1]}")
        outputs+=("$expdir/${task}_${tag}/head.pt")
    done
    options="tasks=$tasks downstream_args=$downstream_args student=$student_model"
}
stage5() {
    local task sets
    local launcher=(python -m toolkit.bin.train_downstream)
    # Several GPUs or nodes: DDP ranks started by toolkit.bin.launch (one node: no rendezvous port on the network;
    # several: srun and torchrun, inside or as a Slurm allocation).
    if [ "$ngpu" -gt 1 ] || [ "$num_nodes" -gt 1 ]; then
        launcher=(python -m toolkit.bin.launch --nproc "$(( ngpu > 1 ? ngpu : 1 ))" --nnodes "$num_nodes"
            --srun-options "$sbatch_options" -- -m toolkit.bin.train_downstream)
    fi
    for task in $tasks; do
        read -r -a sets <<< "$(task_sets "$task")"
        log "train the $task head on $dumpdir/raw/${sets[0]} over $student_model -> $expdir/${task}_${tag}"
        # shellcheck disable=SC2086
        "${launcher[@]}" --config "$downstream_conf_dir/$task.yaml" \
            --train "$dumpdir/raw/${sets[0]}" --valid "$dumpdir/raw/${sets[1]}" --upstream "$student_model" \
            --out "$expdir/${task}_${tag}" --device "$device" $downstream_args
    done
}

stage6_io() {
    inputs=()
    outputs=()
    local task sets dset
    for task in $tasks; do
        read -r -a sets <<< "$(task_sets "$task")"
        inputs+=("$expdir/${task}_${tag}/head.pt")
        for dset in "${sets[@]:1}"; do
            inputs+=("$dumpdir/raw/$dset")
            outputs+=("$expdir/${task}_${tag}/eval/$dset/hyp.$(label_table "$task")")
        done
    done
    options="tasks=$tasks"
}
stage6() {
    local task sets dset
    for task in $tasks; do
        read -r -a sets <<< "$(task_sets "$task")"
        for dset in "${sets[@]:1}"; do
            local out="$expdir/${task}_${tag}/eval/$dset"
            log "$task inference on $dumpdir/raw/$dset -> $out"
            python -m toolkit.bin.infer_downstream --model "$expdir/${task}_${tag}" --data "$dumpdir/raw/$dset" \
                --out "$out/hyp.$(label_table "$task")" --device "$device"
        done
    done
}

stage7_io() {
    inputs=()
    outputs=("$expdir/RESULTS.md")
    local task sets dset
    for task in $tasks; do
        read -r -a sets <<< "$(task_sets "$task")"
        for dset in "${sets[@]:1}"; do inputs+=("$expdir/${task}_${tag}/eval/$dset/hyp.$(label_table "$task")"); done
    done
    options="tag=$tag tasks=$tasks"
}
stage7() {
    local task sets dset table
    for task in $tasks; do
        read -r -a sets <<< "$(task_sets "$task")"
        table=$(label_table "$task")
        for dset in "${sets[@]:1}"; do
            local out="$expdir/${task}_${tag}/eval/$dset"
            local extra=()
            if [ "$task" = sf ]; then extra=(--utt2spk "$dumpdir/raw/$dset/utt2spk"); fi
            # Per-field accuracies named after the head's fields (FSC: action, object, location).
            local fields
            fields=$(python -c 'import sys, yaml; f = (yaml.safe_load(open(sys.argv[1])) or {}).get("label_fields"); print(",".join(f or []))' \
                "$downstream_conf_dir/$task.yaml")
            if [ -n "$fields" ]; then extra+=(--slot-names "$fields"); fi
            python -m toolkit.bin.score_slu --task "$task" --ref "$dumpdir/raw/$dset/$table" --hyp "$out/hyp.$table" \
                --out "$out" "${extra[@]+"${extra[@]}"}"
        done
    done
    python -m toolkit.bin.make_results --exp "$expdir" --out "$expdir/RESULTS.md"
    log "results: $(pwd)/$expdir/RESULTS.md"
}

stage8_io() {
    inputs=()
    local task
    for task in $tasks; do inputs+=("$expdir/${task}_${tag}/head.pt"); done
    outputs=("$expdir/slu_${tag}/model")
    options="tasks=$tasks"
}
stage8() {
    local heads=() task
    for task in $tasks; do heads+=("$expdir/${task}_${tag}"); done
    log "pack ${heads[*]} with their upstream -> $expdir/slu_${tag}/model"
    python -m toolkit.bin.pack_model --heads "${heads[@]}" --out "$expdir/slu_${tag}/model" \
        --command "$(basename "$0") $command_line"
    log "run it on audio with: python -m toolkit.bin.understand --model $expdir/slu_${tag}/model <file.wav>"
}

# ---- the driver ----
stage_name=([1]="data preparation" [2]="format audio" [3]="upstream" [4]="distillation"
    [5]="downstream training" [6]="inference" [7]="scoring" [8]="packing")
stage_marker() {
    # Stages 1-3 are shared by every run; 4-8 belong to one run (tag), so runs never redo each other's work.
    case $1 in
        1|2|3) echo "$expdir/.done/stage$1" ;;
        *) echo "$expdir/.done/stage$1.$tag" ;;
    esac
}
run_stages
