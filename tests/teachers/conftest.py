"""Fixtures for the teacher tests: a counting fake teacher and a tiny random BERT on disk."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

# Words of every sentence the HF tests encode, so that nothing maps to [UNK].
TINY_WORDS = [
    "the",
    "fish",
    "swims",
    "in",
    "water",
    "a",
    "big",
    "blue",
    "sea",
    "de",
    "vis",
    "zwemt",
    "het",
    "water",
    "een",
    "grote",
    "blauwe",
    "zee",
    "der",
    "fisch",
    "schwimmt",
    "im",
    "wasser",
    "short",
    "long",
    "sentence",
    "with",
    "many",
    "words",
    "to",
    "pad",
    "the",
    "batch",
]


class CountingTeacher:
    """A fake teacher: a deterministic random unit vector per text; counts what it encodes."""

    name = "counting"
    languages = ("en", "nl")

    def __init__(self, dim: int = 8, teacher_id: str = "counting-v1") -> None:
        self.dim = dim
        self.teacher_id = teacher_id
        self.calls = 0
        self.encoded: list[str] = []

    def encode(
        self, texts: Sequence[str], batch_size: int = 64, show_progress: bool | None = None
    ) -> np.ndarray:
        texts = list(texts)
        self.calls += 1
        self.encoded.extend(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:8], "little")
            v = np.random.default_rng(seed).standard_normal(self.dim)
            out[i] = v / np.linalg.norm(v)
        return out


@pytest.fixture
def counting_teacher() -> CountingTeacher:
    return CountingTeacher()


@pytest.fixture
def make_counting() -> type[CountingTeacher]:
    """The :class:`CountingTeacher` class, for tests that need several fakes."""
    return CountingTeacher


def make_tiny_bert(path: Path, seed: int = 0, with_pooler: bool = True) -> Path:
    """Save a random 2-layer BERT (hidden 32) and a WordPiece tokenizer to ``path``."""
    import torch
    from transformers import BertConfig, BertModel, BertTokenizerFast

    path.mkdir(parents=True, exist_ok=True)
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = specials + sorted(set(TINY_WORDS)) + ["##s", "##en"]
    (path / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    # transformers 5 ignores vocab_file=; the vocab is passed as a dict.
    tokenizer = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)})
    tokenizer.save_pretrained(path)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
    )
    torch.manual_seed(seed)
    BertModel(config, add_pooling_layer=with_pooler).save_pretrained(path)
    return path


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("tiny_bert") / "tiny-bert")


@pytest.fixture(scope="session")
def make_bert():
    """The :func:`make_tiny_bert` factory, for tests that need a second or odd checkpoint."""
    return make_tiny_bert
