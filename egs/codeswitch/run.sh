#!/usr/bin/env bash
# Code-switched speech, evaluated on the shared space: espeak-ng speech that switches between
# Dutch, German or Spanish and English inside and across the Fish Fillets NG lines (see
# README.md for the method), scored for ASR (MER, per-language and switch-point errors) and for
# retrieval against the same sentences spoken in one language. The models are egs/fillets's:
# they are trained there when missing.
#
#   ./run.sh                              # every stage, pairs nl-en de-en es-en, test split
#   ./run.sh --stage 5                    # only the evaluation
#   ./run.sh --pairs "nl-en" --model ../fillets/exp/large/model
# Options are those of ../../recipes/codeswitch.sh (./run.sh --help lists them).
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=egs/codeswitch/path.sh
. ./path.sh
# shellcheck source=egs/codeswitch/cmd.sh
if [ -f ./cmd.sh ]; then . ./cmd.sh; fi  # job launchers: train_cmd, decode_cmd
exec ../../recipes/codeswitch.sh "$@"
