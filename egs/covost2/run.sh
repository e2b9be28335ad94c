#!/usr/bin/env bash
# CoVoST 2: Common Voice 4 clips with translations (21 languages -> English, English -> 15).
# Speech is distilled onto the teacher embedding of its transcript and English translation.
# See README.md for where the corpus comes from and the GPU commands.
#
#   ./run.sh --corpus-dir /data/cv-corpus-4-2019-12-10 --dry-run        # what is missing?
#   ./run.sh --corpus-dir /data/cv-corpus-4-2019-12-10                  # X->en, conf/xlsr_labse_x_en.yaml
#   ./run.sh --config conf/xlsr_labse_en_x.yaml --corpus-dir ...        # en->X
#   ./run.sh --corpus-dir ... --nproc 4 --prep-args "--nj 16 --covost-dir /data/covost_tsv"
# Options are those of ../../recipes/distill.sh (./run.sh --help lists them).
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=egs/covost2/path.sh
. ./path.sh
# shellcheck source=egs/covost2/cmd.sh
if [ -f ./cmd.sh ]; then . ./cmd.sh; fi  # job launchers: train_cmd, decode_cmd
if [[ " $* " != *" --config "* ]]; then set -- --config conf/xlsr_labse_x_en.yaml "$@"; fi
exec ../../recipes/distill.sh --corpus covost2 "$@"
