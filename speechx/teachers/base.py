"""The :class:`TextTeacher` protocol and helpers shared by every teacher implementation.

A text teacher is a frozen multilingual sentence encoder that defines the embedding space the
speech encoder is distilled into.  Every implementation returns float32 ``[N, D]`` arrays whose
rows are L2-normalised, and ``[0, D]`` for an empty input.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from speechx.errors import TeacherError

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


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
