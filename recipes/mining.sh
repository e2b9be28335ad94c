#!/usr/bin/env bash
# Shared stages of a speech bitext-mining recipe. Called from egs/<corpus>/run_mining.sh, in that
# directory (data/ and exp/ are relative to it). It reuses the data dirs and the speech encoder
# of the distillation recipe (recipes/distill.sh). Every stage is idempotent: a finished stage
# is skipped on a rerun, and a stage is redone when its inputs or options change.
#
#   Stage 1: data and model: when the test set or the encoder is missing, the distillation
#            recipe (./run.sh --config ${config}) makes them (data stages only when just the
#            data is missing)
#   Stage 2: embed: the test speech with the encoder -> exp/<tag>/embed/<set>/
#            {ids.txt,embeddings.npy} (nj jobs through $decode_cmd)
#   Stage 3: mine: speechx mine the embedded speech against the set's text.<tgt_lang>
#            sentences -> exp/<tag>/mine/<set>.<tgt_lang>.tsv (mode, scoring, k, threshold)
#   Stage 4: evaluate: speechx evaluate-mining: the speech against the shuffled
#            text.<tgt_lang> sentences plus the distractors; precision, recall and F1 at the
#            best threshold for ratio margin and cosine in every mode, and the teacher
#            ceiling -> exp/<tag>/results/mining.json + summary.md + mining_pr.png
set -euo pipefail

stage=1
stop_stage=100
tag=mining
config=conf/demo.yaml       # the distillation config that made (or makes) the encoder
model=""                    # encoder dir; empty = exp/<config name>/model
corpus=fillets
src_lang="nl"               # the language of the test speech
tgt_lang=en                 # the language of the sentences mined
test_set=""                 # empty = data/<corpus>_<src_lang>_test
distractor_sets=""          # Kaldi dirs whose text.<tgt_lang> pads the targets; empty = the train and dev sets
distractors=""              # more distractor files (one sentence per line)
teacher=use-multilingual    # the teacher the encoder was distilled into
cache_dir=""                # teacher embedding cache; empty = $SPEECHX_CACHE or ~/.cache/speechx
k=4                         # margin neighbourhood
mode=intersection           # stage 3: forward, backward, intersection or union
scoring=ratio               # stage 3: ratio, distance or cosine
threshold=""                # stage 3: keep pairs scoring >= this; empty = every pair of the mode
backend=exact               # k-NN search: exact, faiss-flat, faiss-ivf, faiss-hnsw
nj=1                        # encoding jobs (split<nj>)
decode_cmd=${decode_cmd:-$(dirname "${BASH_SOURCE[0]}")/utils/run.sh}  # their launcher (cmd.sh)
batch_size=16
_recipe_vars="stage stop_stage tag config model corpus src_lang tgt_lang test_set distractor_sets distractors teacher cache_dir k mode scoring threshold backend nj decode_cmd batch_size"

log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') ($(basename "$0"):${BASH_LINENO[0]}) $*"; }

# shellcheck source=recipes/parse_options.sh
. "$(dirname "${BASH_SOURCE[0]}")/parse_options.sh"

