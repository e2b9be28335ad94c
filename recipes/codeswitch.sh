#!/usr/bin/env bash
# Shared stages of a code-switching evaluation recipe. Called from egs/<dir>/run.sh, in that
# directory (data/ and exp/ are relative to it). Every stage is idempotent: a finished stage is
# skipped on a rerun (or, for synthesis, reuses the clips already written).
#
#   Stage 1: the parallel sentence table with every pair language (speechx prepare <corpus>)
#   Stage 2: monolingual espeak-ng speech of the test sentences in every pair language
#            (the comparison queries: the same sentences, spoken in one language)
#   Stage 3: code-switched speech (data_prep.synth_codeswitch): synthcs_<pair>_<split>
#   Stage 4: the models: a distilled speech encoder and a CTC model. When one is missing it is
#            trained by the recipes of ${models_egs} (run.sh with ${encoder_config}, run_asr.sh
#            with ${asr_config}), where every other recipe leaves them
#   Stage 5: evaluate-codeswitch: MER, per-language and switch-point errors, language confusion,
#            retrieval of code-switched vs monolingual queries -> exp/<tag>/results/
#            codeswitch.json + summary.md (+ .pra alignments, decode/<set>/text)
set -euo pipefail

stage=1
stop_stage=100
tag=codeswitch
nj=2                            # parallel jobs of the monolingual synthesis (split<nj>)
train_cmd=${train_cmd:-$(dirname "${BASH_SOURCE[0]}")/utils/run.sh}  # their launcher (cmd.sh)
corpus=fillets
corpus_dir=""                   # where the corpus is; empty = the corpus module's default
speech_langs="nl"               # real speech prepared with the table (not used here)
pairs="nl-en de-en es-en"       # <matrix>-<embedded>
splits="test"                   # code-switched splits to build (train dev test)
methods="inter clause phrase"   # switching methods (phrase needs the eflomal aligner)
models_egs=../fillets           # where the models live (and are trained when missing)
encoder_config=conf/demo.yaml   # that recipe's config for the speech encoder
asr_config=conf/asr_whisper_frozen.yaml  # and for the CTC model
model=""                        # encoder dir; empty = <models_egs>/exp/<encoder_config name>/model
asr_model=""                    # CTC dir; empty = <models_egs>/exp/<asr_config name>/model
teacher=use-multilingual
beam=8
peer=whisper-base               # zero-shot Whisper (matrix language forced) scored as a peer; empty = none
_recipe_vars="stage stop_stage tag nj train_cmd corpus corpus_dir speech_langs pairs splits methods models_egs encoder_config asr_config model asr_model teacher beam peer"

log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') ($(basename "$0"):${BASH_LINENO[0]}) $*"; }

# shellcheck source=recipes/parse_options.sh
. "$(dirname "${BASH_SOURCE[0]}")/parse_options.sh"

expdir=exp/${tag}
mkdir -p "${expdir}/log"
model=${model:-${models_egs}/exp/$(basename "$encoder_config" .yaml)/model}
asr_model=${asr_model:-${models_egs}/exp/$(basename "$asr_config" .yaml)/model}

# Every language of every pair, English always (the retrieval target every pair shares).
langs="en"
for p in $pairs; do
  for l in ${p%%-*} ${p#*-}; do
    case " $langs " in *" $l "*) ;; *) langs+=" $l" ;; esac
  done
done

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "Stage 1: sentence table of ${corpus} with text in: ${langs}"
  prep_opts="text=${langs} dir=${corpus_dir}"
  if [ -f "data/.${corpus}.done" ] && [ "$(cat "data/.${corpus}.done")" = "$prep_opts" ]; then
    log "  already prepared (remove data/.${corpus}.done to redo)"
  else
    corpus_opt=()
    [ -n "$corpus_dir" ] && corpus_opt=(--corpus-dir "$corpus_dir")
    # shellcheck disable=SC2086
    speechx prepare "$corpus" "${corpus_opt[@]}" --out-dir data --speech-langs "$speech_langs" \
      --text-langs $langs 2>&1 \
      | tee "${expdir}/log/prepare_${corpus}.log"
    echo "$prep_opts" > "data/.${corpus}.done"
  fi
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  log "Stage 2: monolingual espeak-ng speech of the ${splits} sentences in: ${langs}"
  # shellcheck disable=SC2086
  speechx prepare synth --sentences "data/local/${corpus}_sentences.tsv" --out-dir data \
    --audio-dir data/audio/synth --langs $langs --splits $splits --nj "$nj" --cmd "$train_cmd" 2>&1 \
    | tee "${expdir}/log/prepare_synth.log"
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  log "Stage 3: code-switched speech: ${pairs} (${methods}; splits: ${splits})"
  # shellcheck disable=SC2086
  speechx prepare synthcs --sentences "data/local/${corpus}_sentences.tsv" --out-dir data \
    --audio-dir data/audio --pairs $pairs --splits $splits --methods $methods --nj "$nj" 2>&1 \
    | tee "${expdir}/log/prepare_synthcs.log"
fi

sets=()
for p in $pairs; do
  for s in $splits; do [ -d "data/synthcs_${p}_${s}" ] && sets+=("data/synthcs_${p}_${s}"); done
done

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  log "Stage 4: models (encoder ${model}, CTC ${asr_model})"
  if [ ! -f "${model}/config.json" ]; then
    log "  no encoder at ${model}: training it with ${models_egs}/run.sh --config ${encoder_config}"
    (cd "$models_egs" && ./run.sh --config "$encoder_config")
  fi
  if [ ! -f "${asr_model}/config.json" ]; then
    log "  no CTC model at ${asr_model}: training it with ${models_egs}/run_asr.sh --config ${asr_config}"
    (cd "$models_egs" && ./run_asr.sh --config "$asr_config" --stop-stage 4)
  fi
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  [ ${#sets[@]} -gt 0 ] || { echo "$0: no data/synthcs_<pair>_<split> dirs; run stage 3" >&2; exit 1; }
  mono=()
  for l in $langs; do
    for s in $splits; do [ -d "data/synth_${l}_${s}" ] && mono+=("data/synth_${l}_${s}"); done
  done
  log "Stage 5: evaluate-codeswitch ${sets[*]} (monolingual: ${mono[*]})"
  speechx evaluate-codeswitch "${sets[@]}" --out-dir "${expdir}/results" \
    --asr-model "$asr_model" --beam "$beam" --decode-dir "${expdir}/decode" \
    --model "$model" --mono "${mono[@]}" --teacher "$teacher" --split "${splits// /+}" \
    ${peer:+--peer "$peer"} 2>&1 \
    | tee "${expdir}/log/evaluate_codeswitch.log"
  log "results: ${expdir}/results/codeswitch.json and ${expdir}/results/summary.md"
fi
