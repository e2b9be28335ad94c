#!/usr/bin/env bash
# XTREME-S FLEURS-Retrieval on the model run.sh trained: speech queries in every source language,
# the English texts of all test sentences as keys, padded with distractor English sentences.
# Writes exp/<tag>/results_xtreme_s/ (retrieval.json rows with "protocol": "xtreme-s").
#
#   ./run_xtreme_s.sh                                   # distractors: FLEURS en train + dev texts
#   ./run_xtreme_s.sh --distractors "/data/news.en.txt data/fleurs_en_train"
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=egs/fleurs/path.sh
. ./path.sh

config=conf/xlsr_labse.yaml
tag=""                       # defaults to the config's file name, as in run.sh
teacher=""                   # defaults to the config's recipe: teacher
speech_langs=""              # defaults to the config's recipe: speech_langs
cache_dir=""
distractors="data/fleurs_en_train data/fleurs_en_dev"   # text files (one sentence a line) or Kaldi dirs
_recipe_vars="config tag teacher speech_langs cache_dir distractors"

log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') ($(basename "$0"):${BASH_LINENO[0]}) $*"; }

args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  [ "${args[$i]}" = "--config" ] && config="${args[$((i + 1))]}"
done
[ -f "$config" ] || { echo "$0: config $config not found" >&2; exit 1; }
_cli_teacher=$teacher; _cli_langs=$speech_langs
eval "$(speechx recipe-vars "$config" | grep -E '^(teacher|speech_langs)=')"
teacher=${_cli_teacher:-$teacher}; speech_langs=${_cli_langs:-$speech_langs}
# shellcheck source=recipes/parse_options.sh
. ../../recipes/parse_options.sh

tag=${tag:-$(basename "$config" .yaml)}
model=exp/${tag}/model
[ -f "${model}/config.json" ] || { echo "$0: no model at ${model}; run ./run.sh first" >&2; exit 1; }
test_sets=()
for l in $speech_langs; do [ -d "data/fleurs_${l}_test" ] && test_sets+=("data/fleurs_${l}_test"); done
[ ${#test_sets[@]} -gt 0 ] || { echo "$0: no data/fleurs_<lang>_test dirs for: ${speech_langs}" >&2; exit 1; }
cache_opt=()
[ -n "$cache_dir" ] && cache_opt=(--cache-dir "$cache_dir")

log "XTREME-S retrieval: ${#test_sets[@]} test sets, distractors: ${distractors}"
# shellcheck disable=SC2086
speechx evaluate-retrieval --model "$model" --teacher "$teacher" "${cache_opt[@]}" \
  --out-dir "exp/${tag}/results_xtreme_s" --data-dirs "${test_sets[@]}" \
  --distractors $distractors --key-lang en 2>&1 | tee "exp/${tag}/log/evaluate_xtreme_s.log"
log "Results: exp/${tag}/results_xtreme_s/summary.md"