expdir=exp/${tag}
default_model=exp/$(basename "$config" .yaml)/model
model=${model:-$default_model}
test_set=${test_set:-data/${corpus}_${src_lang}_test}
distractor_sets=${distractor_sets:-data/${corpus}_${src_lang}_train data/${corpus}_${src_lang}_dev}
name=$(basename "$test_set")
embed=${expdir}/embed/${name}
cache_opt=()
[ -n "$cache_dir" ] && cache_opt=(--cache-dir "$cache_dir")
mkdir -p "${expdir}/log"

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "Stage 1: data (${test_set}) and encoder (${model})"
  if [ -d "$test_set" ] && [ -f "${model}/config.json" ]; then
    log "  both there"
  else
    if [ ! -f "${model}/config.json" ] && [ "$model" != "$default_model" ]; then
      echo "$0: no encoder at ${model} (--model); give a trained one, or leave --model empty to train ${default_model}" >&2
      exit 1
    fi
    last=4
    [ -f "${model}/config.json" ] || last=5
    log "  running the distillation recipe: ./run.sh --config ${config} --stop-stage ${last}"
    ./run.sh --config "$config" --stop-stage "$last"
  fi
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  log "Stage 2: embed ${name} with ${model} -> ${embed} (nj=${nj})"
  # The marker records the model and the data, so a retrained model or changed set re-encodes.
  stamp="model=$(cd "$model" && pwd) mtime=$(date -r "${model}/model.safetensors" +%s) data=$(cd "$test_set" && pwd) mtime=$(date -r "${test_set}/wav.scp" +%s)"
  if [ -f "${embed}/.done" ] && [ "$(cat "${embed}/.done")" = "$stamp" ]; then
    log "  already embedded (remove ${embed}/.done to redo)"
  else
    rm -f "${expdir}/mine/.${name}.done" "${expdir}/results/.mining.done"
    speechx encode --model "$model" --data-dir "$test_set" --out "$embed" --batch-size "$batch_size" \
      --nj "$nj" --cmd "$decode_cmd" --log-dir "${expdir}/log/encode_${name}" 2>&1 \
      | tee "${expdir}/log/encode_${name}.log"
    echo "$stamp" > "${embed}/.done"
  fi
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  out=${expdir}/mine/${name}.${tgt_lang}.tsv
  log "Stage 3: mine speech:${src_lang} -> text.${tgt_lang} of ${name} (${mode}, ${scoring}, k=${k}${threshold:+, >= ${threshold}}) -> ${out}"
  opts="mode=${mode} scoring=${scoring} k=${k} threshold=${threshold} backend=${backend} teacher=${teacher}"
  if [ -f "${expdir}/mine/.${name}.done" ] && [ "$(cat "${expdir}/mine/.${name}.done")" = "$opts" ]; then
    log "  already mined (remove ${expdir}/mine/.${name}.done to redo)"
  else
    mkdir -p "${expdir}/mine"
    thr=()
    [ -n "$threshold" ] && thr=(--threshold "$threshold")
    speechx mine --src "emb:${embed}" --tgt "text.${tgt_lang}:${test_set}" --unify --out "$out" \
      --mode "$mode" --scoring "$scoring" --k "$k" "${thr[@]}" --backend "$backend" \
      --teacher "$teacher" "${cache_opt[@]}" 2>&1 | tee "${expdir}/log/mine_${name}.log"
    echo "$opts" > "${expdir}/mine/.${name}.done"
  fi
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  log "Stage 4: evaluate mining of ${name}: distractors ${distractor_sets}${distractors:+ ${distractors}}"
  opts="k=${k} backend=${backend} teacher=${teacher} tgt=${tgt_lang} distractors=${distractor_sets} ${distractors}"
  if [ -f "${expdir}/results/.mining.done" ] && [ "$(cat "${expdir}/results/.mining.done")" = "$opts" ]; then
    log "  already evaluated (remove ${expdir}/results/.mining.done to redo)"
  else
    # The exp dir's run lock keeps two evaluations from writing one results/.
    # shellcheck disable=SC2086
    python -m speechx.runlock "$expdir" -- speechx evaluate-mining --embeddings "$embed" \
      --data-dir "$test_set" --distractors $distractor_sets $distractors --tgt-lang "$tgt_lang" \
      --k "$k" --backend "$backend" --teacher "$teacher" "${cache_opt[@]}" --model-name "$model" \
      --out-dir "${expdir}/results" 2>&1 | tee "${expdir}/log/evaluate_mining.log"
    echo "$opts" > "${expdir}/results/.mining.done"
  fi
  log "Results: ${expdir}/results/summary.md"
  cat "${expdir}/results/summary.md"
fi

log "Done. Pairs: ${expdir}/mine  Results: ${expdir}/results"
