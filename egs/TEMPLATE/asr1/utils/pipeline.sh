# Shared by the pipelines (asr.sh, slu.sh): sharded data-dir jobs and the stage driver. Sourced, never run.
# The calling script defines log, die, nj, expdir, stage, stop_stage, the array stage_name, and for every stage N
# the functions stageN (the work) and stageN_io (sets inputs, outputs and options for the .done hash), plus
# stage_marker N (prints the .done marker path of stage N).

# run_sharded SRC DST NAME MODULE [ARGS...]: run `python -m MODULE ARGS --data <shard> --out <part>` on --nj shards
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
    python -m toolkit.bin.split_data_dir --data "$src" --num-shards "$jobs"
    # A failed job (bad audio, a full disk) leaves DST as it was; the half-written DST.tmp goes, its logs are kept.
    if ! run_jobs --nj "$jobs" --log "$tmp/log/$name.JOB.log" -- \
        python -m "$module" "$@" --data "$src/split$jobs/JOB" --out "$tmp/parts/JOB" \
        --wav-dir "$tmp/wav" --final-wav-dir "$(pwd)/$dst/wav"; then
        rm -rf "$tmp/wav" "$tmp/parts"
        return 1
    fi
    local parts=()
    for k in $(seq 1 "$jobs"); do parts+=("$tmp/parts/$k"); done
    python -m toolkit.bin.combine_data_dir --concat dropped_utts --data "${parts[@]}" --out "$tmp"
    rm -rf "$tmp/parts"
    rm -rf "$dst"
    mv "$tmp" "$dst"
}

# dry_run_stage N MARKER: what stage N would do, without doing anything: whether it would run or be skipped (and
# why), what it reads and writes, the options its .done hash covers, and its commands as the pipeline writes them
# (shell variables unexpanded; the options line and the stage's inputs/outputs show their values).
dry_run_stage() {
    local n=$1 marker=$2 status
    status=$(python -m toolkit.bin.stage check --label "stage $n (${stage_name[$n]})" --marker "$marker" \
        --inputs "${inputs[@]+"${inputs[@]}"}" --outputs "${outputs[@]+"${outputs[@]}"}" --options "$options" || true)
    status=${status/: running (/: would run (}
    echo "${status/: skipped (/: would be skipped (}"
    echo "    reads:   ${inputs[*]:-(nothing listed)}"
    echo "    writes:  ${outputs[*]:-(nothing listed)}"
    echo "    options: ${options:-(none)}"
    echo "    commands:"
    declare -f "stage$n" | sed '1,2d;$d' | sed 's/^/    /'
}

# run_stages: run stages $stage..$stop_stage; skip one whose .done hash (inputs, options) still matches.
# With dry_run=true nothing runs: each stage is described instead (dry_run_stage).
run_stages() {
    local n marker logfile start rc lock_fd=""
    if [ "${dry_run:-false}" = true ]; then
        log "dry run of stages $stage-$stop_stage: nothing is executed or written"
    fi
    for n in $(seq "$stage" "$stop_stage"); do
        declare -F "stage$n" > /dev/null || die "stage $n is not implemented"
        "stage${n}_io"
        marker=$(stage_marker "$n")
        if [ "${dry_run:-false}" = true ]; then
            dry_run_stage "$n" "$marker"
            continue
        fi
        if python -m toolkit.bin.stage check --label "stage $n (${stage_name[$n]})" --marker "$marker" \
            --inputs "${inputs[@]+"${inputs[@]}"}" --outputs "${outputs[@]+"${outputs[@]}"}" --options "$options"; then
            continue
        fi
        # One run of a stage at a time: a second one would overwrite the first's outputs and log as it writes them.
        # The lock goes with the process (and the jobs it starts), so a killed run never leaves it behind.
        if command -v flock > /dev/null; then
            exec {lock_fd}> "$marker.lock"
            flock -n "$lock_fd" || die "stage $n (${stage_name[$n]}) is already running in another process" \
                "(it holds $marker.lock); wait for it to finish, or give this run another --expdir or --tag"
        fi
        # The marker goes before the stage starts: a stage that dies half-way leaves no marker that a later run
        # with the old options could trust.
        rm -f "$marker"
        # Named like the stage's marker (stage7.<tag>, stage4.<discretizer>): runs of different tags or discretizers
        # started side by side (run_comparison.sh --jobs N) each keep their own log.
        logfile="$expdir/logs/$(basename "$marker").log"
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
        python -m toolkit.bin.stage mark --marker "$marker" --inputs "${inputs[@]+"${inputs[@]}"}" \
            --outputs "${outputs[@]+"${outputs[@]}"}" --options "$options"
        if [ -n "${lock_fd:-}" ]; then exec {lock_fd}>&-; lock_fd=""; fi
        log "stage $n (${stage_name[$n]}) finished in $(( $(date +%s) - start )) s; log: $logfile"
    done
    if [ "${dry_run:-false}" = true ]; then return 0; fi
    log "stages $stage-$stop_stage done"
}
