#!/usr/bin/env bash
# Fish Fillets NG: long-form search. Long recordings are built from the test sets (real Dutch
# speech and espeak-ng English and German, with pauses, distractor speech and low noise),
# indexed in windows with the distilled speech encoder, and searched with the text of each
# query utterance in English, Dutch and German. A separate entry point from run.sh, whose data
# dirs and model (exp/demo/model by default) it uses.
#
#   ./run_longform.sh                                   # every stage
#   ./run_longform.sh --stage 3                         # only the evaluation
#   ./run_longform.sh --window 4 --hop 1 --boundaries fixed --tag longform_fixed
#   ./run_longform.sh --model exp/large/model --nj 2
# Options are those of ../../recipes/longform.sh (./run_longform.sh --help lists them).
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=egs/fillets/path.sh
. ./path.sh
# shellcheck source=egs/fillets/cmd.sh
if [ -f ./cmd.sh ]; then . ./cmd.sh; fi  # job launchers: train_cmd, decode_cmd
exec ../../recipes/longform.sh "$@"
