#!/usr/bin/env bash
# Shell functions shared by the stage scripts in recipes/ (distill.sh, asr.sh, pretrain.sh).
# Source it before setting the defaults:  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# The functions read the calling recipe's variables (config, tag, expdir, stage, ...).
# shellcheck disable=SC2154  # those variables are the caller's

# log MESSAGE...: a timestamped line naming the script and line it comes from.
log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') ($(basename "${BASH_SOURCE[1]}"):${BASH_LINENO[0]}) $*"; }

# data_option_defaults: the defaults of the data options, those of recipes/distill.sh stages 1-3,
# which asr.sh and pretrain.sh pass on to it (so the three agree).
# shellcheck disable=SC2034  # the caller reads them
data_option_defaults() {
  corpus=fillets
  corpus_dir=""              # where the corpus is; empty = the corpus module's default
  speech_langs="nl"          # fillets "en" clips are mostly German/Russian lines
  text_langs="en nl de fr es it ru pl"
  synth_langs="en de fr es it nl pl ru"
  synth_max_sentences=0      # 0 = every sentence
  teacher=use-multilingual   # the text teacher (the training of asr.sh and pretrain.sh does not use it)
}

# load_recipe_config ARG...: sets $config from a "--config C" among the recipe's arguments,
# stops when the file is missing, and applies its recipe: section (speechx recipe-vars) to the
# defaults; the command-line options, parsed afterwards, override them.
load_recipe_config() {
  local args=("$@") i
  for ((i = 0; i < ${#args[@]}; i++)); do
    [ "${args[$i]}" = "--config" ] && config="${args[$((i + 1))]}"
  done
  [ -f "$config" ] || { echo "$0: config $config not found" >&2; exit 1; }
  eval "$(speechx recipe-vars "$config")"
}

# bare_flag FLAG ARG...: sets the array args to ARG..., where a bare FLAG (the last argument,
# or one followed by another --option) becomes "FLAG true".
bare_flag() {
  local flag=$1
  shift
  args=()
  while [ $# -gt 0 ]; do
    if [ "$1" = "$flag" ] && { [ $# -eq 1 ] || [[ "$2" == --* ]]; }; then args+=("$flag" true); shift; continue; fi
    args+=("$1"); shift
  done
}

# run_data_stages: stages 1-3 of recipes/distill.sh (prepare, synthesize, validate) with this
# recipe's config and data options, for the recipes that train on its data dirs.
run_data_stages() {
  if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 1 ]; then
    local last=$((stop_stage < 3 ? stop_stage : 3))
    log "Stages ${stage}-${last}: data (recipes/distill.sh)"
    "$(dirname "${BASH_SOURCE[0]}")/distill.sh" --config "$config" --tag "$tag" \
      --stage "$stage" --stop-stage "$last" --nj "$nj" --corpus "$corpus" --corpus-dir "$corpus_dir" \
      --speech-langs "$speech_langs" --text-langs "$text_langs" --synth-langs "$synth_langs" \
      --synth-max-sentences "$synth_max_sentences" --teacher "$teacher"
  fi
}

# run_training VERB [ARG...]: "speechx VERB --config $config --exp-dir $expdir ARG... --train-args ..."
# (under torchrun when nproc > 1), then marks ${expdir}/model/.done.  The training holds the exp
# dir's run lock (a second run stops at once); a killed run resumes from its newest checkpoint.
run_training() {
  local verb=$1 resume=() launcher=(speechx)
  shift
  compgen -G "${expdir}/checkpoints/ckpt-*.pt" >/dev/null && resume=(--resume)
  [ "$nproc" -gt 1 ] && launcher=(torchrun --standalone --nproc_per_node "$nproc" -m speechx.cli)
  # shellcheck disable=SC2086
  "${launcher[@]}" "$verb" --config "$config" --exp-dir "$expdir" "${resume[@]}" "$@" \
    ${train_args:+--train-args $train_args}
  touch "${expdir}/model/.done"
}
