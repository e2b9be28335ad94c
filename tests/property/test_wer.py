"""WER and CER of speechx's scoring entry points equal jiwer's on random word lists; the rate is
corpus-level (total errors / total reference tokens) and its S/D/I/hit counts are consistent
with an independent Levenshtein distance."""

from __future__ import annotations

import jiwer
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from speechx.metrics.asr import TextNormalizer, align, cer, error_rate, rates_by_language, wer

from .conftest import PROFILE, asr_words, examples

VERBATIM = TextNormalizer.verbatim()


def levenshtein(a: list[str], b: list[str]) -> int:
    """Edit distance with unit costs (the textbook dynamic programme, independent of jiwer)."""
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


#: (references, hypotheses): 1-4 utterances, references non-empty, hypotheses may be empty
corpora = st.integers(1, 4).flatmap(
    lambda n: st.tuples(
        st.lists(st.lists(asr_words, min_size=1, max_size=8), min_size=n, max_size=n),
        st.lists(st.lists(asr_words, max_size=8), min_size=n, max_size=n),
    )
)


@settings(PROFILE, max_examples=examples(300), deadline=None)
@given(corpora)
def test_wer_and_cer_equal_jiwer(corpus: tuple[list[list[str]], list[list[str]]]) -> None:
    refs = [" ".join(r) for r in corpus[0]]
    hyps = [" ".join(h) for h in corpus[1]]
    w = wer(refs, hyps, VERBATIM)
    assert w.rate == pytest.approx(jiwer.wer(refs, hyps), abs=1e-12)
    out = jiwer.process_words(refs, hyps)
    assert (w.substitutions, w.deletions, w.insertions, w.hits) == (
        out.substitutions,
        out.deletions,
        out.insertions,
        out.hits,
    )
    c = cer(refs, hyps, VERBATIM)
    assert c.rate == pytest.approx(jiwer.cer(refs, hyps), abs=1e-12)


@settings(PROFILE, max_examples=examples(300), deadline=None)
@given(corpora)
def test_wer_is_corpus_level_and_counts_are_consistent(
    corpus: tuple[list[list[str]], list[list[str]]],
) -> None:
    ref_words, hyp_words = corpus
    refs, hyps = [" ".join(r) for r in ref_words], [" ".join(h) for h in hyp_words]
    w = wer(refs, hyps, VERBATIM)
    n_ref = sum(map(len, ref_words))
    distances = [levenshtein(r, h) for r, h in zip(ref_words, hyp_words, strict=True)]
    errors = w.substitutions + w.deletions + w.insertions
    assert w.ref_tokens == n_ref == w.hits + w.substitutions + w.deletions
    assert w.hyp_tokens == sum(map(len, hyp_words)) == w.hits + w.substitutions + w.insertions
    assert errors == sum(distances)  # minimal edits, utterance by utterance
    assert w.rate == errors / n_ref
    assert w.n_utts == len(refs)
    # the corpus rate is not the mean of utterance rates but their reference-weighted sum
    per_utt = align(refs, hyps, normalizer=VERBATIM)
    assert [a.errors for a in per_utt] == distances
    assert error_rate(per_utt, normalizer=VERBATIM) == w
    # one utterance at a time: summed errors over summed reference words
    singles = [wer(r, h, VERBATIM) for r, h in zip(refs, hyps, strict=True)]
    total = sum(s.substitutions + s.deletions + s.insertions for s in singles)
    assert total / sum(s.ref_tokens for s in singles) == pytest.approx(w.rate)


@settings(PROFILE, max_examples=examples(200), deadline=None)
@given(st.lists(st.lists(asr_words, min_size=1, max_size=8), min_size=1, max_size=4))
def test_identity_scores_zero(ref_words: list[list[str]]) -> None:
    refs = [" ".join(r) for r in ref_words]
    for metric in (wer, cer):
        r = metric(refs, refs, VERBATIM)
        assert (r.rate, r.substitutions, r.deletions, r.insertions) == (0.0, 0, 0, 0)
        assert r.hits == r.ref_tokens == r.hyp_tokens


@settings(PROFILE, max_examples=examples(150), deadline=None)
@given(corpora)
def test_default_normaliser_equals_jiwer_on_normalised_text(
    corpus: tuple[list[list[str]], list[list[str]]],
) -> None:
    norm = TextNormalizer()
    refs = [" ".join(r) for r in corpus[0]]
    hyps = [" ".join(h) for h in corpus[1]]
    n_refs, n_hyps = [norm(r) for r in refs], [norm(h) for h in hyps]
    assume(all(n_refs))  # jiwer refuses an empty reference; speechx scores it as insertions
    assert wer(refs, hyps).rate == pytest.approx(jiwer.wer(n_refs, n_hyps), abs=1e-12)
    assert cer(refs, hyps).rate == pytest.approx(jiwer.cer(n_refs, n_hyps), abs=1e-12)


@settings(PROFILE, max_examples=examples(100), deadline=None)
@given(corpora, st.data())
def test_per_language_counts_add_up_to_the_overall_rate(
    corpus: tuple[list[list[str]], list[list[str]]], data: st.DataObject
) -> None:
    ids = [f"u{i}" for i in range(len(corpus[0]))]
    refs = {u: " ".join(r) for u, r in zip(ids, corpus[0], strict=True)}
    hyps = {u: " ".join(h) for u, h in zip(ids, corpus[1], strict=True)}
    langs = {u: data.draw(st.sampled_from(["nl", "en"])) for u in ids}
    out = rates_by_language(refs, hyps, langs, normalizer=VERBATIM)
    for m in ("wer", "cer", "mer"):
        parts = [out[lang][m] for lang in sorted(set(langs.values()))]
        total = out["all"][m]
        assert sum(p.ref_tokens for p in parts) == total.ref_tokens
        for field in ("substitutions", "deletions", "insertions", "hits"):
            assert sum(getattr(p, field) for p in parts) == getattr(total, field)
