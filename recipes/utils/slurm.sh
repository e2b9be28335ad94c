#!/usr/bin/env bash
# SLURM job launcher with the interface of recipes/utils/run.sh (Kaldi's slurm.pl in spirit):
#
#   slurm.sh [options] JOB=1:N <log> <command> [args...]
#
# It writes a batch script to <logdir>/q/<name>.sh, submits it as one array job
# (sbatch --array=1-N --wait) and waits for it. Each array task replaces JOB with its
# SLURM_ARRAY_TASK_ID in <log> and in the command, and writes the log as run.sh does
# ("# <command>" ... "# Ended (code <rc>)"). SLURM's own output goes to <logdir>/q/<name>.<i>.out.
# If any task fails, the failed logs are named and slurm.sh exits 1.
#
# Options:
#   --mem X            memory per task (sbatch --mem), e.g. 8G
#   --gpus N           GPUs per task (sbatch --gres=gpu:N)
#   --num-threads N    CPUs per task (sbatch --cpus-per-task; also OMP_NUM_THREADS); default 1
#   --time T           time limit (sbatch --time), e.g. 4:00:00
#   --partition P      partition (sbatch --partition)
#   --max-jobs-run N   at most N tasks at once (--array=1-N%M)
#   --sbatch-args S    further sbatch options, e.g. "--account=abc --qos=high"
# The sbatch program is taken from $SBATCH (default: sbatch on PATH).
set -uo pipefail

me=$(basename "$0")
mem=""; gpus=0; num_threads=1; time_limit=""; partition=""; max_jobs=0; extra=""
while [ $# -gt 0 ]; do
  case "$1" in
    --mem) mem=$2; shift 2 ;;
    --gpus) gpus=$2; shift 2 ;;
    --num-threads) num_threads=$2; shift 2 ;;
    --time) time_limit=$2; shift 2 ;;
    --partition) partition=$2; shift 2 ;;
    --max-jobs-run) max_jobs=$2; shift 2 ;;
    --sbatch-args) extra=$2; shift 2 ;;
    --) shift; break ;;
    --*) echo "$me: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done

var=JOB; first=1; last=1
if [[ "${1:-}" =~ ^([A-Za-z_][A-Za-z0-9_]*)=([0-9]+):([0-9]+)$ ]]; then
  var=${BASH_REMATCH[1]}; first=${BASH_REMATCH[2]}; last=${BASH_REMATCH[3]}
  shift
elif [[ "${1:-}" =~ ^([A-Za-z_][A-Za-z0-9_]*)=([0-9]+)$ ]]; then
  var=${BASH_REMATCH[1]}; first=${BASH_REMATCH[2]}; last=$first
  shift
fi
if [ $# -lt 2 ]; then
  echo "usage: $me [options] JOB=1:N <log> <command> [args...]" >&2
  exit 2
fi
if [ "$first" -gt "$last" ]; then
  echo "$me: empty job range ${first}:${last}" >&2
  exit 2
fi
log_pattern=$1
shift
if [ "$last" -gt "$first" ] && [[ "$log_pattern" != *"$var"* ]]; then
  echo "$me: the log $log_pattern must contain $var (one log per job)" >&2
  exit 2
fi

logdir=$(dirname "$log_pattern")
name=$(basename "$log_pattern" .log)
name=${name//."$var"/}
name=${name//"$var"/}
qdir="${logdir}/q"
mkdir -p "$qdir"
script="${qdir}/${name}.sh"

# The batch script: the command is stored quoted, JOB is replaced when the task runs.
# shellcheck disable=SC2016  # the $-expressions are expanded when the batch script runs
{
  echo '#!/usr/bin/env bash'
  printf 'cd %q || exit 1\n' "$PWD"
  printf 'job=${SLURM_ARRAY_TASK_ID:?not run as an array task}\n'
  printf 'log=%q\n' "$log_pattern"
  printf 'log=${log//%q/$job}\n' "$var"
  printf 'cmd=('; printf ' %q' "$@"; printf ' )\n'
  printf 'cmd=("${cmd[@]//%q/$job}")\n' "$var"
  printf 'export OMP_NUM_THREADS=%q MKL_NUM_THREADS=%q\n' "$num_threads" "$num_threads"
  cat <<'EOF'
mkdir -p "$(dirname "$log")"
{
  printf '#'; printf ' %q' "${cmd[@]}"; printf '\n'
  echo "# Started at $(date) on $(hostname) (SLURM job ${SLURM_JOB_ID:-?} task ${job})"
  echo "#"
  start=$SECONDS
  "${cmd[@]}"
  rc=$?
  echo "# Accounting: time=$((SECONDS - start)) threads=${OMP_NUM_THREADS}"
  echo "# Ended (code ${rc}) at $(date), elapsed time $((SECONDS - start)) seconds"
} >"$log" 2>&1
exit "$rc"
EOF
} >"$script"
chmod +x "$script"

array="${first}-${last}"
[ "$max_jobs" -gt 0 ] && array+="%${max_jobs}"
sbatch_cmd=("${SBATCH:-sbatch}" --wait --parsable --job-name "$name" --array "$array"
  --output "${qdir}/${name}.%a.out" --cpus-per-task "$num_threads")
[ -n "$mem" ] && sbatch_cmd+=(--mem "$mem")
[ "$gpus" -gt 0 ] && sbatch_cmd+=(--gres "gpu:${gpus}")
[ -n "$time_limit" ] && sbatch_cmd+=(--time "$time_limit")
[ -n "$partition" ] && sbatch_cmd+=(--partition "$partition")
if [ -n "$extra" ]; then
  read -r -a extra_args <<<"$extra"
  sbatch_cmd+=("${extra_args[@]}")
fi
sbatch_cmd+=("$script")

printf '%q ' "${sbatch_cmd[@]}" >"${qdir}/${name}.sbatch"
echo >>"${qdir}/${name}.sbatch"
"${sbatch_cmd[@]}" >"${qdir}/${name}.jobid"
sbatch_rc=$?

failed=()
for ((job = first; job <= last; job++)); do
  log=${log_pattern//"$var"/$job}
  grep -q '^# Ended (code 0)' "$log" 2>/dev/null || failed+=("$log")
done
if [ "$sbatch_rc" -ne 0 ] || [ ${#failed[@]} -gt 0 ]; then
  echo "$me: sbatch exited ${sbatch_rc}; ${#failed[@]} / $((last - first + 1)) failed, log is in ${failed[0]:-${qdir}/${name}.*.out}" >&2
  for f in "${failed[@]:1}"; do echo "$me:   also failed: $f" >&2; done
  exit 1
fi
exit 0
