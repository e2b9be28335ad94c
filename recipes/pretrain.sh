#!/usr/bin/env bash
# Shared stages of a self-supervised pretraining recipe (wav2vec 2.0, optionally ccc-wav2vec 2.0).
# Called from egs/<corpus>/run_pretrain.sh, in that directory (data/ and exp/ are relative to
# it). Every stage is idempotent: a finished stage is skipped on a rerun, and an interrupted one
# resumes.
#
#   Stages 1-3: data, shared with the distillation recipe (recipes/distill.sh stages 1-3:
#               prepare the corpus, synthesize with espeak-ng, validate)
#   Stage 4:    pretrain (speechx pretrain) -> exp/<tag>/model, a transformers backbone dir that
#               model.source of a distillation or CTC config takes as a warm start
#   Stage 5:    (with --distill-config C) distil from it: recipes/distill.sh stages 4-6 with C
set -euo pipefail
# shellcheck source=recipes/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

stage=1
stop_stage=100
config=conf/pretrain_w2v2.yaml  # YAML: a "recipe:" section for these stages, the rest is the PretrainConfig
tag=""                     # experiment tag; defaults to the config's file name
nj=2                       # parallel jobs for data preparation
nproc=1                    # >1 trains with torchrun (DDP: NCCL on GPUs, gloo on CPU)
train_args=""              # overrides of the pretraining config, e.g. "max_steps=100 ccc.enabled=true"
data_option_defaults       # corpus corpus_dir speech_langs text_langs synth_langs synth_max_sentences teacher (lib.sh)
distill_config=""          # stage 5: a distillation config whose model.source is exp/<tag>/model; empty = no stage 5
_recipe_vars="stage stop_stage config tag nj nproc train_args corpus corpus_dir speech_langs text_langs synth_langs synth_max_sentences teacher distill_config"

# The config's recipe: section sets defaults; command-line options override them.
load_recipe_config "$@"
# shellcheck source=recipes/parse_options.sh
. "$(dirname "${BASH_SOURCE[0]}")/parse_options.sh"

tag=${tag:-$(basename "$config" .yaml)}
expdir=exp/${tag}
mkdir -p "${expdir}/log"

run_data_stages

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  log "Stage 4: pretrain -> ${expdir}"
  if [ -f "${expdir}/model/.done" ]; then
    log "  already pretrained (remove ${expdir}/model to pretrain again)"
  else
    run_training pretrain
  fi
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ] && [ -n "$distill_config" ]; then
  log "Stage 5: distil from ${expdir}/model with ${distill_config} (recipes/distill.sh stages 4-6)"
  "$(dirname "${BASH_SOURCE[0]}")/distill.sh" --config "$distill_config" --stage 4 --stop-stage 6 \
    --nj "$nj" --nproc "$nproc" --corpus "$corpus" --speech-langs "$speech_langs" \
    --text-langs "$text_langs" --synth-langs "$synth_langs" --teacher "$teacher"
fi

log "Done. Pretrained backbone: ${expdir}/model"
