#!/usr/bin/env bash
# Fish Fillets NG: self-supervised wav2vec 2.0 pretraining on all the real and synthetic training
# speech, as a warm start for distillation (run.sh) and CTC (run_asr.sh). A separate entry point
# from run.sh, so that each keeps its own stage numbers; all share the data stages and data/.
#
#   ./run_pretrain.sh                                         # conf/pretrain_w2v2.yaml, every stage
#   ./run_pretrain.sh --config conf/pretrain_fbank.yaml       # the log-mel front end
#   ./run_pretrain.sh --stage 4 --train-args "ccc.enabled=true" --tag pretrain_w2v2_ccc
#   ./run_pretrain.sh --distill-config conf/scratch_pretrained.yaml   # then distil from it
#   ./run.sh --config conf/scratch_pretrained.yaml            # (the same, through run.sh)
# Options are those of ../../recipes/pretrain.sh.
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=egs/fillets/path.sh
. ./path.sh
exec ../../recipes/pretrain.sh --corpus fillets "$@"
