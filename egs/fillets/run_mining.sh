#!/usr/bin/env bash
# Fish Fillets NG: bitext mining between the Dutch test speech and English sentences, with the
# encoder of the distillation recipe (exp/demo/model by default, trained by ./run.sh when
# missing). A separate entry point from run.sh, with its own stage numbers; both share data/.
#
#   ./run_mining.sh                                   # exp/mining: embed, mine, evaluate
#   ./run_mining.sh --tag mining_eval --stage 2
#   ./run_mining.sh --model exp/large/model --tag mining_large
#   ./run_mining.sh --stage 3 --threshold 1.1 --mode forward
# Options are those of ../../recipes/mining.sh (./run_mining.sh --help lists them).
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=egs/fillets/path.sh
. ./path.sh
# shellcheck source=egs/fillets/cmd.sh
if [ -f ./cmd.sh ]; then . ./cmd.sh; fi  # job launchers: decode_cmd
exec ../../recipes/mining.sh --corpus fillets "$@"
