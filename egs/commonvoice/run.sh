#!/usr/bin/env bash
# Mozilla Common Voice: crowd-read speech in many languages (no translations: each clip is
# distilled onto the teacher embedding of its own transcript). See README.md for the corpus
# layout and the GPU commands.
#
#   ./run.sh --corpus-dir /data/cv-corpus-17.0-2024-03-15 --dry-run     # what is missing?
#   ./run.sh --corpus-dir /data/cv-corpus-17.0-2024-03-15               # conf/xlsr_labse.yaml
#   ./run.sh --corpus-dir ... --nproc 4 --prep-args "--nj 16"           # 4 GPUs/processes
# Options are those of ../../recipes/distill.sh (./run.sh --help lists them).
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=egs/commonvoice/path.sh
. ./path.sh
# shellcheck source=egs/commonvoice/cmd.sh
if [ -f ./cmd.sh ]; then . ./cmd.sh; fi  # job launchers: train_cmd, decode_cmd
if [[ " $* " != *" --config "* ]]; then set -- --config conf/xlsr_labse.yaml "$@"; fi
exec ../../recipes/distill.sh --corpus commonvoice "$@"
