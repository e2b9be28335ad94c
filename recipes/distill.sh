#!/usr/bin/env bash
# Shared stages of a speech -> text-space distillation recipe. Called from egs/<corpus>/run.sh,
# in that directory (data/ and exp/ are relative to it). Every stage is idempotent: a finished
# stage is skipped on a rerun, and an interrupted one resumes.
#
#   Stage 1: prepare the real corpus (Kaldi dirs under data/)
#   Stage 2: synthesize the parallel synthetic corpus with espeak-ng (same sentence split); with
#            text_corpus set, also cut that text into a sentence table (data_prep.textcorpus;
#            no sentence of a data/*_dev or data/*_test dir is kept) and speak it into
#            data/textsynth_<lang>_train
#   Stage 3: validate every data dir
#   Stage 4: teacher embeddings of transcripts and translations (cached by text); with a speech
#            teacher in the config (data.speech_teacher), its embeddings of the speech too
#   Stage 5: distill the speech encoder into the teacher space -> exp/<tag>/model
#   Stage 6: encode the test sets, evaluate retrieval -> exp/<tag>/results
# Stages 2, 4 and 6 (with encode_test=true) split their work into nj jobs, run through
# $train_cmd / $decode_cmd (set in egs/<corpus>/cmd.sh; docs/parallel.md).
set -euo pipefail
# shellcheck source=recipes/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

stage=1
stop_stage=100
config=conf/demo.yaml      # YAML: a "recipe:" section for these stages, the rest is the DistillConfig
tag=""                     # experiment tag; defaults to the config's file name
nj=2                       # parallel jobs: synthesis, teacher embedding, encoding (Kaldi-style split<nj>)
train_cmd=${train_cmd:-$(dirname "${BASH_SOURCE[0]}")/utils/run.sh}   # launcher of CPU jobs (cmd.sh)
decode_cmd=${decode_cmd:-$(dirname "${BASH_SOURCE[0]}")/utils/run.sh} # launcher of encoding jobs (cmd.sh)
encode_test=false          # stage 6 also writes exp/<tag>/embed/<set>/{ids.txt,embeddings.npy} (nj jobs)
nproc=1                    # >1 trains with torchrun (DDP: NCCL on GPUs, gloo on CPU)
train_args=""              # overrides of the training config, e.g. "max_steps=100 optim.lr_head=1e-3"
data_option_defaults       # corpus corpus_dir speech_langs text_langs synth_langs synth_max_sentences teacher (lib.sh)
text_corpus=""             # optional LANG:PATH text sources (speechx prepare textcorpus --source), blank-separated
text_corpus_max=20000      # sentences kept per language of the text corpus (0 = all)
text_corpus_langs=""       # languages spoken from it (data/textsynth_<lang>_train); empty = those of text_corpus
cache_dir=""               # teacher embedding cache; empty = $SPEECHX_CACHE or ~/.cache/speechx
test_sets=""               # empty = <corpus>_<lang>_test and synth_<lang>_test for the langs above
cascade=""                 # stage 6 peer: a Whisper (e.g. whisper-base) transcribes, the teacher embeds; empty = none
cascade_sets=""            # sets the cascade is scored on; empty = the real-speech test sets (<corpus>_<lang>_test)
prep_args=""               # extra options of `speechx prepare <corpus>`, e.g. "--nj 16 --audio-format source"
dry_run=false              # true (or a bare --dry-run): check config, corpus, data dirs, model and teacher; train nothing
_recipe_vars="stage stop_stage config tag nj train_cmd decode_cmd encode_test nproc train_args corpus corpus_dir speech_langs text_langs synth_langs synth_max_sentences text_corpus text_corpus_max text_corpus_langs teacher cache_dir test_sets cascade cascade_sets prep_args dry_run"

# The config's recipe: section sets defaults; command-line options override them.
load_recipe_config "$@"
# A bare "--dry-run" means "--dry-run true".
bare_flag --dry-run "$@"
set -- "${args[@]}"
# shellcheck source=recipes/parse_options.sh
. "$(dirname "${BASH_SOURCE[0]}")/parse_options.sh"

tag=${tag:-$(basename "$config" .yaml)}
expdir=exp/${tag}
cache_opt=()
[ -n "$cache_dir" ] && cache_opt=(--cache-dir "$cache_dir")

