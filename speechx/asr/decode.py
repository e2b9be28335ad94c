"""CTC decoding: greedy, prefix beam search, and pyctcdecode (with an optional KenLM model).

All decoders take log-probabilities ``[T, V]`` (numpy, float) of one utterance whose real frames
are ``T`` and return the text (words separated by single spaces)::

    text = greedy_decode(log_probs, vocab)
    text = beam_decode(log_probs, vocab, beam_size=8)            # built-in, no LM
    dec = PyctcdecodeDecoder(vocab, kenlm_model="lm.arpa")      # pyctcdecode (+ KenLM)
    text = dec(log_probs, beam_size=32)

:func:`beam_decode` is a plain CTC prefix beam search written here, so beam search never
depends on an optional package; pyctcdecode declares ``numpy<2`` although it runs with numpy 2,
so it is used when it is importable and never installed by speechx itself.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from speechx.asr.vocab import Vocabulary
from speechx.errors import SpeechxError


class DecodeError(SpeechxError):
    """A decoder cannot be built or its input has the wrong shape."""


def _check(log_probs: np.ndarray, vocab: Vocabulary) -> np.ndarray:
    lp = np.asarray(log_probs, dtype=np.float64)
    if lp.ndim != 2 or lp.shape[1] != len(vocab):
        raise DecodeError(
            f"CTC decoding: log-probabilities must be [T, {len(vocab)}], got {tuple(lp.shape)}"
        )
    return lp


def greedy_ids(log_probs: np.ndarray) -> list[int]:
    """Best token per frame, repeats collapsed and blanks (id 0) removed."""
    return collapse_ids(np.asarray(log_probs).argmax(axis=-1).tolist())


def collapse_ids(best: list[int]) -> list[int]:
    """A frame-wise id path with repeats collapsed and blanks (id 0) removed."""
    out, prev = [], -1
    for t in best:
        if t != prev and t != 0:
            out.append(int(t))
        prev = t
    return out


def greedy_decode(log_probs: np.ndarray, vocab: Vocabulary) -> str:
    """Greedy (best path) decoding of one utterance.

    Raises:
        DecodeError: ``log_probs`` is not ``[T, len(vocab)]``.
    """
    return vocab.decode(greedy_ids(_check(log_probs, vocab)))


def _logaddexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))


def beam_decode(
    log_probs: np.ndarray,
    vocab: Vocabulary,
    *,
    beam_size: int = 8,
    token_prune: float = -12.0,
) -> str:
    """CTC prefix beam search without a language model.

    Each prefix keeps two scores, ending in blank and ending in a non-blank token, so that
    ``a a`` (two frames, one token) and ``a <blank> a`` (two tokens) are told apart; prefixes are
    ranked by their total probability summed over alignments.

    Args:
        beam_size: prefixes kept after each frame.
        token_prune: per frame, tokens with a log-probability below this are not extended
            (the frame's best token always is).

    Returns:
        The best prefix as text.

    Raises:
        DecodeError: wrong shape or ``beam_size < 1``.
    """
    lp = _check(log_probs, vocab)
    if beam_size < 1:
        raise DecodeError(f"beam_size must be >= 1, got {beam_size}")
    ninf = -math.inf
    # prefix (tuple of ids) -> [log p ending in blank, log p ending in non-blank]
    beams: dict[tuple[int, ...], list[float]] = {(): [0.0, ninf]}
    for frame in lp:
        best = int(frame.argmax())
        cands = [int(v) for v in np.nonzero(frame >= token_prune)[0]] or [best]
        nxt: dict[tuple[int, ...], list[float]] = {}

        def add(prefix: tuple[int, ...], which: int, value: float, nxt: dict = nxt) -> None:
            entry = nxt.setdefault(prefix, [ninf, ninf])
            entry[which] = _logaddexp(entry[which], value)

        for prefix, (pb, pnb) in beams.items():
            total = _logaddexp(pb, pnb)
            for v in cands:
                p = float(frame[v])
                if v == 0:
                    add(prefix, 0, total + p)
                    continue
                last = prefix[-1] if prefix else None
                ext = (*prefix, v)
                if v == last:
                    add(ext, 1, pb + p)  # a blank separated the repeat: a new token
                    add(prefix, 1, pnb + p)  # the same token continues
                else:
                    add(ext, 1, total + p)
        ranked = sorted(nxt.items(), key=lambda kv: _logaddexp(*kv[1]), reverse=True)
        beams = dict(ranked[:beam_size])
    best_prefix = max(beams.items(), key=lambda kv: _logaddexp(*kv[1]))[0]
    return vocab.decode(best_prefix)


def pyctcdecode_available() -> bool:
    """Whether :mod:`pyctcdecode` can be imported."""
    try:
        import pyctcdecode  # noqa: F401
    except ImportError:
        return False
    return True


def kenlm_available() -> bool:
    """Whether the ``kenlm`` Python module can be imported (needed for an n-gram LM)."""
    try:
        import kenlm  # noqa: F401
    except ImportError:
        return False
    return True


class PyctcdecodeDecoder:
    """Beam search with pyctcdecode, optionally fused with a KenLM n-gram model.

    Args:
        vocab: the model's vocabulary (blank -> "", ``|`` -> " ", ``<unk>`` -> "⁇").
        kenlm_model: an ARPA or binary KenLM file over normalised words; None = no LM.
        alpha: LM weight; beta: word insertion bonus (pyctcdecode's names).

    Raises:
        DecodeError: pyctcdecode is not installed, or an LM is given and ``kenlm`` is not, or
            the LM file does not exist.
    """

    def __init__(
        self,
        vocab: Vocabulary,
        kenlm_model: str | os.PathLike | None = None,
        *,
        alpha: float = 0.5,
        beta: float = 1.0,
    ) -> None:
        if not pyctcdecode_available():
            raise DecodeError(
                "pyctcdecode is not installed (pip install pyctcdecode); use the built-in beam "
                "search instead (no LM)"
            )
        if kenlm_model is not None:
            if not os.path.isfile(kenlm_model):
                raise DecodeError(f"{kenlm_model}: KenLM model file not found")
            if not kenlm_available():
                raise DecodeError(
                    f"{kenlm_model}: an n-gram LM needs the kenlm Python module, which is not "
                    "installed"
                )
        import logging

        from pyctcdecode import build_ctcdecoder

        # pyctcdecode logs a warning about kenlm at import and build time even without an LM
        logging.getLogger("pyctcdecode").setLevel(logging.ERROR)
        labels = []
        for i, tok in enumerate(vocab.tokens):
            if i == vocab.blank_id:
                labels.append("")
            elif i == vocab.delimiter_id:
                labels.append(" ")
            elif i == vocab.unk_id:
                labels.append("⁇")
            else:
                labels.append(tok)
        self.vocab = vocab
        self.kenlm_model = None if kenlm_model is None else str(kenlm_model)
        self._decoder: Any = build_ctcdecoder(
            labels, kenlm_model_path=self.kenlm_model, alpha=alpha, beta=beta
        )

    def __call__(self, log_probs: np.ndarray, *, beam_size: int = 32) -> str:
        """Decode one utterance (``[T, V]`` log-probabilities); returns the text."""
        lp = _check(log_probs, self.vocab).astype(np.float32)
        text = self._decoder.decode(lp, beam_width=beam_size)
        return " ".join(text.replace("⁇", "").split())


def decode_batch(
    log_probs: Sequence[np.ndarray],
    vocab: Vocabulary,
    *,
    beam_size: int = 1,
    backend: str = "auto",
    kenlm_model: str | os.PathLike | None = None,
) -> list[str]:
    """Decode several utterances (each ``[T_i, V]``).

    Args:
        beam_size: 1 = greedy; more = beam search.
        backend: for beam search: ``"builtin"`` (:func:`beam_decode`), ``"pyctcdecode"``, or
            ``"auto"`` (pyctcdecode when an LM is given, else built-in).
        kenlm_model: a KenLM file; implies pyctcdecode.

    Returns:
        One text per utterance.

    Raises:
        DecodeError: an unknown backend, or pyctcdecode/kenlm missing when needed.
    """
    if backend not in ("auto", "builtin", "pyctcdecode"):
        raise DecodeError(f"unknown CTC decoding backend {backend!r} (auto, builtin, pyctcdecode)")
    if kenlm_model is None and beam_size <= 1:
        return [greedy_decode(lp, vocab) for lp in log_probs]
    if kenlm_model is not None or backend == "pyctcdecode":
        dec = PyctcdecodeDecoder(vocab, kenlm_model)
        return [dec(lp, beam_size=max(beam_size, 1)) for lp in log_probs]
    return [beam_decode(lp, vocab, beam_size=beam_size) for lp in log_probs]
