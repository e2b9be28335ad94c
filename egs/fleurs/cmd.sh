#!/usr/bin/env bash
# How this recipe runs its sharded jobs (Kaldi's cmd.sh); sourced by run.sh. Each launcher is
# called as "<cmd> JOB=1:N <log> <command>" (see docs/parallel.md):
#   train_cmd   CPU jobs: speech synthesis (stage 2) and teacher embedding (stage 4)
#   decode_cmd  encoding with the speech encoder (stage 6, encode_test=true)
# The number of jobs is the recipe's --nj.

# On this machine: the jobs run as background processes (recipes/utils/run.sh, like run.pl).
export train_cmd="../../recipes/utils/run.sh"
export decode_cmd="../../recipes/utils/run.sh"

# On a SLURM cluster: one array job per stage (sbatch --array=1-N --wait), e.g.
# export train_cmd="../../recipes/utils/slurm.sh --mem 4G --num-threads 2 --time 4:00:00"
# export decode_cmd="../../recipes/utils/slurm.sh --mem 8G --gpus 1 --num-threads 4"
# Site options (account, QoS, partition) go in --sbatch-args "--account=abc --qos=normal".
