# How a recipe's parallel jobs run. Edit here, or pass --cmd_backend / --sbatch_options to run.sh.
#   local: N processes on this machine (default).
#   slurm: one `sbatch --array=1-N --wait` per stage; every job logs to its own file.
cmd_backend=local
# Extra sbatch options for the slurm backend, e.g. "--partition=cpu --time=4:00:00 --mem=16G".
sbatch_options=""

# run_jobs --nj N --log dir/name.JOB.log -- command args (JOB is replaced by 1..N in the command and the log)
run_jobs() {
    python -m toolkit.bin.run_jobs --backend "${cmd_backend}" --sbatch-options "${sbatch_options}" "$@"
}
