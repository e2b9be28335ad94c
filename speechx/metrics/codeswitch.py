"""Code-switching metrics: MER, per-language error rates, switch-point errors, language confusion.

Every reference token carries a language tag (the ``text.langtags`` file of a code-switched data
dir: one tag per :func:`~speechx.metrics.asr.mixed_tokens` token of the transcript)::

    s = codeswitch_scores(["ik wil een cookie"], ["ik wil een koekje"], [["nl", "nl", "nl", "en"]])
    s.mer.rate                 # 0.25: exactly speechx.metrics.asr.mer
    s.per_lang["en"].rate      # 1.0: the one English token was substituted
    s.switch_point.rate        # 0.5: of the tokens next to the nl|en switch ("een", "cookie")
    s.confusion.count("en", "nl")  # 1 when the lexicons say "koekje" is Dutch and not English

Definitions (all corpus-level: summed over utterances, then divided):

* **MER**: edit distance over mixed tokens (each CJK character one token, each other
  whitespace-separated word one token) / reference tokens, after the
  :class:`~speechx.metrics.asr.TextNormalizer`; identical to :func:`speechx.metrics.asr.mer`.
* **Per-language error rate** of language L: (substitutions and deletions of reference tokens
  tagged L + insertions attributed to L) / reference tokens tagged L. An insertion is attributed
  to the tag of the nearest *preceding* reference token of its utterance (the hypothesis ran on
  after that token), or to the first reference token's tag when it comes before every reference
  token. Insertions into an utterance without reference tokens have no language; they count in
  the MER and in :attr:`CodeSwitchScores.unattributed_insertions`. So, whenever every
  reference is non-empty, the per-language errors add up to the MER's errors.
* **Switch-point error rate** (after PIER's point-of-interest error rate): a *switch* is a
  boundary between two adjacent reference tokens with different tags. The *switch tokens* are
  the ``window`` tokens on each side of a switch (``window=1``: the last token before and the
  first token after it), each counted once when windows overlap. The rate is (substitutions and
  deletions of switch tokens + insertions inside a switch window) / switch tokens, where an
  insertion is inside a window when it lies in a gap less than ``window`` tokens from the switch
  (``window=1``: exactly at the switch, between its two tokens). Every other error is a
  non-switch error: :attr:`SwitchPointRate.other_rate` is the rate over the remaining tokens,
  and switch plus non-switch errors are all the errors.
* **Language confusion**: for every substitution, the language of the hypothesis token is
  decided by :func:`token_language` (script when exactly one language of the pair is written in
  CJK, otherwise the lexicons: the token must be in exactly one language's lexicon); when decided,
  ``count(A, B)`` is incremented for reference tag A. ``rate(A, B)`` is ``count(A, B)`` /
  reference tokens tagged A: how often a reference token of A is recognised as a word of B.
  Substitutions whose hypothesis language cannot be decided are counted in ``undecided[A]``.

Tags refer to the raw transcript's tokens; normalisation may drop a token (a lone punctuation
mark) or split one (``well-known`` -> ``well known``): each normalised piece keeps the tag of the
raw token it came from (:func:`normalize_tagged`).
"""

from __future__ import annotations

import difflib
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from speechx.errors import MetricError
from speechx.metrics.asr import (
    AlignedToken,
    Alignment,
    ErrorRate,
    TextNormalizer,
    align,
    error_rate,
    is_cjk,
    mixed_tokens,
    squeeze_cjk_spaces,
)

#: language codes written in CJK script (each character one MER token)
CJK_SCRIPT_LANGS = frozenset({"zh", "cmn", "yue", "wuu", "nan", "ja", "ko"})


