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
tokens ``我 喜 欢 python 编 程``.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

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
_APOSTROPHES = frozenset("'\u2019")
_UNICODE_FORMS = ("NFC", "NFKC", "NFD", "NFKD")


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

    Returns:
        An :class:`ErrorRate` with ``metric="mer"``: ``(S + D + I) / reference tokens``.

    Raises:
        MetricError: as :func:`wer`.
    """
    norm = normalizer or TextNormalizer()
    refs, hyps = _pair_up(references, hypotheses, norm)
    return _score_tokens(
        "mer",
        [mixed_tokens(r) for r in refs],
        [mixed_tokens(h) for h in hyps],
        norm,
        {"tokens": "cjk-char+word"},
    )


def _pair_up(
    references: str | Sequence[str], hypotheses: str | Sequence[str], norm: TextNormalizer
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
    # jiwer splits its input on whitespace, and a CER token may be a space, so every distinct
    # token is handed over as a numeric code.
    codes: dict[str, str] = {}

    def encode(tokens: list[str]) -> str:
        return " ".join(codes.setdefault(t, str(len(codes))) for t in tokens)

    out = jiwer.process_words([encode(r) for r in refs], [encode(h) for h in hyps])
    s, d, i = out.substitutions, out.deletions, out.insertions
    return ErrorRate(
        metric=metric,
        rate=(s + d + i) / n_ref,
        substitutions=s,
        deletions=d,
        insertions=i,
        hits=out.hits,
        ref_tokens=n_ref,
        hyp_tokens=sum(len(h) for h in hyps),
        n_utts=len(refs),
        normalizer={**norm.settings(), **extra},
    )