sets=()
for l in $speech_langs; do for s in train dev test; do sets+=("data/${corpus}_${l}_${s}"); done; done
for l in $synth_langs; do for s in train dev test; do sets+=("data/synth_${l}_${s}"); done; done
# The text corpus: its sources (read without glob expansion) and the languages spoken from it.
tc_sources=()
read -r -a tc_sources <<< "$text_corpus"
tc_langs=""
for l in ${text_corpus_langs:-$(for s in "${tc_sources[@]}"; do echo "${s%%:*}"; done)}; do
  [[ " $tc_langs " == *" $l "* ]] || tc_langs+=" $l"
done
for l in $tc_langs; do sets+=("data/textsynth_${l}_train"); done
if [ -z "$test_sets" ]; then
  for l in $speech_langs; do test_sets+=" data/${corpus}_${l}_test"; done
  for l in $synth_langs; do test_sets+=" data/synth_${l}_test"; done
fi

if [ "$dry_run" = true ]; then
  log "Dry run: checking ${config} (corpus ${corpus}${corpus_dir:+ in ${corpus_dir}}); nothing is prepared or trained"
  rc=0
  # shellcheck disable=SC2086
  speechx check-recipe --kind distill --config "$config" --corpus "$corpus" --corpus-dir "$corpus_dir" \
    --speech-langs $speech_langs --text-langs $text_langs --synth-langs $synth_langs \
    --teacher "$teacher" --nproc "$nproc" --data-dirs $test_sets ${train_args:+--train-args $train_args} || rc=$?
  exit "$rc"
fi
mkdir -p "${expdir}/log"

if [ "$stage" -le 1 ] && [ "$stop_stage" -ge 1 ]; then
  log "Stage 1: prepare ${corpus} (speech: ${speech_langs}; text: ${text_langs})"
  # The marker records the options, so a change of languages prepares the corpus again.
  prep_opts="speech=${speech_langs} text=${text_langs} dir=${corpus_dir}${prep_args:+ args=${prep_args}}"
  if [ -f "data/.${corpus}.done" ] && [ "$(cat "data/.${corpus}.done")" = "$prep_opts" ]; then
    log "  already prepared (remove data/.${corpus}.done to redo)"
  else
    corpus_opt=()
    [ -n "$corpus_dir" ] && corpus_opt=(--corpus-dir "$corpus_dir")
    # shellcheck disable=SC2086
    speechx prepare "$corpus" "${corpus_opt[@]}" --out-dir data \
      --speech-langs $speech_langs --text-langs $text_langs $prep_args 2>&1 | tee "${expdir}/log/prepare_${corpus}.log"
    echo "$prep_opts" > "data/.${corpus}.done"
  fi
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ] && [ -n "$synth_langs" ]; then
  log "Stage 2: synthesize ${synth_langs} with espeak-ng (nj=${nj})"
  # Resumable by itself: clips already written are kept.
  max_opt=()
  [ "$synth_max_sentences" -gt 0 ] && max_opt=(--max-sentences "$synth_max_sentences")
  # shellcheck disable=SC2086
  speechx prepare synth --sentences "data/local/${corpus}_sentences.tsv" --out-dir data \
    --audio-dir data/audio/synth --langs $synth_langs "${max_opt[@]}" --nj "$nj" --cmd "$train_cmd" 2>&1 \
    | tee "${expdir}/log/prepare_synth.log"
fi

