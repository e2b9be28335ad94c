"""ASR error rates: WER, CER and the mixed-token MER of code-switched speech.

Every score is computed after a :class:`TextNormalizer`, and the normaliser's settings travel
with the score (:attr:`ErrorRate.normalizer`) so that results files can record them::

    r = wer(["Hallo, wereld!"], ["hallo wereld"])
    r.rate            # 0.0
    r.to_dict()       # {"metric": "wer", "rate": 0.0, ..., "normalizer": {...}}

The rates are corpus-level: (substitutions + deletions + insertions) / reference tokens, summed
over all utterances. Edit distances come from jiwer.

MER (mixed error rate) counts each CJK character (Han, Hiragana, Katakana, Hangul) as one token
and every other whitespace-separated word as one token, so ``"我喜欢 python 编程"`` is the six
tokens ``我 喜 欢 python 编 程``. Whitespace between two CJK characters is dropped before the
normaliser runs (:func:`squeeze_cjk_spaces`), so spacing never changes the tokens.

Beyond the rates, this module aligns each utterance (:func:`align`, one :class:`Alignment` of
correct / substituted / deleted / inserted tokens per utterance), renders the alignments the
way sclite's ``.pra`` report does (:func:`format_pra`), counts the most frequent confusions
(:func:`count_errors`) and breaks the rates down per language (:func:`rates_by_language`)::

    al = align(["a b c d"], ["a x c d e"], ids=["u1"])
    al[0].scores          # (3, 1, 0, 1): correct, substituted, deleted, inserted
    print(format_pra(al))  # id: (u1) / Scores: (#C #S #D #I) 3 1 0 1 / REF: ... / HYP: ...
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal

import jiwer

from speechx.errors import MetricError

# Han (with extensions, compatibility ideographs, radicals and the iteration marks 々〆〇),
# Hiragana, Katakana (with phonetic extensions and half-width forms) and Hangul (syllables
# and jamo).
_CJK_RANGES = (
    "\u2e80-\u2fdf"  # CJK radicals supplement, Kangxi radicals
    "\u3005-\u3007"  # 々 〆 〇
    "\u3040-\u309f"  # Hiragana
    "\u30a0-\u30ff"  # Katakana
    "\u3130-\u318f"  # Hangul compatibility jamo
    "\u31f0-\u31ff"  # Katakana phonetic extensions
    "\u3400-\u4dbf"  # CJK unified ideographs extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\ua960-\ua97f"  # Hangul jamo extended A
    "\uac00-\ud7af"  # Hangul syllables
    "\ud7b0-\ud7ff"  # Hangul jamo extended B
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\uff66-\uff9f"  # half-width Katakana
    "\u1100-\u11ff"  # Hangul jamo
    "\U00020000-\U0003ffff"  # CJK unified ideographs extensions B and later
)
_MIXED_TOKEN = re.compile(f"[{_CJK_RANGES}]|[^{_CJK_RANGES}]+")
_CJK_CHAR = re.compile(f"[{_CJK_RANGES}]")
_CJK_GAP = re.compile(f"(?<=[{_CJK_RANGES}])\\s+(?=[{_CJK_RANGES}])")
_APOSTROPHES = frozenset("'\u2019")
_UNICODE_FORMS = ("NFC", "NFKC", "NFD", "NFKD")
# ErrorRate.normalizer keys that describe the tokenisation, not the normaliser
_TOKENISATION_KEYS = frozenset({"count_spaces", "tokens"})


@dataclass(frozen=True)
class TextNormalizer:
    """Text normalisation applied to references and hypotheses before scoring.

    Attributes:
        unicode_form: Unicode normal form applied first (``NFKC`` folds full-width letters and
            punctuation into their usual forms), or ``None``.
        lowercase: case-fold (``str.casefold``) the text.
        remove_punctuation: replace every Unicode punctuation character (general category
            ``P*``, so ``，。「」¿`` as well as ASCII) by a space.
        keep_word_apostrophes: keep an apostrophe (``'`` or ``’``) between two letters or digits,
            so ``don't`` and ``z'n`` stay one word (only with ``remove_punctuation``).
        collapse_whitespace: turn runs of whitespace into one space and strip the ends.
    """

    unicode_form: str | None = "NFKC"
    lowercase: bool = True
    remove_punctuation: bool = True
    keep_word_apostrophes: bool = True
    collapse_whitespace: bool = True

    def __post_init__(self) -> None:
        if self.unicode_form is not None and self.unicode_form not in _UNICODE_FORMS:
            raise MetricError(
                f"unknown unicode_form {self.unicode_form!r}; expected one of {_UNICODE_FORMS}"
            )

    def __call__(self, text: str) -> str:
        """Return the normalised ``text``."""
        if self.unicode_form is not None:
            text = unicodedata.normalize(self.unicode_form, text)
        if self.lowercase:
            text = text.casefold()
        if self.remove_punctuation:
            text = self._strip_punctuation(text)
        if self.collapse_whitespace:
            text = " ".join(text.split())
        return text

    def _strip_punctuation(self, text: str) -> str:
        out = []
        last = len(text) - 1
        for i, ch in enumerate(text):
            if not unicodedata.category(ch).startswith("P") or (
                self.keep_word_apostrophes
                and ch in _APOSTROPHES
                and 0 < i < last
                and text[i - 1].isalnum()
                and text[i + 1].isalnum()
            ):
                out.append(ch)
            else:
                out.append(" ")
        return "".join(out)

    def settings(self) -> dict[str, Any]:
        """The settings as a JSON-ready dict (what results files record)."""
        return asdict(self)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> TextNormalizer:
        """Rebuild a normaliser from :meth:`settings` (as read back from JSON).

        Keys that are not normaliser settings but describe the tokenisation of a score
        (``count_spaces``, ``tokens``, as in :attr:`ErrorRate.normalizer`) are ignored, so the
        ``normalizer`` record of a results file can be passed as it is. Missing keys take
        their defaults.

        Returns:
            A :class:`TextNormalizer` equal to the one that produced ``settings``.

        Raises:
            MetricError: ``settings`` is not a mapping, holds an unknown key, or a value of
                the wrong type.
        """
        if not isinstance(settings, Mapping):
            raise MetricError(
                f"normalizer settings must be a mapping, got {type(settings).__name__}"
            )
        known = {f.name for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, value in settings.items():
            if key in _TOKENISATION_KEYS:
                continue
            if key not in known:
                raise MetricError(
                    f"unknown normalizer setting {key!r}; expected some of {sorted(known)}"
                )
            if key == "unicode_form":
                if value is not None and not isinstance(value, str):
                    raise MetricError(f"normalizer setting unicode_form={value!r} is not a str")
            elif not isinstance(value, bool):
                raise MetricError(f"normalizer setting {key}={value!r} is not true/false")
            kwargs[key] = value
        return cls(**kwargs)

    @classmethod
    def verbatim(cls) -> TextNormalizer:
        """A normaliser that only splits on whitespace: case, punctuation and Unicode kept."""
        return cls(
            unicode_form=None,
            lowercase=False,
            remove_punctuation=False,
            keep_word_apostrophes=False,
            collapse_whitespace=True,
        )

    def describe(self) -> str:
        """A short human-readable summary, e.g. ``"NFKC, case-folded, punctuation removed
        (word apostrophes kept)"``."""
        parts = [self.unicode_form or "no Unicode normalisation"]
        parts.append("case-folded" if self.lowercase else "case kept")
        if self.remove_punctuation:
            keep = " (word apostrophes kept)" if self.keep_word_apostrophes else ""
            parts.append(f"punctuation removed{keep}")
        else:
            parts.append("punctuation kept")
        if not self.collapse_whitespace:
            parts.append("whitespace kept")
        return ", ".join(parts)


@dataclass(frozen=True)
class ErrorRate:
    """A corpus-level error rate and the counts behind it.

    Attributes:
        metric: ``wer``, ``cer`` or ``mer``.
        rate: ``(substitutions + deletions + insertions) / ref_tokens``.
        substitutions, deletions, insertions, hits: edit operation counts.
        ref_tokens, hyp_tokens: tokens (words, characters or mixed tokens) in all references
            and all hypotheses.
        n_utts: number of utterance pairs.
        normalizer: the :meth:`TextNormalizer.settings` used, plus the tokenisation.
    """

    metric: str
    rate: float
    substitutions: int
    deletions: int
    insertions: int
    hits: int
    ref_tokens: int
    hyp_tokens: int
    n_utts: int
    normalizer: dict[str, Any] = field(default_factory=dict)

    def __float__(self) -> float:
        return self.rate

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of every field."""
        return asdict(self)


def mixed_tokens(text: str) -> list[str]:
    """Split ``text`` into MER tokens: each CJK character alone, other words by whitespace.

    Example:
        >>> mixed_tokens("我喜欢 python编程 ok")
        ['我', '喜', '欢', 'python', '编', '程', 'ok']
    """
    tokens: list[str] = []
    for word in text.split():
        tokens.extend(_MIXED_TOKEN.findall(word))
    return tokens


def squeeze_cjk_spaces(text: str) -> str:
    """Remove whitespace that stands between two CJK characters.

    MER treats every CJK character as a token whatever the spacing, but Unicode normalisation
    does not: NFKC composes ``か`` and a following combining voiced mark (U+3099) into ``が``,
    and Hangul jamo into a syllable, only when the two are adjacent. :func:`mer` and
    :func:`align` with ``unit="mixed"`` apply this before the normaliser, so that ``か`` then
    U+3099 scores the same with or without a space between them.

    Example:
        >>> squeeze_cjk_spaces("我 喜欢 python 编 程")
        '我喜欢 python 编程'
    """
    return _CJK_GAP.sub("", text)


def is_cjk(char: str) -> bool:
    """True if ``char`` is one Han, Hiragana, Katakana or Hangul character."""
    return len(char) == 1 and _CJK_CHAR.match(char) is not None


def wer(
    references: str | Sequence[str],
    hypotheses: str | Sequence[str],
    normalizer: TextNormalizer | None = None,
) -> ErrorRate:
    """Word error rate over whitespace-separated words after normalisation.

    Args:
        references: one reference string or a list of them.
        hypotheses: the matching hypotheses (same count).
        normalizer: defaults to ``TextNormalizer()``.

    Returns:
        An :class:`ErrorRate` with ``metric="wer"``.

    Raises:
        MetricError: different numbers of references and hypotheses, a non-string entry, or
            references that are all empty after normalisation.
    """
    norm = normalizer or TextNormalizer()
    refs, hyps = _pair_up(references, hypotheses, norm)
    return _score_tokens("wer", [r.split() for r in refs], [h.split() for h in hyps], norm, {})


def cer(
    references: str | Sequence[str],
    hypotheses: str | Sequence[str],
    normalizer: TextNormalizer | None = None,
    *,
    count_spaces: bool = True,
) -> ErrorRate:
    """Character error rate after normalisation.

    Args:
        count_spaces: count the (collapsed) spaces between words as characters, as jiwer's
            ``cer`` does; ``False`` scores the characters of the words only.

    Returns:
        An :class:`ErrorRate` with ``metric="cer"``.

    Raises:
        MetricError: as :func:`wer`.
    """
    norm = normalizer or TextNormalizer()
    refs, hyps = _pair_up(references, hypotheses, norm)

    def chars(s: str) -> list[str]:
        return list(s) if count_spaces else [c for c in s if not c.isspace()]

    return _score_tokens(
        "cer",
        [chars(r) for r in refs],
        [chars(h) for h in hyps],
        norm,
        {"count_spaces": count_spaces},
    )


def mer(
    references: str | Sequence[str],
    hypotheses: str | Sequence[str],
    normalizer: TextNormalizer | None = None,
) -> ErrorRate:
    """Mixed error rate of code-switched text: edit distance over :func:`mixed_tokens`.

    Whitespace between two CJK characters is dropped before normalisation
    (:func:`squeeze_cjk_spaces`), so it never changes the score.

    Returns:
        An :class:`ErrorRate` with ``metric="mer"``: ``(S + D + I) / reference tokens``.

    Raises:
        MetricError: as :func:`wer`.
    """
    norm = normalizer or TextNormalizer()
    refs, hyps = _pair_up(references, hypotheses, norm, squeeze_cjk=True)
    return _score_tokens(
        "mer",
        [mixed_tokens(r) for r in refs],
        [mixed_tokens(h) for h in hyps],
        norm,
        {"tokens": "cjk-char+word"},
    )


def _pair_up(
    references: str | Sequence[str],
    hypotheses: str | Sequence[str],
    norm: TextNormalizer,
    *,
    squeeze_cjk: bool = False,
) -> tuple[list[str], list[str]]:
    refs = [references] if isinstance(references, str) else list(references)
    hyps = [hypotheses] if isinstance(hypotheses, str) else list(hypotheses)
    if len(refs) != len(hyps):
        raise MetricError(f"got {len(refs)} references but {len(hyps)} hypotheses")
    if not refs:
        raise MetricError("no utterances to score")
    for what, items in (("reference", refs), ("hypothesis", hyps)):
        for i, s in enumerate(items):
            if not isinstance(s, str):
                raise MetricError(f"{what} {i} is {type(s).__name__}, not str")
    if squeeze_cjk:
        refs, hyps = [squeeze_cjk_spaces(r) for r in refs], [squeeze_cjk_spaces(h) for h in hyps]
    return [norm(r) for r in refs], [norm(h) for h in hyps]


def _score_tokens(
    metric: str,
    refs: list[list[str]],
    hyps: list[list[str]],
    norm: TextNormalizer,
    extra: dict[str, Any],
) -> ErrorRate:
    n_ref = sum(len(r) for r in refs)
    if n_ref == 0:
        raise MetricError(f"{metric}: every reference is empty after normalisation")
    return _rate_from_ops(metric, _align_token_lists(refs, hyps), norm, extra)


def _rate_from_ops(
    metric: str, ops: Sequence[Sequence[AlignedToken]], norm: TextNormalizer, extra: dict[str, Any]
) -> ErrorRate:
    counts = Counter(t.op for utt in ops for t in utt)
    s, d, i, c = counts["S"], counts["D"], counts["I"], counts["C"]
    n_ref, n_hyp = c + s + d, c + s + i
    return ErrorRate(
        metric=metric,
        rate=(s + d + i) / n_ref if n_ref else math.nan,
        substitutions=s,
        deletions=d,
        insertions=i,
        hits=c,
        ref_tokens=n_ref,
        hyp_tokens=n_hyp,
        n_utts=len(ops),
        normalizer={**norm.settings(), **extra},
    )


# ----------------------------------------------------------------------------- alignment
Op = Literal["C", "S", "D", "I"]
#: token units of :func:`align`, and the metric each one scores
UNIT_METRIC = {"word": "wer", "char": "cer", "char-no-space": "cer", "mixed": "mer"}
#: the unit each metric is computed on (CER counts spaces, as jiwer's cer does)
METRIC_UNIT = {"wer": "word", "cer": "char", "mer": "mixed"}
_UNIT_EXTRA: dict[str, dict[str, Any]] = {
    "word": {},
    "char": {"count_spaces": True},
    "char-no-space": {"count_spaces": False},
    "mixed": {"tokens": "cjk-char+word"},
}
_JIWER_OP: dict[str, Op] = {"equal": "C", "substitute": "S", "delete": "D", "insert": "I"}


@dataclass(frozen=True, slots=True)
class AlignedToken:
    """One column of an alignment.

    Attributes:
        op: ``"C"`` correct, ``"S"`` substitution, ``"D"`` deletion (``hyp`` is ``None``) or
            ``"I"`` insertion (``ref`` is ``None``).
        ref, hyp: the reference and hypothesis token of the column.
    """

    op: Op
    ref: str | None
    hyp: str | None


@dataclass(frozen=True)
class Alignment:
    """The minimum-edit alignment of one utterance's reference and hypothesis tokens.

    Attributes:
        utt_id: the utterance id (or its position, as a string, when no ids were given).
        unit: ``word``, ``char``, ``char-no-space`` or ``mixed`` (see :func:`align`).
        tokens: the aligned columns, in order.
    """

    utt_id: str
    unit: str
    tokens: tuple[AlignedToken, ...]

    def _count(self, op: str) -> int:
        return sum(t.op == op for t in self.tokens)

    @property
    def hits(self) -> int:
        """Correct tokens."""
        return self._count("C")

    @property
    def substitutions(self) -> int:
        return self._count("S")

    @property
    def deletions(self) -> int:
        return self._count("D")

    @property
    def insertions(self) -> int:
        return self._count("I")

    @property
    def errors(self) -> int:
        """Substitutions + deletions + insertions."""
        return sum(t.op != "C" for t in self.tokens)

    @property
    def scores(self) -> tuple[int, int, int, int]:
        """``(correct, substitutions, deletions, insertions)``, sclite's ``#C #S #D #I``."""
        return self.hits, self.substitutions, self.deletions, self.insertions

    @property
    def ref_tokens(self) -> list[str]:
        """The (normalised) reference tokens."""
        return [t.ref for t in self.tokens if t.ref is not None]

    @property
    def hyp_tokens(self) -> list[str]:
        """The (normalised) hypothesis tokens."""
        return [t.hyp for t in self.tokens if t.hyp is not None]

    @property
    def rate(self) -> float:
        """Errors / reference tokens of this utterance (``nan`` for an empty reference)."""
        n = len(self.ref_tokens)
        return self.errors / n if n else math.nan


def tokenize(text: str, unit: str = "word") -> list[str]:
    """Split already-normalised ``text`` into the tokens of ``unit``.

    ``word``: whitespace-separated words; ``char``: every character, a space between words
    included; ``char-no-space``: the characters of the words only; ``mixed``:
    :func:`mixed_tokens`.

    Returns:
        The tokens, in order.

    Raises:
        MetricError: an unknown ``unit``.
    """
    if unit == "word":
        return text.split()
    if unit == "char":
        return list(" ".join(text.split()))
    if unit == "char-no-space":
        return [c for c in text if not c.isspace()]
    if unit == "mixed":
        return mixed_tokens(text)
    raise MetricError(f"unknown token unit {unit!r}; expected one of {sorted(UNIT_METRIC)}")


def align(
    references: str | Sequence[str],
    hypotheses: str | Sequence[str],
    *,
    ids: Sequence[str] | None = None,
    unit: str = "word",
    normalizer: TextNormalizer | None = None,
) -> list[Alignment]:
    """Align each reference with its hypothesis after normalisation (jiwer's edit alignment).

    Args:
        references, hypotheses: as for :func:`wer`; an empty hypothesis is all deletions and an
            empty reference all insertions.
        ids: one utterance id per pair (default ``"0"``, ``"1"``, ...).
        unit: ``word`` (WER), ``char`` (CER, spaces count), ``char-no-space`` or ``mixed``
            (MER, see :func:`mixed_tokens`).
        normalizer: defaults to ``TextNormalizer()``.

    Returns:
        One :class:`Alignment` per pair, in input order. Summed over the utterances, their
        counts are exactly those of :func:`wer` / :func:`cer` / :func:`mer`.

    Raises:
        MetricError: as :func:`wer`, an unknown ``unit``, or ``ids`` of the wrong length.

    Example:
        >>> [a.scores for a in align("a b c d", "a x c d e")]
        [(3, 1, 0, 1)]
    """
    norm = normalizer or TextNormalizer()
    if unit not in UNIT_METRIC:
        raise MetricError(f"unknown token unit {unit!r}; expected one of {sorted(UNIT_METRIC)}")
    refs, hyps = _pair_up(references, hypotheses, norm, squeeze_cjk=unit == "mixed")
    names = [str(i) for i in range(len(refs))] if ids is None else [str(i) for i in ids]
    if len(names) != len(refs):
        raise MetricError(f"got {len(names)} ids for {len(refs)} utterances")
    ops = _align_token_lists([tokenize(r, unit) for r in refs], [tokenize(h, unit) for h in hyps])
    return [Alignment(n, unit, tuple(o)) for n, o in zip(names, ops, strict=True)]


def _align_token_lists(refs: list[list[str]], hyps: list[list[str]]) -> list[list[AlignedToken]]:
    """Align token lists with jiwer; each distinct token is handed over as a numeric code,
    since jiwer splits its input on whitespace and a CER token may be a space."""
    codes: dict[str, str] = {}

    def encode(tokens: list[str]) -> str:
        return " ".join(codes.setdefault(t, str(len(codes))) for t in tokens)

    out = jiwer.process_words([encode(r) for r in refs], [encode(h) for h in hyps])
    result: list[list[AlignedToken]] = []
    for ref, hyp, chunks in zip(refs, hyps, out.alignments, strict=True):
        cols: list[AlignedToken] = []
        for ch in chunks:
            op = _JIWER_OP[ch.type]
            if op == "I":
                cols += [AlignedToken("I", None, h) for h in hyp[ch.hyp_start_idx : ch.hyp_end_idx]]
            elif op == "D":
                cols += [AlignedToken("D", r, None) for r in ref[ch.ref_start_idx : ch.ref_end_idx]]
            else:
                pairs = zip(
                    ref[ch.ref_start_idx : ch.ref_end_idx],
                    hyp[ch.hyp_start_idx : ch.hyp_end_idx],
                    strict=True,
                )
                cols += [AlignedToken(op, r, h) for r, h in pairs]
        result.append(cols)
    return result


def error_rate(
    alignments: Iterable[Alignment],
    *,
    normalizer: TextNormalizer,
    allow_empty_reference: bool = False,
) -> ErrorRate:
    """The corpus-level :class:`ErrorRate` of some alignments (all of one unit).

    Summing the alignments of a subset of utterances (one language, one speaker) gives that
    subset's corpus-level rate: total errors / total reference tokens.

    Args:
        alignments: from :func:`align`.
        normalizer: the normaliser the alignments were made with (recorded in the result).
        allow_empty_reference: give ``rate=nan`` instead of raising when there are no
            reference tokens at all.

    Returns:
        An :class:`ErrorRate` whose metric follows the unit (``word`` -> ``wer``, ...).

    Raises:
        MetricError: no alignments, alignments of mixed units, or no reference tokens (unless
            ``allow_empty_reference``).
    """
    items = list(alignments)
    if not items:
        raise MetricError("no utterances to score")
    units = {a.unit for a in items}
    if len(units) != 1:
        raise MetricError(f"alignments of different units {sorted(units)} cannot be summed")
    unit = units.pop()
    metric = UNIT_METRIC[unit]
    rate = _rate_from_ops(metric, [a.tokens for a in items], normalizer, _UNIT_EXTRA[unit])
    if rate.ref_tokens == 0 and not allow_empty_reference:
        raise MetricError(f"{metric}: every reference is empty after normalisation")
    return rate


def rates_by_language(
    references: Mapping[str, str],
    hypotheses: Mapping[str, str],
    utt2lang: Mapping[str, str] | None = None,
    *,
    metrics: Sequence[str] = ("wer", "cer", "mer"),
    normalizer: TextNormalizer | None = None,
    overall: str = "all",
) -> dict[str, dict[str, ErrorRate]]:
    """Corpus-level error rates per language and over everything.

    Args:
        references: utterance id -> reference text.
        hypotheses: utterance id -> hypothesis; every reference needs one (extra ones are
            ignored).
        utt2lang: utterance id -> language of the speech; ``None`` scores everything as one
            group named ``overall``.
        metrics: some of ``wer``, ``cer``, ``mer``.
        normalizer: defaults to ``TextNormalizer()``.
        overall: the key of the all-utterances group.

    Returns:
        ``{lang: {metric: ErrorRate}}`` with languages sorted and ``overall`` last. Each rate
        is total errors / total reference tokens of that language (not a mean of utterance
        rates); a language whose references are all empty gets ``rate=nan``.

    Raises:
        MetricError: an unknown metric, a reference without a hypothesis or a language (the
            utterance is named), a language named like ``overall``, or no reference tokens.
    """
    norm = normalizer or TextNormalizer()
    bad = [m for m in metrics if m not in METRIC_UNIT]
    if bad or not metrics:
        raise MetricError(f"unknown metric {bad or metrics!r}; expected some of wer, cer, mer")
    ids = list(references)
    if not ids:
        raise MetricError("no utterances to score")
    for u in ids:
        if u not in hypotheses:
            raise MetricError(f"utterance {u!r} has a reference but no hypothesis")
        if utt2lang is not None and u not in utt2lang:
            raise MetricError(f"utterance {u!r} has no language in utt2lang")
    langs = [overall] * len(ids) if utt2lang is None else [str(utt2lang[u]) for u in ids]
    if utt2lang is not None and overall in langs:
        raise MetricError(f"language {overall!r} clashes with the name of the overall group")
    refs = [references[u] for u in ids]
    hyps = [hypotheses[u] for u in ids]
    groups = sorted(set(langs))
    out: dict[str, dict[str, ErrorRate]] = {g: {} for g in [*groups, overall]}
    for m in metrics:
        al = align(refs, hyps, ids=ids, unit=METRIC_UNIT[m], normalizer=norm)
        out[overall][m] = error_rate(al, normalizer=norm)
        if utt2lang is not None:
            for g in groups:
                sub = [a for a, lang in zip(al, langs, strict=True) if lang == g]
                out[g][m] = error_rate(sub, normalizer=norm, allow_empty_reference=True)
    return out


# --------------------------------------------------------------------------- confusions
@dataclass(frozen=True)
class ErrorCounts:
    """How often each confusion occurs over a corpus.

    Attributes:
        substitutions: ``(ref, hyp)`` -> count.
        deletions: reference token -> count.
        insertions: hypothesis token -> count.
    """

    substitutions: Counter[tuple[str, str]]
    deletions: Counter[str]
    insertions: Counter[str]

    def top_substitutions(self, n: int | None = 10) -> list[tuple[str, str, int]]:
        """The ``n`` most frequent ``(ref, hyp, count)``, by count then alphabetically."""
        items = sorted(self.substitutions.items(), key=lambda kv: (-kv[1], kv[0]))
        return [(r, h, c) for (r, h), c in items[:n]]

    def top_deletions(self, n: int | None = 10) -> list[tuple[str, int]]:
        """The ``n`` most often deleted ``(ref token, count)``."""
        return sorted(self.deletions.items(), key=lambda kv: (-kv[1], kv[0]))[:n]

    def top_insertions(self, n: int | None = 10) -> list[tuple[str, int]]:
        """The ``n`` most often inserted ``(hyp token, count)``."""
        return sorted(self.insertions.items(), key=lambda kv: (-kv[1], kv[0]))[:n]

    def to_dict(self, top: int | None = 20) -> dict[str, list[dict[str, Any]]]:
        """JSON-ready ``{"substitutions": [{"ref", "hyp", "count"}], "deletions": [{"ref",
        "count"}], "insertions": [{"hyp", "count"}]}``, each the ``top`` most frequent."""
        return {
            "substitutions": [
                {"ref": r, "hyp": h, "count": c} for r, h, c in self.top_substitutions(top)
            ],
            "deletions": [{"ref": r, "count": c} for r, c in self.top_deletions(top)],
            "insertions": [{"hyp": h, "count": c} for h, c in self.top_insertions(top)],
        }


def count_errors(alignments: Iterable[Alignment]) -> ErrorCounts:
    """Count every substitution pair, deleted token and inserted token of ``alignments``.

    Returns:
        An :class:`ErrorCounts`.
    """
    subs: Counter[tuple[str, str]] = Counter()
    dels: Counter[str] = Counter()
    ins: Counter[str] = Counter()
    for a in alignments:
        for t in a.tokens:
            if t.op == "S":
                subs[(str(t.ref), str(t.hyp))] += 1
            elif t.op == "D":
                dels[str(t.ref)] += 1
            elif t.op == "I":
                ins[str(t.hyp)] += 1
    return ErrorCounts(subs, dels, ins)


# --------------------------------------------------------------------------- .pra output
_SPACE_MARK = "␣"  # ␣: a space token of a character alignment


def display_width(text: str) -> int:
    """Terminal columns ``text`` takes: wide (CJK) characters count 2, combining marks 0."""
    width = 0
    for ch in text:
        if unicodedata.combining(ch):
            continue
        width += 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
    return width


def _pad(text: str, width: int) -> str:
    return text + " " * (width - display_width(text))


def format_alignment(alignment: Alignment) -> str:
    """One utterance in sclite ``.pra`` style::

        id: (u1)
        Scores: (#C #S #D #I) 3 1 0 1
        REF:  a B c d ***
        HYP:  a X c d E
        Eval:   S       I

    Correct tokens are shown as they are, erroneous ones upper-cased; the missing side of a
    deletion or insertion is ``***`` (as wide as its column); columns line up, CJK characters
    counting double width. A space token (character alignments) is shown as ``␣``.

    Returns:
        The block, ending in a newline.
    """
    ref_cells, hyp_cells, eval_cells = [], [], []
    for t in alignment.tokens:
        ref = None if t.ref is None else (_SPACE_MARK if t.ref == " " else t.ref)
        hyp = None if t.hyp is None else (_SPACE_MARK if t.hyp == " " else t.hyp)
        if t.op != "C":
            ref = ref.upper() if ref is not None else None
            hyp = hyp.upper() if hyp is not None else None
        width = max(display_width(ref or ""), display_width(hyp or ""))
        if ref is None or hyp is None:
            width = max(width, 3)
        ref_cells.append(_pad(ref if ref is not None else "*" * width, width))
        hyp_cells.append(_pad(hyp if hyp is not None else "*" * width, width))
        eval_cells.append(_pad("" if t.op == "C" else t.op, width))
    c, s, d, i = alignment.scores
    lines = [
        f"id: ({alignment.utt_id})",
        f"Scores: (#C #S #D #I) {c} {s} {d} {i}",
        ("REF:  " + " ".join(ref_cells)).rstrip(),
        ("HYP:  " + " ".join(hyp_cells)).rstrip(),
        ("Eval: " + " ".join(eval_cells)).rstrip(),
    ]
    return "\n".join(lines) + "\n"


def format_pra(alignments: Iterable[Alignment], *, header: Sequence[str] = ()) -> str:
    """sclite ``.pra``-style text for many utterances: ``header`` lines, then one
    :func:`format_alignment` block per utterance, separated by blank lines.

    Returns:
        The whole report as one string.
    """
    blocks = [format_alignment(a) for a in alignments]
    head = "".join(f"{line}\n" for line in header)
    return head + ("\n" if head and blocks else "") + "\n".join(blocks)
