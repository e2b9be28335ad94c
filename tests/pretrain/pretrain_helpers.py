"""Helpers for the pretraining tests: Kaldi dirs of tiny speech-like wavs, and tiny configs.

Pure tones (``speechx.testing.make_kaldi_dir``'s audio) make every frame of an utterance alike, so
every distractor equals its positive and the contrastive task is empty.  :func:`make_audio_dir`
rewrites the wavs as chirps with an amplitude envelope and some noise: frames differ, and the
task has something to learn.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import soundfile as sf

from speechx.data.kaldi import KaldiDir
from speechx.testing import make_kaldi_dir

SR = 16000

#: a tiny quantiser and a short mask span for the ``tiny`` preset (800 frames/s)
TINY_YAML = """
data:
  train: [{train}]
  dev: [{dev}]
  max_batch_seconds: {batch}
  num_buckets: 1
model:
  source: {source}
  quantizer: {{groups: 2, vars: 8, codevector_dim: 8, proj_dim: 8}}
masking: {{prob: 0.2, length: {length}}}
loss: {{num_negatives: 6}}
gumbel: {{decay: 0.9}}
optim: {{warmup_steps: 1, lr_backbone: 2.0e-3, lr_head: 2.0e-3, schedule: constant}}
max_steps: {steps}
eval_every: {every}
save_every: {every}
log_every: 1
num_threads: 1
seed: {seed}
"""


def tiny_yaml(
    train: Sequence[Path] | Path,
    dev: Sequence[Path] | Path | None = None,
    *,
    source: str = "tiny",
    steps: int = 4,
    every: int = 2,
    batch: float = 1.6,
    length: int = 4,
    seed: int = 0,
) -> str:
    """The text of a tiny :class:`~speechx.pretrain.config.PretrainConfig` YAML."""

    def paths(x: Sequence[Path] | Path | None) -> str:
        if x is None:
            return ""
        items = [x] if isinstance(x, Path) else list(x)
        return ", ".join(str(p) for p in items)

    return TINY_YAML.format(
        train=paths(train),
        dev=paths(dev),
        source=source,
        steps=steps,
        every=every,
        batch=batch,
        length=length,
        seed=seed,
    )


def speechlike(seconds: float, seed: int) -> np.ndarray:
    """A float32 chirp with a syllable-like envelope plus noise, ``round(seconds * SR)`` long."""
    rng = np.random.default_rng(seed)
    n = int(round(seconds * SR))
    t = np.arange(n) / SR
    f0, f1 = rng.uniform(150, 400), rng.uniform(500, 2500)
    phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * max(seconds, 1e-3)))
    envelope = 0.5 + 0.5 * np.sin(2 * np.pi * rng.uniform(3, 7) * t + rng.uniform(0, 6))
    wav = 0.3 * envelope * np.sin(phase) + 0.02 * rng.standard_normal(n)
    return wav.astype(np.float32)


def make_audio_dir(
    root: Path,
    n: int = 6,
    *,
    seconds: float | Sequence[float] = (1.0, 0.8, 0.6),
    lang: str = "nl",
    seed: int = 0,
) -> Path:
    """A Kaldi dir of ``n`` speech-like utterances (see the module docstring)."""
    d = make_kaldi_dir(root, n=n, seconds=seconds, lang=lang)
    kd = KaldiDir.read(d)
    for i, utt in enumerate(kd.utt_ids):
        sf.write(kd.audio_path(utt), speechlike(kd.utt2dur[utt], seed * 1000 + i), SR)
    return d
