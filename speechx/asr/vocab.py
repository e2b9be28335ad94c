"""The CTC vocabulary: characters of the normalised training transcripts plus ``|``.

Index 0 is the CTC blank (also the padding token, ``<pad>``), index 1 the unknown character
(``<unk>``), index 2 the word delimiter ``|`` that stands for a space; the characters follow in
code-point order, so the same transcripts always give the same vocabulary.  Transcripts of every
language are pooled: a multilingual model has one vocabulary.

The text normalisation (:class:`TextConfig`: Unicode form, case, punctuation, digits) is part of
the vocabulary, saved in the model directory and applied identically to training targets, to
decoded hypotheses and to references at scoring time::

    vocab = Vocabulary.build(["Hallo, wereld!", "Guten Tag"], TextConfig())
    vocab.encode("hallo tag")   # [ids...]
    vocab.save(model_dir)       # vocab.json ({token: id}, the transformers CTC tokenizer layout)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from speechx.errors import ModelError
from speechx.metrics.asr import TextNormalizer

BLANK = "<pad>"
UNK = "<unk>"
WORD_DELIMITER = "|"
VOCAB_NAME = "vocab.json"


@dataclass
class TextConfig:
    """How transcripts are normalised before they become CTC targets (and before scoring).

    Attributes:
        unicode_form: Unicode normal form (``NFKC`` folds full-width forms), or None.
        lowercase: case-fold.
        remove_punctuation: replace punctuation by spaces (word-internal apostrophes stay).
        digits: ``"keep"`` digits as characters, or ``"remove"`` them (a corpus whose
            transcripts write numbers as words should not learn a few stray digits).
    """

    unicode_form: str | None = "NFKC"
    lowercase: bool = True
    remove_punctuation: bool = True
    digits: Literal["keep", "remove"] = "keep"

    def normalizer(self) -> TextNormalizer:
        """The :class:`~speechx.metrics.asr.TextNormalizer` of these settings (digits aside)."""
        return TextNormalizer(
            unicode_form=self.unicode_form,
            lowercase=self.lowercase,
            remove_punctuation=self.remove_punctuation,
        )

    def __call__(self, text: str) -> str:
        """Normalise ``text``: returns words separated by single spaces."""
        out = self.normalizer()(text)
        if self.digits == "remove":
            out = " ".join("".join(c for c in out if not c.isdigit()).split())
        return out

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready settings."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TextConfig:
        """Rebuild from :meth:`to_dict` output.

        Raises:
            ModelError: an unknown key or a bad ``digits`` value.
        """
        known = {"unicode_form", "lowercase", "remove_punctuation", "digits"}
        bad = sorted(set(data) - known)
        if bad:
            raise ModelError(f"text normalisation: unknown setting(s) {bad}")
        cfg = cls(**data)
        if cfg.digits not in ("keep", "remove"):
            raise ModelError(f"text normalisation: digits must be keep/remove, got {cfg.digits!r}")
        return cfg


class Vocabulary:
    """Characters of a CTC model, with the normalisation of its texts.

    Args:
        tokens: every token in id order; must start with ``<pad>``, ``<unk>``, ``|``.
        text: the normalisation the tokens were collected under.

    Raises:
        ModelError: the special tokens are missing or misplaced, or a token repeats.
    """

    def __init__(self, tokens: Sequence[str], text: TextConfig | None = None) -> None:
        self.tokens = list(tokens)
        self.text = text or TextConfig()
        if self.tokens[:3] != [BLANK, UNK, WORD_DELIMITER]:
            raise ModelError(
                f"vocabulary must start with {BLANK!r}, {UNK!r}, {WORD_DELIMITER!r}; "
                f"got {self.tokens[:3]}"
            )
        if len(set(self.tokens)) != len(self.tokens):
            raise ModelError("vocabulary has repeated tokens")
        self.index = {t: i for i, t in enumerate(self.tokens)}

    blank_id = 0
    unk_id = 1
    delimiter_id = 2

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Vocabulary)
            and self.tokens == other.tokens
            and self.text == other.text
        )

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} tokens: {''.join(self.tokens[3:])!r})"

    @classmethod
    def build(cls, texts: Iterable[str], text: TextConfig | None = None) -> Vocabulary:
        """Collect the characters of the normalised ``texts`` (the union over all of them).

        Returns:
            The vocabulary; spaces become the delimiter ``|``.

        Raises:
            ModelError: no character at all after normalisation.
        """
        text = text or TextConfig()
        chars: set[str] = set()
        for t in texts:
            chars.update(text(t).replace(" ", ""))
        chars.discard(WORD_DELIMITER)
        if not chars:
            raise ModelError("vocabulary: the transcripts have no character after normalisation")
        return cls([BLANK, UNK, WORD_DELIMITER, *sorted(chars)], text)

    def normalize(self, text: str) -> str:
        """The text as the model learns and is scored on it."""
        return self.text(text)

    def encode(self, text: str, *, normalize: bool = True) -> list[int]:
        """Token ids of ``text`` (characters outside the vocabulary become ``<unk>``)."""
        if normalize:
            text = self.normalize(text)
        return [
            self.delimiter_id if c == " " else self.index.get(c, self.unk_id)
            for c in text.replace(WORD_DELIMITER, " ")
        ]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of collapsed token ids: blank and ``<unk>`` dropped, ``|`` as single spaces."""
        out = []
        for i in ids:
            i = int(i)
            if i in (self.blank_id, self.unk_id):
                continue
            out.append(" " if i == self.delimiter_id else self.tokens[i])
        return " ".join("".join(out).split())

    # -- persistence ------------------------------------------------------------------------
    def save(self, model_dir: str | os.PathLike) -> Path:
        """Write ``vocab.json`` (``{token: id}``); returns its path.  The normalisation is
        recorded by the model's ``config.json`` (see :meth:`to_config`)."""
        path = Path(model_dir) / VOCAB_NAME
        path.write_text(
            json.dumps(self.index, ensure_ascii=False, indent=1) + "\n", encoding="utf-8"
        )
        return path

    def to_config(self) -> dict[str, Any]:
        """What ``config.json`` records about the vocabulary."""
        return {
            "vocab_size": len(self),
            "blank": BLANK,
            "unk": UNK,
            "word_delimiter": WORD_DELIMITER,
            "text_normalization": self.text.to_dict(),
        }

    @classmethod
    def load(cls, model_dir: str | os.PathLike, text: TextConfig | None = None) -> Vocabulary:
        """Read ``vocab.json`` from a model directory.

        Raises:
            ModelError: the file is missing, not a ``{token: id}`` mapping, or its ids are not
                ``0..N-1``.
        """
        path = Path(model_dir) / VOCAB_NAME
        if not path.is_file():
            raise ModelError(f"{path}: not found (an ASR model directory holds {VOCAB_NAME})")
        try:
            data = json.loads(path.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"{path}: cannot parse ({exc})") from None
        if not isinstance(data, dict) or not all(isinstance(v, int) for v in data.values()):
            raise ModelError(f"{path}: expected a JSON object of token -> integer id")
        if sorted(data.values()) != list(range(len(data))):
            raise ModelError(f"{path}: token ids are not 0..{len(data) - 1}")
        tokens = sorted(data, key=data.__getitem__)
        try:
            return cls(tokens, text)
        except ModelError as exc:
            raise ModelError(f"{path}: {exc}") from None
