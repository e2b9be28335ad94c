#!/usr/bin/env bash
# FLEURS: n-way parallel read speech in 102 languages. Speech in each source language is distilled
# onto the teacher embedding of its transcript and of the English sentence with the same FLEURS id
# (SAMU-XLSR style); stage 6 scores speech:X -> text:Y on each test set. See README.md for the
# corpus layout and the GPU commands; run_xtreme_s.sh adds the XTREME-S retrieval protocol.
#
#   ./run.sh --corpus-dir /data/fleurs --dry-run             # what is missing, and where?
#   ./run.sh --corpus-dir /data/fleurs                       # conf/xlsr_labse.yaml, every stage
#   ./run.sh --corpus-dir /data/fleurs --nproc 4 --prep-args "--nj 16"   # 4 GPUs (torchrun)
# Options are those of ../../recipes/distill.sh (./run.sh --help lists them).
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=egs/fleurs/path.sh
. ./path.sh
# shellcheck source=egs/fleurs/cmd.sh
if [ -f ./cmd.sh ]; then . ./cmd.sh; fi  # job launchers: train_cmd, decode_cmd
if [[ " $* " != *" --config "* ]]; then set -- --config conf/xlsr_labse.yaml "$@"; fi
exec ../../recipes/distill.sh --corpus fleurs "$@"
