"""Shared pytest fixtures: tiny wavs and Kaldi data dirs built with :mod:`speechx.testing`."""

from __future__ import annotations

from pathlib import Path

import pytest

from speechx.testing import make_kaldi_dir, make_wav


@pytest.fixture
def wav_dir(tmp_path: Path) -> Path:
    """A dir with ``a.wav`` (1 s, 16 kHz), ``b.wav`` (0.5 s, 16 kHz) and ``c.wav`` (0.25 s, 8 kHz)."""
    d = tmp_path / "wavs"
    make_wav(d / "a.wav", 1.0, 16000, freq=440.0)
    make_wav(d / "b.wav", 0.5, 16000, freq=660.0)
    make_wav(d / "c.wav", 0.25, 8000, freq=330.0)
    return d


@pytest.fixture
def kaldi_dir(tmp_path: Path) -> Path:
    """A valid three-utterance Kaldi dir (whole-file wavs, text.en, utt2sent, ...)."""
    return make_kaldi_dir(tmp_path / "data", n=3)


@pytest.fixture
def kaldi_dir_segments(tmp_path: Path) -> Path:
    """A valid three-utterance Kaldi dir whose utterances are segments of one recording."""
    return make_kaldi_dir(tmp_path / "data_seg", n=3, with_segments=True)
