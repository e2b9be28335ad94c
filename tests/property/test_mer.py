"""MER invariants (DESIGN.md: edit distance over mixed tokens, each CJK character one token and
each other whitespace-separated word one token, divided by the reference tokens).

MER is not bounded by 1: like WER it counts insertions, so ``0 <= MER <= max(R, H) / R`` for R
reference and H hypothesis tokens, and ``MER <= 1`` whenever ``H <= R``."""

from __future__ import annotations

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from speechx.metrics.asr import (
    TextNormalizer,
    cer,
    is_cjk,
    mer,
    mixed_tokens,
    squeeze_cjk_spaces,
    wer,
)
from speechx.metrics.codeswitch import codeswitch_scores

from .conftest import PROFILE, cjk_chars, examples, latin_words
from .test_wer import levenshtein

VERBATIM = TextNormalizer.verbatim()
#: what may stand between two tokens when one of them is a CJK character
CJK_GAPS = ("", " ", "  ", "\u3000", "\t")

#: a mixed token sequence: CJK characters and Latin words
mixed_token_lists = st.lists(st.one_of(cjk_chars, latin_words), min_size=1, max_size=10)


def render(tokens: list[str], gaps: list[str]) -> str:
    """Join ``tokens``: one space between two non-CJK words, the given gap wherever a CJK
    character is on either side."""
    out = tokens[0]
    for prev, tok, gap in zip(tokens, tokens[1:], gaps, strict=False):
        out += gap if (is_cjk(prev) or is_cjk(tok)) else " "
        out += tok
    return out


def spacings(n: int) -> st.SearchStrategy[list[str]]:
    return st.lists(st.sampled_from(CJK_GAPS), min_size=n, max_size=n)


def tokens_of(text: str, norm: TextNormalizer) -> list[str]:
    """The MER tokens of ``text`` by the definition (CJK spacing squeezed, then normalised)."""
    return mixed_tokens(norm(squeeze_cjk_spaces(text)))


def _errors(r) -> int:
    return r.substitutions + r.deletions + r.insertions


@settings(PROFILE, max_examples=examples(300), deadline=None)
@given(mixed_token_lists, mixed_token_lists, st.sampled_from(["default", "verbatim"]))
def test_mer_is_a_normalised_edit_distance_within_its_bounds(
    ref: list[str], hyp: list[str], which: str
) -> None:
    norm = VERBATIM if which == "verbatim" else TextNormalizer()
    r_text, h_text = " ".join(ref), " ".join(hyp)
    r_tok, h_tok = tokens_of(r_text, norm), tokens_of(h_text, norm)
    assume(r_tok)
    m = mer(r_text, h_text, norm)
    n_r, n_h = len(r_tok), len(h_tok)
    assert (m.ref_tokens, m.hyp_tokens) == (n_r, n_h)
    assert _errors(m) == levenshtein(r_tok, h_tok)
    assert abs(n_r - n_h) <= _errors(m) <= max(n_r, n_h)
    assert 0.0 <= m.rate <= max(n_r, n_h) / n_r
    if n_h <= n_r:
        assert m.rate <= 1.0
    # edit distance is symmetric: swapping the sides keeps the errors, not the rate
    if h_tok:
        assert _errors(mer(h_text, r_text, norm)) == _errors(m)


@settings(PROFILE, max_examples=examples(200), deadline=None)
@given(mixed_token_lists, st.sampled_from(["default", "verbatim"]))
def test_mer_of_identical_text_is_zero(tokens: list[str], which: str) -> None:
    norm = VERBATIM if which == "verbatim" else TextNormalizer()
    text = " ".join(tokens)
    assume(tokens_of(text, norm))
    m = mer(text, text, norm)
    assert (m.rate, _errors(m)) == (0.0, 0)


