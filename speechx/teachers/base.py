"""The :class:`TextTeacher` protocol and helpers shared by every teacher implementation.

A text teacher is a frozen multilingual sentence encoder that defines the embedding space the
speech encoder is distilled into.  Every implementation returns float32 ``[N, D]`` arrays whose
rows are L2-normalised, and ``[0, D]`` for an empty input.
"""

from __future__ import annotations

import re
import sys
import warnings
from collections.abc import Iterable, Iterator, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from speechx.errors import TeacherError, TeacherWarning

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: How many offending texts a warning quotes.
_QUOTED = 3


@runtime_checkable
class TextTeacher(Protocol):
    """A frozen sentence encoder: ``encode(texts) -> float32 [N, D]``, rows L2-normalised.

    Attributes:
        name: the name it was loaded under (e.g. ``"use-multilingual"``).
        teacher_id: a stable, filesystem-safe id that changes whenever the embeddings would
            (model weights, pooling, normalisation, truncation).  Caches and
            ``data/<set>/teacher/<teacher_id>/`` are keyed by it.
        dim: the embedding dimension ``D``.
        languages: language codes the teacher was trained on, or ``None`` when unknown.
    """

    name: str
    teacher_id: str
    dim: int
    languages: tuple[str, ...] | None

    def encode(
        self, texts: Sequence[str], batch_size: int = 64, show_progress: bool | None = None
    ) -> np.ndarray:
        """Embed ``texts``; returns float32 ``[len(texts), dim]``."""
        ...


def safe_id(text: str) -> str:
    """``text`` with every run of characters outside ``[A-Za-z0-9._-]`` replaced by ``-``.

    >>> safe_id("LaBSE (v2)/pooler")
    'LaBSE-v2-pooler'
    """
    out = _UNSAFE.sub("-", text).strip("-.")
    return out or "unnamed"


def check_texts(texts: Sequence[str], who: str) -> list[str]:
    """Return ``texts`` as a list after checking that it is a sequence of ``str``.

    Raises:
        TeacherError: ``texts`` is a single string (a common slip that would embed characters)
            or holds something that is not a string; ``who`` names the teacher in the message.
    """
    if isinstance(texts, str):
        raise TeacherError(f"{who}: encode() takes a list of strings, got a single str {texts!r}")
    out = list(texts)
    for i, t in enumerate(out):
        if not isinstance(t, str):
            raise TeacherError(f"{who}: text #{i} is {type(t).__name__}, not str: {t!r}")
    return out


def check_batch_size(batch_size: int, who: str) -> None:
    """Raises :class:`TeacherError` unless ``batch_size`` is a positive int."""
    if not isinstance(batch_size, int) or batch_size < 1:
        raise TeacherError(f"{who}: batch_size must be a positive int, got {batch_size!r}")


def l2_normalise(x: np.ndarray, eps: float = 1e-12) -> np.ndarray:
    """Rows of ``x`` scaled to unit L2 norm (all-zero rows stay zero); returns float32."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norms, eps)).astype(np.float32, copy=False)


def empty_embeddings(dim: int) -> np.ndarray:
    """A float32 ``[0, dim]`` array, the result of encoding an empty list."""
    return np.zeros((0, dim), dtype=np.float32)


def batches(n: int, batch_size: int) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` index pairs that cover ``range(n)`` in chunks of ``batch_size``."""
    for start in range(0, n, batch_size):
        yield start, min(start + batch_size, n)


def want_progress(show_progress: bool | None, n_batches: int) -> bool:
    """Resolve ``show_progress``: ``None`` means "when stderr is a terminal and n_batches > 1"."""
    if show_progress is None:
        return n_batches > 1 and sys.stderr.isatty()
    return bool(show_progress)


def _quote(text: str, n: int = 40) -> str:
    return repr(text if len(text) <= n else text[:n] + "...")


def warn_blank_texts(texts: Sequence[str], who: str) -> list[int]:
    """Warn (:class:`~speechx.errors.TeacherWarning`) about empty or whitespace-only texts.

    They are still embedded, since callers rely on one row per text, but such a row says
    nothing about any sentence.  The data-dir teacher stage never passes them (it gives an
    empty transcript a row of NaN instead).

    Returns:
        The indices of the blank texts (empty when there is none).
    """
    blank = [i for i, t in enumerate(texts) if not t.strip()]
    if blank:
        shown = ", ".join(f"#{i}" for i in blank[:_QUOTED])
        more = f" and {len(blank) - _QUOTED} more" if len(blank) > _QUOTED else ""
        warnings.warn(
            f"{who}: {len(blank)} empty text(s) ({shown}{more}); their embeddings carry no meaning",
            TeacherWarning,
            stacklevel=3,
        )
    return blank


def warn_long_texts(texts: Sequence[str], who: str, max_chars: int, what: str) -> list[int]:
    """Warn about texts longer than ``max_chars`` characters; ``what`` says what happens to them.

    Returns:
        The indices of the long texts.
    """
    long = [i for i, t in enumerate(texts) if len(t) > max_chars]
    if long:
        i = long[0]
        more = f" and {len(long) - 1} more" if len(long) > 1 else ""
        warnings.warn(
            f"{who}: text #{i} {_quote(texts[i])} is {len(texts[i]):,} characters long "
            f"(over {max_chars:,}){more}; {what}",
            TeacherWarning,
            stacklevel=3,
        )
    return long


def language_code(lang: str) -> str:
    """The primary subtag of a language tag, lower-cased: ``"nl-NL"``, ``"nl_nl"`` -> ``"nl"``."""
    return lang.replace("_", "-").split("-")[0].strip().lower()


def check_language_coverage(
    teacher: TextTeacher, languages: Iterable[str], source: str | None = None
) -> list[str]:
    """Warn for every language in ``languages`` that ``teacher`` was not trained on.

    Texts in such a language are still embedded, but the teacher maps them poorly, so a
    speech encoder distilled on them learns little.  Tags are compared by their primary
    subtag (``nl-BE`` is covered by ``nl``).  A teacher whose ``languages`` is ``None``
    (unknown, e.g. an ``hf:`` teacher without ``languages=``) is not checked.

    Example:
        >>> check_language_coverage(load_teacher(), ["nl", "sv"], "data/train")  # doctest: +SKIP
        TeacherWarning: use-multilingual-v3: language 'sv' (in data/train) is not one of ...
        ['sv']

    Args:
        teacher: a loaded teacher.
        languages: language codes of the texts, e.g. a dir's ``utt2lang`` values and the
            ``<lang>`` of its ``text.<lang>`` files.
        source: where the languages come from, named in the warning (a data dir, a file).

    Returns:
        The uncovered languages as given, sorted and without repeats.
    """
    known = getattr(teacher, "languages", None)
    if known is None:
        return []
    covered = {language_code(k) for k in known}
    who = getattr(teacher, "teacher_id", None) or getattr(teacher, "name", "teacher")
    where = f" (in {source})" if source else ""
    missing = sorted({lang for lang in languages if language_code(lang) not in covered})
    for lang in missing:
        warnings.warn(
            f"{who}: language {lang!r}{where} is not one of the {len(known)} languages the "
            f"teacher was trained on ({' '.join(sorted(known))}); its embeddings will be poor",
            TeacherWarning,
            stacklevel=2,
        )
    return missing