if [ "$stage" -le 2 ] && [ "$stop_stage" -ge 2 ] && [ ${#tc_sources[@]} -gt 0 ]; then
  log "Stage 2: text corpus ->${tc_langs} data/textsynth_<lang>_train (nj=${nj})"
  # The table is rebuilt only when its inputs change (sources, options, the dev/test texts);
  # clips already written are kept.
  src_opts=()
  for s in "${tc_sources[@]}"; do src_opts+=(--source "$s"); done
  excl_opts=()
  for d in data/*_dev data/*_test; do [ -d "$d" ] && excl_opts+=("$d"); done
  [ ${#excl_opts[@]} -gt 0 ] && excl_opts=(--exclude-dirs "${excl_opts[@]}")
  max_opt=()
  [ "$text_corpus_max" -gt 0 ] && max_opt=(--max-per-lang "$text_corpus_max")
  speechx prepare textcorpus "${src_opts[@]}" --out-dir data "${max_opt[@]}" "${excl_opts[@]}" \
    --no-progress 2>&1 | tee "${expdir}/log/prepare_textcorpus.log"
  # shellcheck disable=SC2086
  speechx prepare synth --sentences data/local/textcorpus_sentences.tsv --name textsynth \
    --splits train --out-dir data --audio-dir data/audio/textsynth --langs $tc_langs --nj "$nj" \
    --cmd "$train_cmd" 2>&1 | tee "${expdir}/log/prepare_textsynth.log"
fi

# Only the dirs that preparation produced (a language may lack a split).
existing=()
for s in "${sets[@]}"; do [ -d "$s" ] && existing+=("$s"); done
sets=("${existing[@]}")

if [ "$stage" -le 3 ] && [ "$stop_stage" -ge 3 ]; then
  log "Stage 3: validate data dirs"
  speechx validate-data "${sets[@]}"
fi

if [ "$stage" -le 4 ] && [ "$stop_stage" -ge 4 ]; then
  log "Stage 4: teacher embeddings (${teacher}; nj=${nj})"
  fields=(text)
  for l in $text_langs; do fields+=("text.$l"); done
  speechx teacher-embed --teacher "$teacher" "${cache_opt[@]}" --skip-missing --fields "${fields[@]}" \
    --nj "$nj" --cmd "$train_cmd" --log-dir "${expdir}/log/teacher_embed" -- "${sets[@]}" 2>&1 \
    | tee "${expdir}/log/teacher_embed.log"
  # Speech-to-speech distillation: the speech teacher's targets for the config's "fields: [speech]"
  # training dirs and its dev dirs (nothing when the config names no data.speech_teacher).
  # shellcheck disable=SC2086
  speechx teacher-embed --config "$config" ${train_args:+--train-args $train_args} \
    --nj "$nj" --cmd "$train_cmd" --log-dir "${expdir}/log/speech_teacher" 2>&1 \
    | tee "${expdir}/log/speech_teacher.log"
fi

if [ "$stage" -le 5 ] && [ "$stop_stage" -ge 5 ]; then
  log "Stage 5: distill -> ${expdir}"
  if [ -f "${expdir}/model/.done" ]; then
    log "  already trained (remove ${expdir}/model to retrain)"
  else
    run_training distill --teacher "$teacher"
  fi
fi

if [ "$stage" -le 6 ] && [ "$stop_stage" -ge 6 ]; then
  if [ "$encode_test" = true ]; then
    for set_dir in $test_sets; do
      name=$(basename "$set_dir")
      log "Stage 6: encode ${name} -> ${expdir}/embed/${name} (nj=${nj})"
      speechx encode --model "${expdir}/model" --data-dir "$set_dir" --out "${expdir}/embed/${name}" \
        --nj "$nj" --cmd "$decode_cmd" --log-dir "${expdir}/log/encode_${name}"
    done
  fi
  log "Stage 6: evaluate retrieval on:${test_sets}${cascade:+ (peer: cascade ${cascade})}"
  # The cascade's transcripts are cached in results/cascade/<set>/, so a rerun does not decode.
  cascade_opt=()
  if [ -n "$cascade" ]; then
    # Whisper decodes 30-s padded windows: slow on a CPU, so by default only the real speech.
    if [ -z "$cascade_sets" ]; then
      for l in $speech_langs; do cascade_sets+=" ${corpus}_${l}_test"; done
    fi
    # shellcheck disable=SC2206
    cascade_opt=(--cascade "$cascade" --cascade-sets $cascade_sets)
  fi
  # The exp dir's run lock (as training holds it) keeps two evaluations from writing one results/.
  # shellcheck disable=SC2086
  python -m speechx.runlock "$expdir" -- speechx evaluate-retrieval --model "${expdir}/model" --teacher "$teacher" "${cache_opt[@]}" \
    --out-dir "${expdir}/results" --text-langs $text_langs "${cascade_opt[@]}" --data-dirs $test_sets \
    2>&1 | tee "${expdir}/log/evaluate.log"
  log "Results: ${expdir}/results/summary.md"
  cat "${expdir}/results/summary.md"
fi

log "Done. Model: ${expdir}/model  Results: ${expdir}/results"