@settings(PROFILE, max_examples=examples(300), deadline=None)
@given(mixed_token_lists, mixed_token_lists, st.data(), st.sampled_from(["default", "verbatim"]))
def test_mer_ignores_whitespace_next_to_cjk_characters(
    ref: list[str], hyp: list[str], data: st.DataObject, which: str
) -> None:
    norm = VERBATIM if which == "verbatim" else TextNormalizer()
    r1, r2 = (render(ref, data.draw(spacings(len(ref)))) for _ in range(2))
    h1, h2 = (render(hyp, data.draw(spacings(len(hyp)))) for _ in range(2))
    assume(tokens_of(r1, norm))
    a, b = mer(r1, h1, norm), mer(r2, h2, norm)
    assert (a.rate, a.ref_tokens, a.hyp_tokens, _errors(a)) == (
        b.rate,
        b.ref_tokens,
        b.hyp_tokens,
        _errors(b),
    ), (r1, r2, h1, h2)


@settings(PROFILE, max_examples=examples(200), deadline=None)
@given(st.lists(cjk_chars, min_size=1, max_size=10), st.lists(cjk_chars, max_size=10))
def test_mer_of_cjk_only_text_is_cer_without_spaces(ref: list[str], hyp: list[str]) -> None:
    r, h = " ".join(ref), "".join(hyp)
    assert mer(r, h, VERBATIM).rate == cer(r, h, VERBATIM, count_spaces=False).rate


@settings(PROFILE, max_examples=examples(200), deadline=None)
@given(st.lists(latin_words, min_size=1, max_size=8), st.lists(latin_words, max_size=8))
def test_mer_of_text_without_cjk_is_wer(ref: list[str], hyp: list[str]) -> None:
    r, h = " ".join(ref), " ".join(hyp)
    m, w = mer(r, h), wer(r, h)
    assert (m.rate, _errors(m), m.ref_tokens) == (w.rate, _errors(w), w.ref_tokens)


@st.composite
def tagged_corpora(draw: st.DrawFn) -> tuple[list[str], list[str], list[list[str]]]:
    """Code-switched references (zh characters, en/nl words) with one tag per mixed token."""
    refs, hyps, tags = [], [], []
    for _ in range(draw(st.integers(1, 4))):
        tokens = draw(mixed_token_lists)
        refs.append(render(tokens, draw(spacings(len(tokens)))))
        tags.append(
            [
                "zh" if is_cjk(t) else draw(st.sampled_from(["en", "nl"]))
                for t in mixed_tokens(refs[-1])
            ]
        )
        hyps.append(" ".join(draw(st.lists(st.one_of(cjk_chars, latin_words), max_size=10))))
    return refs, hyps, tags


@settings(PROFILE, max_examples=examples(200), deadline=None)
@given(tagged_corpora(), st.integers(1, 3))
def test_codeswitch_counts_add_up(corpus, window: int) -> None:
    refs, hyps, tags = corpus
    norm = VERBATIM  # keeps every token, so every reference stays non-empty
    s = codeswitch_scores(refs, hyps, tags, normalizer=norm, window=window)
    total = mer(refs, hyps, norm)
    assert s.mer == total
    # per-language: reference tokens and errors add up to the MER's (references non-empty)
    assert sum(p.ref_tokens for p in s.per_lang.values()) == total.ref_tokens
    assert sum(p.errors for p in s.per_lang.values()) == _errors(total)
    assert s.unattributed_insertions == 0
    for p in s.per_lang.values():
        assert p.rate == pytest.approx(p.errors / p.ref_tokens)
    # switch points: switch plus non-switch tokens and errors are all of them
    sp = s.switch_point
    assert sp.switch_tokens + sp.other_tokens == total.ref_tokens
    assert sp.errors + sp.other_errors == _errors(total)
    if sp.n_switches == 0:
        assert sp.switch_tokens == 0
    # confusion: every substitution is decided or undecided exactly once
    decided = sum(s.confusion.counts.values())
    assert decided + sum(s.confusion.undecided.values()) == total.substitutions
