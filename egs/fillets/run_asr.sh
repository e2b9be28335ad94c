#!/usr/bin/env bash
# Fish Fillets NG: CTC ASR on real Dutch speech (and the espeak-ng synthetic languages).
# A separate entry point from run.sh (the distillation recipe), so that each keeps its own stage
# numbers; both share the data stages and data/.
#
#   ./run_asr.sh                                        # conf/asr_whisper_frozen.yaml, every stage
#   ./run_asr.sh --config conf/asr_whisper_top2.yaml    # top 2 Whisper layers fine-tuned
#   ./run_asr.sh --config conf/asr_w2v2_scratch.yaml    # wav2vec2 from scratch
#   ./run_asr.sh --stage 4 --train-args "max_steps=50" --peer ""
# Options are those of ../../recipes/asr.sh (./run_asr.sh --help lists them).
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=egs/fillets/path.sh
. ./path.sh
exec ../../recipes/asr.sh --corpus fillets "$@"
