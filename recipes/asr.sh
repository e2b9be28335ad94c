#!/usr/bin/env bash
# Shared stages of a CTC ASR recipe. Called from egs/<corpus>/run_asr.sh, in that directory
# (data/ and exp/ are relative to it). Every stage is idempotent: a finished stage is skipped on
# a rerun, and an interrupted one resumes.
#
#   Stages 1-3: data, shared with the distillation recipe (recipes/distill.sh stages 1-3:
#               prepare the corpus, synthesize with espeak-ng, validate)
#   Stage 4:    train the CTC model (speechx train-asr) -> exp/<tag>/model
#   Stage 5:    decode the test sets and score them -> exp/<tag>/decode/<set>/text,
#               exp/<tag>/results/asr.json + summary.md (+ the zero-shot Whisper peer rows)
set -euo pipefail
# shellcheck source=recipes/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

stage=1
stop_stage=100
config=conf/asr_whisper_frozen.yaml  # YAML: a "recipe:" section for these stages, the rest is the AsrConfig
tag=""                     # experiment tag; defaults to the config's file name
nj=2                       # parallel jobs for data preparation
nproc=1                    # >1 trains with torchrun (DDP: NCCL on GPUs, gloo on CPU)
train_args=""              # overrides of the training config, e.g. "max_steps=100 optim.lr_head=1e-3"
data_option_defaults       # corpus corpus_dir speech_langs text_langs synth_langs synth_max_sentences teacher (lib.sh)
test_sets=""               # empty = <corpus>_<lang>_test and synth_<lang>_test for the langs above
beam=1                     # CTC beam width for decoding (1 = greedy)
lm=""                      # a KenLM n-gram file (needs pyctcdecode and kenlm); empty = none
peer=whisper-base          # zero-shot Whisper decoder scored on the same sets; empty = none
dry_run=false              # true (or a bare --dry-run): check config, corpus, data dirs and model; train nothing
_recipe_vars="stage stop_stage config tag nj nproc train_args corpus corpus_dir speech_langs text_langs synth_langs synth_max_sentences teacher test_sets beam lm peer dry_run"

load_recipe_config "$@"
# A bare "--dry-run" means "--dry-run true".
bare_flag --dry-run "$@"
set -- "${args[@]}"
# shellcheck source=recipes/parse_options.sh
. "$(dirname "${BASH_SOURCE[0]}")/parse_options.sh"

tag=${tag:-$(basename "$config" .yaml)}
expdir=exp/${tag}

if [ -z "$test_sets" ]; then
  for l in $speech_langs; do test_sets+=" data/${corpus}_${l}_test"; done
  for l in $synth_langs; do test_sets+=" data/synth_${l}_test"; done
fi

if [ "$dry_run" = true ]; then
  log "Dry run: checking ${config} (corpus ${corpus}${corpus_dir:+ in ${corpus_dir}}); nothing is prepared or trained"
  rc=0
  # shellcheck disable=SC2086
  speechx check-recipe --kind asr --config "$config" --corpus "$corpus" --corpus-dir "$corpus_dir" \
    --speech-langs $speech_langs --text-langs $text_langs --synth-langs $synth_langs \
    --nproc "$nproc" --data-dirs $test_sets ${train_args:+--train-args $train_args} || rc=$?
  exit "$rc"
fi
mkdir -p "${expdir}/log"

run_data_stages

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  log "Stage 4: train CTC -> ${expdir}"
  if [ -f "${expdir}/model/.done" ]; then
    log "  already trained (remove ${expdir}/model to retrain)"
  else
    run_training train-asr
  fi
fi

existing=()
for s in $test_sets; do [ -d "$s" ] && existing+=("$s"); done

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  log "Stage 5: decode (beam ${beam}${lm:+, LM ${lm}}) and score: ${existing[*]}${peer:+ (peer: ${peer})}"
  # Decodes are reused when the model and options are unchanged; the peer's transcripts are
  # cached in results/peers/.
  opts=(--beam "$beam" --out "${expdir}/decode" --score-dir "${expdir}/results" --model-name "$tag")
  [ -n "$lm" ] && opts+=(--lm "$lm")
  [ -n "$peer" ] && opts+=(--peer "$peer")
  # Under the exp dir's run lock, as training: two decodes never write one decode/ and results/.
  python -m speechx.runlock "$expdir" -- speechx transcribe --model "${expdir}/model" --data-dir "${existing[@]}" "${opts[@]}" 2>&1 \
    | tee "${expdir}/log/decode.log"
  log "Results: ${expdir}/results/summary.md"
  cat "${expdir}/results/summary.md"
fi

log "Done. Model: ${expdir}/model  Results: ${expdir}/results"
