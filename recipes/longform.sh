#!/usr/bin/env bash
# Shared stages of a long-form search recipe: find where in long recordings a sentence is said,
# from its text in any language. Called from egs/<corpus>/run_longform.sh, in that directory
# (data/ and exp/ are relative to it). The test sets and the model come from the corpus's
# distillation recipe (run.sh). A finished stage is skipped on a rerun (its marker records the
# options it ran with; other options redo it).
#
#   Stage 1: long recordings from the test sets' utterances, with pauses, distractor speech and
#            low noise (speechx prepare longform) -> data/${name}/ (+ truth.tsv)
#   Stage 2: index every recording in windows with the speech encoder (speechx index-audio,
#            --nj jobs through ${decode_cmd}) -> exp/<tag>/index/
#   Stage 3: text queries in each of ${query_langs} (and spoken ones) against the index
#            (speechx evaluate-longform) -> exp/<tag>/results/longform.json + summary.md
set -euo pipefail

stage=1
stop_stage=100
tag=longform
model=exp/demo/model                 # the speech encoder (run.sh leaves it there)
test_sets="data/fillets_nl_test data/synth_en_test data/synth_de_test"
name=longform_test                   # the long-recording data dir, data/<name>
minutes=3                            # length of each long recording
seed=0
window=6                             # seconds
hop=2                                # seconds (fixed windows; long speech regions with energy/vad)
boundaries=energy                    # fixed | energy | vad
backend=exact                        # exact | faiss-flat | faiss-ivf | faiss-hnsw
nj=1                                 # index jobs (the recordings are split into nj parts)
decode_cmd=${decode_cmd:-$(dirname "${BASH_SOURCE[0]}")/utils/run.sh}  # their launcher (cmd.sh)
teacher=use-multilingual
query_langs="en nl de"
audio_queries=true                   # also query with another rendering of each sentence
_recipe_vars="stage stop_stage tag model test_sets name minutes seed window hop boundaries backend nj decode_cmd teacher query_langs audio_queries"

log() { echo "$(date '+%Y-%m-%dT%H:%M:%S') ($(basename "$0"):${BASH_LINENO[0]}) $*"; }

# shellcheck source=recipes/parse_options.sh
. "$(dirname "${BASH_SOURCE[0]}")/parse_options.sh"

expdir=exp/${tag}
mkdir -p "${expdir}/log"
data=data/${name}

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "Stage 1: long recordings from ${test_sets} -> ${data}"
  opts="sets=${test_sets} minutes=${minutes} seed=${seed}"
  if [ -f "${data}/.done" ] && [ "$(cat "${data}/.done")" = "$opts" ]; then
    log "  already prepared (remove ${data}/.done to redo)"
  else
    # shellcheck disable=SC2086
    speechx prepare longform --data-dirs $test_sets --out-dir data --name "$name" \
      --minutes "$minutes" --seed "$seed" --no-progress 2>&1 | tee "${expdir}/log/prepare_longform.log"
    echo "$opts" > "${data}/.done"
  fi
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ]; then
  log "Stage 2: index ${data} with ${model} (${boundaries} windows of ${window} s, hop ${hop} s, ${nj} jobs)"
  [ -f "${model}/config.json" ] || { echo "$0: no model at ${model} (run ./run.sh first, or pass --model)" >&2; exit 1; }
  opts="model=${model} data=$(cat "${data}/.done" 2>/dev/null) window=${window} hop=${hop} boundaries=${boundaries} backend=${backend}"
  if [ -f "${expdir}/index/.done" ] && [ "$(cat "${expdir}/index/.done")" = "$opts" ]; then
    log "  already indexed (remove ${expdir}/index to redo)"
  else
    speechx index-audio --model "$model" --data-dir "$data" --out "${expdir}/index" \
      --window "$window" --hop "$hop" --boundaries "$boundaries" --backend "$backend" \
      --nj "$nj" --cmd "$decode_cmd" 2>&1 | tee "${expdir}/log/index_audio.log"
    echo "$opts" > "${expdir}/index/.done"
  fi
fi

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  log "Stage 3: evaluate text queries in ${query_langs}$([ "$audio_queries" = true ] && echo ' and spoken queries')"
  extra=()
  [ "$audio_queries" = true ] && extra+=(--audio-queries --model "$model")
  # shellcheck disable=SC2086
  speechx evaluate-longform --index "${expdir}/index" --truth "$data" --query-langs $query_langs \
    --teacher "$teacher" --out-dir "${expdir}/results" --model-name "$model" "${extra[@]}" 2>&1 \
    | tee "${expdir}/log/evaluate_longform.log"
  log "Results: ${expdir}/results/longform.json and ${expdir}/results/summary.md"
fi
