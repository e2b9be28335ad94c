#!/usr/bin/env bash
# LibriSpeech: English read speech (960 h). English speech is distilled onto the teacher embedding
# of its transcript; stage 6 scores speech:en -> text:en on test-clean. See README.md for the
# corpus layout and the GPU commands.
#
#   ./run.sh --corpus-dir /data --dry-run                    # /data/LibriSpeech/<subset>/...
#   ./run.sh --corpus-dir /data                              # conf/xlsr_labse.yaml, every stage
#   ./run.sh --corpus-dir /data --nproc 8 --prep-args "--nj 32 --extra-sets test-other"
# Options are those of ../../recipes/distill.sh (./run.sh --help lists them).
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=egs/librispeech/path.sh
. ./path.sh
# shellcheck source=egs/librispeech/cmd.sh
if [ -f ./cmd.sh ]; then . ./cmd.sh; fi  # job launchers: train_cmd, decode_cmd
if [[ " $* " != *" --config "* ]]; then set -- --config conf/xlsr_labse.yaml "$@"; fi
exec ../../recipes/distill.sh --corpus librispeech "$@"
