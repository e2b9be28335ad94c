#!/usr/bin/env bash
# Fish Fillets NG: real Dutch and English voice-acted speech with translations in 8 languages,
# plus an espeak-ng synthetic parallel corpus on the same sentence split.
#
#   ./run.sh                              # conf/demo.yaml, every stage
#   ./run.sh --config conf/large.yaml     # the larger configuration
#   ./run.sh --stage 5 --stop-stage 6     # only training and evaluation
#   ./run.sh --train-args "max_steps=50"  # override training options
# Options are those of ../../recipes/distill.sh (./run.sh --help lists them).
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=egs/fillets/path.sh
. ./path.sh
# shellcheck source=egs/fillets/cmd.sh
if [ -f ./cmd.sh ]; then . ./cmd.sh; fi  # job launchers: train_cmd, decode_cmd
exec ../../recipes/distill.sh --corpus fillets "$@"