# ------------------------------------------------------------------------------ tagging
def normalize_tagged(
    text: str,
    tags: Sequence[str],
    normalizer: TextNormalizer | None = None,
    *,
    utt_id: str | None = None,
) -> tuple[list[str], list[str]]:
    """Normalise a tagged transcript; each normalised MER token keeps its raw token's tag.

    Args:
        text: the raw transcript (as in the data dir's ``text``).
        tags: one language tag per ``mixed_tokens(text)`` token.
        normalizer: defaults to ``TextNormalizer()``.
        utt_id: named in error messages.

    Returns:
        ``(tokens, tags)``: the tokens are exactly those :func:`~speechx.metrics.asr.mer` scores,
        ``mixed_tokens(normalizer(squeeze_cjk_spaces(text)))``, and the
        tags are as many.

    Raises:
        MetricError: the number of tags differs from the number of raw MER tokens, or a tag is
            empty or holds whitespace.

    Example:
        >>> normalize_tagged("Ik heb een well-known idee !", ["nl", "nl", "nl", "en", "nl", "nl"])
        (['ik', 'heb', 'een', 'well', 'known', 'idee'], ['nl', 'nl', 'nl', 'en', 'en', 'nl'])
    """
    norm = normalizer or TextNormalizer()
    where = f"utterance {utt_id!r}" if utt_id is not None else "transcript"
    raw = mixed_tokens(text)
    tags = list(tags)
    if len(raw) != len(tags):
        raise MetricError(
            f"{where}: {len(tags)} language tags for {len(raw)} MER tokens of {text!r}"
        )
    for t in tags:
        if not isinstance(t, str) or not t or len(t.split()) != 1:
            raise MetricError(f"{where}: language tag {t!r} is not one code")
    pieces: list[str] = []
    piece_tags: list[str] = []
    for tok, tag in zip(raw, tags, strict=True):
        for p in mixed_tokens(norm(tok)):
            pieces.append(p)
            piece_tags.append(tag)
    target = mixed_tokens(norm(squeeze_cjk_spaces(text)))
    if pieces == target:
        return target, piece_tags
    # Normalising token by token differed from normalising the whole line (a rare context
    # effect, e.g. an apostrophe between a CJK character and a letter): carry the tags over
    # by aligning the two token sequences.
    out: list[str] = []
    matcher = difflib.SequenceMatcher(a=pieces, b=target, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            out += piece_tags[i1:i2]
        elif op != "delete":
            for k in range(j2 - j1):
                if i2 > i1:
                    out.append(piece_tags[min(i1 + k, i2 - 1)])
                else:
                    out.append(piece_tags[i1 - 1] if i1 > 0 else (piece_tags or tags)[0])
    return target, out


def switch_boundaries(tags: Sequence[str]) -> list[int]:
    """Positions ``b`` where ``tags[b] != tags[b - 1]``: the switch lies before token ``b``.

    Example:
        >>> switch_boundaries(["nl", "nl", "en", "nl"])
        [2, 3]
    """
    return [b for b in range(1, len(tags)) if tags[b] != tags[b - 1]]


def check_tag_counts(refs: Mapping[str, str], tags: Mapping[str, Sequence[str]]) -> int:
    """Check that every transcript has exactly one language tag per MER token.

    This is the check behind a ``text.langtags`` file: the code-switching evaluator runs it on
    reading a data dir, and the corpus preparers before writing one.

    Args:
        refs: utterance id -> raw transcript (the ``text`` of a data dir).
        tags: utterance id -> its tags; utterances not in ``refs`` are not looked at.

    Returns:
        The number of utterances checked.

    Raises:
        MetricError: an utterance of ``refs`` has no tags, or a number of tags that differs from
            the :func:`~speechx.metrics.asr.mixed_tokens` of its transcript (the utterance, both
            counts and the transcript are named).

    Example:
        >>> check_tag_counts({"u1": "我 ok"}, {"u1": ["zh", "en"]})
        1
    """
    for utt, text in refs.items():
        if utt not in tags:
            raise MetricError(f"utterance {utt!r} has no language tags")
        n_tags, n_tokens = len(tags[utt]), len(mixed_tokens(text))
        if n_tags != n_tokens:
            raise MetricError(
                f"utterance {utt!r} has {n_tags} language tags but its text has {n_tokens} MER "
                f"tokens ({text!r})"
            )
    return len(refs)


# ---------------------------------------------------------------------------- alignments
@dataclass(frozen=True)
class TaggedAlignment:
    """One utterance's mixed-token alignment with a language and a switch flag per column.

    Attributes:
        alignment: the :class:`~speechx.metrics.asr.Alignment` (unit ``mixed``).
        tags: per column, the reference token's tag (``C``/``S``/``D``) or the tag an insertion
            is attributed to (``None`` only for insertions into an empty reference).
        at_switch: per column, whether the column is a switch token or an insertion inside a
            switch window.
        ref_tags: the tags of the reference tokens, in order.
        n_switches: switches (tag changes) in the reference.
    """

    alignment: Alignment
    tags: tuple[str | None, ...]
    at_switch: tuple[bool, ...]
    ref_tags: tuple[str, ...]
    n_switches: int

    @property
    def utt_id(self) -> str:
        return self.alignment.utt_id

    @property
    def columns(self) -> tuple[AlignedToken, ...]:
        return self.alignment.tokens


def tag_alignment(
    alignment: Alignment, ref_tags: Sequence[str], window: int = 1
) -> TaggedAlignment:
    """Attach language tags and switch-point flags to the columns of one alignment.

    Args:
        alignment: a mixed-token alignment (from :func:`speechx.metrics.asr.align`).
        ref_tags: one tag per reference token of the alignment.
        window: switch tokens on each side of a switch (see the module docstring).

    Returns:
        A :class:`TaggedAlignment`.

    Raises:
        MetricError: ``window < 1``, or a tag count that differs from the reference tokens.
    """
    if window < 1:
        raise MetricError(f"switch window must be >= 1 token, got {window}")
    n_ref = len(alignment.ref_tokens)
    if len(ref_tags) != n_ref:
        raise MetricError(
            f"utterance {alignment.utt_id!r}: {len(ref_tags)} tags for {n_ref} reference tokens"
        )
    bounds = switch_boundaries(ref_tags)
    switch_tokens: set[int] = set()
    switch_gaps: set[int] = set()
    for b in bounds:
        switch_tokens.update(range(max(0, b - window), min(n_ref, b + window)))
        switch_gaps.update(range(b - window + 1, b + window))
    tags: list[str | None] = []
    flags: list[bool] = []
    r = 0  # reference tokens seen so far (= the gap an insertion sits in)
    for col in alignment.tokens:
        if col.ref is not None:
            tags.append(ref_tags[r])
            flags.append(r in switch_tokens)
            r += 1
        else:
            if r > 0:
                tags.append(ref_tags[r - 1])
            else:
                tags.append(ref_tags[0] if n_ref else None)
            flags.append(r in switch_gaps)
    return TaggedAlignment(alignment, tuple(tags), tuple(flags), tuple(ref_tags), len(bounds))


# ------------------------------------------------------------------------------ results
class _ErrorCounts:
    """Shared by the rate dataclasses below, which hold these three counts."""

    substitutions: int
    deletions: int
    insertions: int

    @property
    def errors(self) -> int:
        """Substitutions + deletions + insertions."""
        return self.substitutions + self.deletions + self.insertions

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (rates are ``None`` when undefined)."""
        return _finite(asdict(self))


@dataclass(frozen=True)
class LanguageRate(_ErrorCounts):
    """The error rate of the reference tokens of one language.

    Attributes:
        lang: the language tag.
        rate: ``(substitutions + deletions + insertions) / ref_tokens`` (``nan`` without tokens).
        ref_tokens: reference tokens tagged ``lang``.
        hits, substitutions, deletions: operations on those tokens.
        insertions: insertions attributed to ``lang``.
    """

    lang: str
    rate: float
    ref_tokens: int
    hits: int
    substitutions: int
    deletions: int
    insertions: int


@dataclass(frozen=True)
class SwitchPointRate(_ErrorCounts):
    """Errors at language switches, and everywhere else.

    Attributes:
        rate: errors at switch points / switch tokens (``nan`` when there is no switch).
        window: switch tokens on each side of a switch.
        n_switches: tag changes in the references.
        switch_tokens: reference tokens within the windows.
        substitutions, deletions: on switch tokens.
        insertions: insertions inside a switch window.
        other_rate: the remaining errors / the remaining reference tokens.
        other_tokens, other_errors: the remaining reference tokens and errors.
    """

    rate: float
    window: int
    n_switches: int
    switch_tokens: int
    substitutions: int
    deletions: int
    insertions: int
    other_rate: float
    other_tokens: int
    other_errors: int


@dataclass(frozen=True)
class LanguageConfusion:
    """How often a reference token of language A was recognised as a word of language B.

    Attributes:
        languages: the languages considered, in order.
        counts: ``(A, B)`` -> substitutions of an A-tagged reference token by a hypothesis token
            decided to be B (``A == B``: a substitution within the language).
        ref_tokens: A -> reference tokens tagged A.
        undecided: A -> substitutions whose hypothesis language could not be decided.
    """

    languages: tuple[str, ...]
    counts: Mapping[tuple[str, str], int]
    ref_tokens: Mapping[str, int]
    undecided: Mapping[str, int]

    def count(self, ref_lang: str, hyp_lang: str) -> int:
        """Substitutions of a ``ref_lang`` token by a ``hyp_lang`` word."""
        return int(self.counts.get((ref_lang, hyp_lang), 0))

    def rate(self, ref_lang: str, hyp_lang: str) -> float:
        """``count(ref_lang, hyp_lang) / ref_tokens[ref_lang]`` (``nan`` without tokens)."""
        n = self.ref_tokens.get(ref_lang, 0)
        return self.count(ref_lang, hyp_lang) / n if n else math.nan

    def cross_rate(self, ref_lang: str) -> float:
        """The share of ``ref_lang`` reference tokens recognised as a word of another language."""
        n = self.ref_tokens.get(ref_lang, 0)
        cross = sum(c for (a, b), c in self.counts.items() if a == ref_lang and b != ref_lang)
        return cross / n if n else math.nan

    def to_dict(self) -> dict[str, Any]:
        """``{"languages", "counts": {A: {B: n}}, "rates": {A: {B: x}}, "cross_rate": {A: x},
        "ref_tokens": {A: n}, "undecided": {A: n}}`` (``None`` for undefined rates)."""
        langs = list(self.languages)
        return {
            "languages": langs,
            "counts": {a: {b: self.count(a, b) for b in langs} for a in langs},
            "rates": {a: {b: _none_if_nan(self.rate(a, b)) for b in langs} for a in langs},
            "cross_rate": {a: _none_if_nan(self.cross_rate(a)) for a in langs},
            "ref_tokens": {a: int(self.ref_tokens.get(a, 0)) for a in langs},
            "undecided": {a: int(self.undecided.get(a, 0)) for a in langs},
        }


@dataclass(frozen=True)
class CodeSwitchScores:
    """Every code-switching score of a set of utterances.

    Attributes:
        mer: the mixed error rate (with its counts and normaliser).
        per_lang: tag -> :class:`LanguageRate`, sorted by tag.
        switch_point: the :class:`SwitchPointRate`.
        confusion: the :class:`LanguageConfusion`.
        unattributed_insertions: insertions into empty references (no language to blame).
        alignments: one :class:`TaggedAlignment` per utterance, in input order.
    """

    mer: ErrorRate
    per_lang: dict[str, LanguageRate]
    switch_point: SwitchPointRate
    confusion: LanguageConfusion
    unattributed_insertions: int = 0
    alignments: list[TaggedAlignment] = field(default_factory=list, repr=False)

    @property
    def n_utts(self) -> int:
        return self.mer.n_utts

    def to_dict(self) -> dict[str, Any]:
        """The ``codeswitch.json`` row fields: ``n_utts``, ``mer``, ``per_lang`` (tag -> rate),
        ``switch_point_error``, then the details ``n_ref_tokens``, ``substitutions``,
        ``deletions``, ``insertions``, ``per_lang_detail``, ``switch_point``, ``confusion``,
        ``unattributed_insertions`` and ``normalizer``. Undefined rates are ``None``."""
        return {
            "n_utts": self.n_utts,
            "mer": _none_if_nan(self.mer.rate),
            "per_lang": {k: _none_if_nan(v.rate) for k, v in self.per_lang.items()},
            "switch_point_error": _none_if_nan(self.switch_point.rate),
            "non_switch_error": _none_if_nan(self.switch_point.other_rate),
            "n_ref_tokens": self.mer.ref_tokens,
            "substitutions": self.mer.substitutions,
            "deletions": self.mer.deletions,
            "insertions": self.mer.insertions,
            "per_lang_detail": {k: v.to_dict() for k, v in self.per_lang.items()},
            "switch_point": self.switch_point.to_dict(),
            "confusion": self.confusion.to_dict(),
            "unattributed_insertions": self.unattributed_insertions,
            "normalizer": dict(self.mer.normalizer),
        }


# ------------------------------------------------------------------------------ scoring
def codeswitch_scores(
    references: Sequence[str],
    hypotheses: Sequence[str],
    tags: Sequence[Sequence[str]],
    *,
    ids: Sequence[str] | None = None,
    normalizer: TextNormalizer | None = None,
    lexicons: Mapping[str, Iterable[str]] | None = None,
    languages: Sequence[str] | None = None,
    window: int = 1,
) -> CodeSwitchScores:
    """Score code-switched hypotheses: MER, per-language rates, switch points, confusion.

    Args:
        references: raw reference transcripts.
        hypotheses: the matching hypotheses (an empty string is all deletions).
        tags: per reference, one language tag per ``mixed_tokens(reference)`` token.
        ids: utterance ids, named in errors and kept in the alignments.
        normalizer: applied to both sides (default ``TextNormalizer()``).
        lexicons: language -> words (normalised the same way, see :func:`build_lexicon`) that
            decide a hypothesis token's language for the confusion matrix.
        languages: the languages of the confusion matrix (default: every tag, sorted).
        window: switch tokens on each side of a switch.

    Returns:
        A :class:`CodeSwitchScores`.

    Raises:
        MetricError: different numbers of references, hypotheses, tags or ids; a tag count that
            differs from a reference's MER tokens (naming the utterance); ``window < 1``; or
            references that are all empty after normalisation.
    """
    norm = normalizer or TextNormalizer()
    refs, hyps, tag_lists = list(references), list(hypotheses), list(tags)
    if not (len(refs) == len(hyps) == len(tag_lists)):
        raise MetricError(
            f"got {len(refs)} references, {len(hyps)} hypotheses and {len(tag_lists)} tag lists"
        )
    names = [str(i) for i in range(len(refs))] if ids is None else [str(i) for i in ids]
    if len(names) != len(refs):
        raise MetricError(f"got {len(names)} ids for {len(refs)} utterances")
    ref_tags = [
        normalize_tagged(r, t, norm, utt_id=u)[1]
        for r, t, u in zip(refs, tag_lists, names, strict=True)
    ]
    alignments = align(refs, hyps, ids=names, unit="mixed", normalizer=norm)
    tagged = [tag_alignment(a, t, window) for a, t in zip(alignments, ref_tags, strict=True)]
    return scores_from_alignments(
        tagged, normalizer=norm, lexicons=lexicons, languages=languages, window=window
    )


def scores_from_alignments(
    tagged: Sequence[TaggedAlignment],
    *,
    normalizer: TextNormalizer,
    lexicons: Mapping[str, Iterable[str]] | None = None,
    languages: Sequence[str] | None = None,
    window: int = 1,
    allow_empty_reference: bool = False,
) -> CodeSwitchScores:
    """Sum tagged alignments into :class:`CodeSwitchScores` (for a subset of utterances, e.g.
    the intra-sentential ones, pass just their alignments).

    Args:
        tagged: from :func:`tag_alignment` (all made with the same ``window``).
        normalizer: the normaliser the alignments were made with (recorded in the MER).
        lexicons, languages: as for :func:`codeswitch_scores`.
        window: the switch window the alignments were tagged with (recorded).
        allow_empty_reference: give ``nan`` rates instead of raising without reference tokens.

    Returns:
        A :class:`CodeSwitchScores`.

    Raises:
        MetricError: no alignments, or no reference tokens (unless ``allow_empty_reference``).
    """
    items = list(tagged)
    total = error_rate(
        [ta.alignment for ta in items],
        normalizer=normalizer,
        allow_empty_reference=allow_empty_reference,
    )
    langs = sorted({t for ta in items for t in ta.ref_tags})
    lex = {k: frozenset(v) for k, v in (lexicons or {}).items()}
    return CodeSwitchScores(
        mer=total,
        per_lang=_per_language(items, langs),
        switch_point=_switch_point(items, window),
        confusion=language_confusion(items, lex, languages or langs),
        unattributed_insertions=sum(
            1
            for ta in items
            for col, tag in zip(ta.columns, ta.tags, strict=True)
            if col.op == "I" and tag is None
        ),
        alignments=items,
    )


def _per_language(
    tagged: Sequence[TaggedAlignment], langs: Sequence[str]
) -> dict[str, LanguageRate]:
    counts: dict[str, Counter[str]] = {lang: Counter() for lang in langs}
    for ta in tagged:
        for col, tag in zip(ta.columns, ta.tags, strict=True):
            if tag is not None:
                counts[tag][col.op] += 1
    out = {}
    for lang in langs:
        c = counts[lang]
        n = c["C"] + c["S"] + c["D"]
        errors = c["S"] + c["D"] + c["I"]
        out[lang] = LanguageRate(
            lang=lang,
            rate=errors / n if n else math.nan,
            ref_tokens=n,
            hits=c["C"],
            substitutions=c["S"],
            deletions=c["D"],
            insertions=c["I"],
        )
    return out


def _switch_point(tagged: Sequence[TaggedAlignment], window: int) -> SwitchPointRate:
    at: Counter[str] = Counter()
    other: Counter[str] = Counter()
    for ta in tagged:
        for col, flag in zip(ta.columns, ta.at_switch, strict=True):
            (at if flag else other)[col.op] += 1
    n_at = at["C"] + at["S"] + at["D"]
    n_other = other["C"] + other["S"] + other["D"]
    other_errors = other["S"] + other["D"] + other["I"]
    errors = at["S"] + at["D"] + at["I"]
    return SwitchPointRate(
        rate=errors / n_at if n_at else math.nan,
        window=window,
        n_switches=sum(ta.n_switches for ta in tagged),
        switch_tokens=n_at,
        substitutions=at["S"],
        deletions=at["D"],
        insertions=at["I"],
        other_rate=other_errors / n_other if n_other else math.nan,
        other_tokens=n_other,
        other_errors=other_errors,
    )


# ----------------------------------------------------------------------- language of words
def build_lexicon(texts: Iterable[str], normalizer: TextNormalizer | None = None) -> set[str]:
    """The normalised MER tokens of ``texts`` (a language's vocabulary for
    :func:`token_language`), e.g. from the transcripts of a monolingual training set.

    Returns:
        The set of tokens.
    """
    norm = normalizer or TextNormalizer()
    out: set[str] = set()
    for t in texts:
        out.update(mixed_tokens(norm(squeeze_cjk_spaces(t))))
    return out


def lexicons_from_tagged(
    texts: Iterable[str],
    tags: Iterable[Sequence[str]],
    normalizer: TextNormalizer | None = None,
) -> dict[str, set[str]]:
    """Per-language vocabularies from tagged transcripts (each token goes to its tag's set).

    Returns:
        ``{tag: set of normalised tokens}``.

    Raises:
        MetricError: as :func:`normalize_tagged`.
    """
    norm = normalizer or TextNormalizer()
    out: dict[str, set[str]] = {}
    for i, (text, ts) in enumerate(zip(texts, tags, strict=True)):
        tokens, token_tags = normalize_tagged(text, ts, norm, utt_id=str(i))
        for tok, tag in zip(tokens, token_tags, strict=True):
            out.setdefault(tag, set()).add(tok)
    return out


def token_language(
    token: str,
    languages: Sequence[str],
    lexicons: Mapping[str, Iterable[str]] | None = None,
) -> str | None:
    """Decide which of ``languages`` a (normalised) hypothesis token belongs to.

    1. Script: when exactly one of ``languages`` is written in CJK (:data:`CJK_SCRIPT_LANGS`),
       a token with a CJK character is that language, and a token with a letter but no CJK
       character is the other language if there is exactly one other.
    2. Lexicons: the token is in exactly one of the ``languages``' lexicons.

    Returns:
        The language, or ``None`` when neither rule decides (a word in both or neither lexicon,
        digits, ...).
    """
    cjk_langs = [lang for lang in languages if lang in CJK_SCRIPT_LANGS]
    if len(cjk_langs) == 1:
        if any(is_cjk(ch) for ch in token):
            return cjk_langs[0]
        others = [lang for lang in languages if lang != cjk_langs[0]]
        if len(others) == 1 and any(ch.isalpha() for ch in token):
            return others[0]
    if lexicons:
        found = [lang for lang in languages if token in lexicons.get(lang, ())]
        if len(found) == 1:
            return found[0]
    return None


def language_confusion(
    tagged: Iterable[TaggedAlignment],
    lexicons: Mapping[str, Iterable[str]] | None,
    languages: Sequence[str],
) -> LanguageConfusion:
    """Count, per reference language, the substitutions by words of each language.

    Args:
        tagged: from :func:`tag_alignment`.
        lexicons: language -> vocabulary (sets make the lookup fast).
        languages: the languages to tell apart (the rows and columns of the matrix).

    Returns:
        A :class:`LanguageConfusion`.
    """
    langs = tuple(dict.fromkeys(languages))
    lex = {k: v if isinstance(v, set | frozenset) else set(v) for k, v in (lexicons or {}).items()}
    counts: Counter[tuple[str, str]] = Counter()
    ref_tokens: Counter[str] = Counter()
    undecided: Counter[str] = Counter()
    decided: dict[str, str | None] = {}
    for ta in tagged:
        for col, tag in zip(ta.columns, ta.tags, strict=True):
            if col.ref is None or tag is None:
                continue
            ref_tokens[tag] += 1
            if col.op != "S":
                continue
            hyp = str(col.hyp)
            if hyp not in decided:
                decided[hyp] = token_language(hyp, langs, lex)
            b = decided[hyp]
            if b is None:
                undecided[tag] += 1
            else:
                counts[(tag, b)] += 1
    return LanguageConfusion(langs, dict(counts), dict(ref_tokens), dict(undecided))


# ------------------------------------------------------------------------------ helpers
def _none_if_nan(v: float) -> float | None:
    return None if isinstance(v, float) and math.isnan(v) else v


def _finite(d: dict[str, Any]) -> dict[str, Any]:
    return {k: _none_if_nan(v) if isinstance(v, float) else v for k, v in d.items()}
