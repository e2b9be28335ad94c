#!/usr/bin/env bash
# Local job launcher in the style of Kaldi's utils/run.pl: runs a job array on this machine.
#
#   run.sh [options] JOB=1:N <log> <command> [args...]
#   run.sh [options] <log> <command> [args...]          # a single job
#
# Every occurrence of JOB (or whatever name is given before "=") in <log> and in the command is
# replaced by the job number. Each job's stdout and stderr go to its log, which starts with
# "# <command>" and ends with "# Ended (code <rc>) ...". The jobs run in parallel; if any fails,
# run.sh prints the failed logs and exits 1.
#
# Options:
#   --max-jobs-run N   at most N jobs at once (default: all)
#   --num-threads N    OMP_NUM_THREADS of each job (default: $OMP_NUM_THREADS if set, else the
#                      machine's cores divided by the jobs running at once)
#   --mem X, --gpus N, --time T, --partition P, --sbatch-args S
#                      accepted and ignored, so that a cmd.sh line written for slurm.sh also
#                      runs locally when only the script name is changed
set -uo pipefail

me=$(basename "$0")
max_jobs=0
num_threads=""
while [ $# -gt 0 ]; do
  case "$1" in
    --max-jobs-run) max_jobs=$2; shift 2 ;;
    --num-threads) num_threads=$2; shift 2 ;;
    --mem|--gpus|--time|--partition|--sbatch-args) shift 2 ;;
    --) shift; break ;;
    --*) echo "$me: unknown option $1" >&2; exit 2 ;;
    *) break ;;
  esac
done

var=""; first=1; last=1
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
if [ -n "$var" ] && [ "$last" -gt "$first" ] && [[ "$log_pattern" != *"$var"* ]]; then
  echo "$me: the log $log_pattern must contain $var (one log per job)" >&2
  exit 2
fi

n_jobs=$((last - first + 1))
if [ -z "$num_threads" ]; then
  if [ -n "${OMP_NUM_THREADS:-}" ]; then
    num_threads=$OMP_NUM_THREADS
  else
    at_once=$n_jobs
    [ "$max_jobs" -gt 0 ] && [ "$max_jobs" -lt "$at_once" ] && at_once=$max_jobs
    num_threads=$(( $(nproc) / at_once ))
    [ "$num_threads" -lt 1 ] && num_threads=1
  fi
fi
export OMP_NUM_THREADS=$num_threads MKL_NUM_THREADS=$num_threads OPENBLAS_NUM_THREADS=$num_threads

run_one() {  # run_one <job-number>: one job, with its log
  local job=$1 log rc start
  local -a cmd=("${@:2}")
  log=$log_pattern
  if [ -n "$var" ]; then
    log=${log//"$var"/$job}
    cmd=("${cmd[@]//"$var"/$job}")
  fi
  mkdir -p "$(dirname "$log")"
  {
    printf '#'; printf ' %q' "${cmd[@]}"; printf '\n'
    echo "# Started at $(date)"
    echo "#"
    start=$SECONDS
    "${cmd[@]}"
    rc=$?
    echo "# Accounting: time=$((SECONDS - start)) threads=${num_threads}"
    echo "# Ended (code ${rc}) at $(date), elapsed time $((SECONDS - start)) seconds"
  } >"$log" 2>&1
}

pids=()
for ((job = first; job <= last; job++)); do
  if [ "$max_jobs" -gt 0 ]; then
    while [ "$(jobs -rp | wc -l)" -ge "$max_jobs" ]; do wait -n || true; done
  fi
  run_one "$job" "$@" &
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid" || true; done

failed=()
for ((job = first; job <= last; job++)); do
  log=$log_pattern
  [ -n "$var" ] && log=${log//"$var"/$job}
  grep -q '^# Ended (code 0)' "$log" 2>/dev/null || failed+=("$log")
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "$me: ${#failed[@]} / ${n_jobs} failed, log is in ${failed[0]}" >&2
  for f in "${failed[@]:1}"; do echo "$me:   also failed: $f" >&2; done
  exit 1
fi
exit 0
