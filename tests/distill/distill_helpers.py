"""Helpers for distillation tests: tiny Kaldi dirs with fake teacher embeddings, tiny configs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest
import torch

from speechx.data.kaldi import KaldiDir
from speechx.distill.config import DistillConfig, config_from_dict
from speechx.models import build_encoder
from speechx.testing import make_kaldi_dir

TEACHER = "fake-teacher"
DIM = 8


def write_fake_teacher(
    data_dir: Path,
    vectors: dict[str, np.ndarray],
    *,
    teacher_id: str = TEACHER,
) -> Path:
    """Write ``<data_dir>/teacher/<teacher_id>/`` in the embed_data_dir layout.

    ``vectors`` maps a field ("text", "text.en") to float32 [N, D] rows in sorted-id order
    (NaN rows mean "no text for this field").
    """
    ids = KaldiDir.read(data_dir).utt_ids
    out = data_dir / "teacher" / teacher_id
    out.mkdir(parents=True, exist_ok=True)
    (out / "ids.txt").write_text("".join(f"{u}\n" for u in ids))
    for field, arr in vectors.items():
        assert arr.shape[0] == len(ids)
        np.save(out / f"{field}.npy", arr.astype(np.float32))
    return out


def orthogonal(n: int, dim: int, seed: int) -> np.ndarray:
    """``n`` orthonormal rows (n <= dim) of a random rotation."""
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((dim, dim)))
    return q[:n].astype(np.float32)


MakeData = Callable[..., Path]


@pytest.fixture
def make_data(tmp_path: Path) -> MakeData:
    """``make_data(name, n, lang=..., seconds=..., freq_offset=...)``: a Kaldi dir of ``n``
    tones (distinct frequencies, distinct texts) with orthogonal fake ``text`` and ``text.en``
    targets.
    """

    def make(
        name: str,
        n: int = 4,
        *,
        lang: str = "nl",
        seconds: float | Sequence[float] = 0.4,
        seed: int = 0,
    ) -> Path:
        texts = [f"{name} sentence number {i}" for i in range(n)]
        d = make_kaldi_dir(tmp_path / name, n=n, seconds=seconds, lang=lang, texts=texts)
        vec = orthogonal(n, DIM, seed)
        en = np.roll(vec, 1, axis=1)
        write_fake_teacher(d, {"text": vec, "text.en": en})
        return d

    return make


def tiny_config(train: list[Path], dev: list[Path] | None = None, **top: object) -> DistillConfig:
    """A DistillConfig for the tiny preset; ``top`` sets top-level keys or dotted sections."""
    data: dict[str, object] = {
        "data": {
            "train": [str(p) for p in train],
            "dev": [str(p) for p in dev or []],
            "teacher_id": TEACHER,
            "max_batch_seconds": 2.0,
            "num_buckets": 1,
        },
        "model": {"source": "tiny"},
        "optim": {"warmup_steps": 1, "lr_backbone": 1e-3, "lr_head": 1e-2},
        "max_steps": 4,
        "eval_every": 2,
        "save_every": 2,
        "log_every": 1,
        "seed": 0,
    }
    for key, value in top.items():
        node = data
        parts = key.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})  # type: ignore[assignment]
        node[parts[-1]] = value
    return config_from_dict(data).validate()


def save_teacher(path: Path, seed: int = 0, **overrides: object) -> Path:
    """A tiny random encoder dir (the speech teacher of these tests)."""
    torch.manual_seed(seed)
    build_encoder("tiny", DIM, **overrides).save_pretrained(path)
    return path


def unlabeled_dir(path: Path, n: int = 5, seconds: object = (0.4, 0.5, 0.6, 0.3, 0.7)) -> Path:
    """A Kaldi dir with audio but no transcript or translation."""
    d = make_kaldi_dir(path, n=n, seconds=seconds)  # type: ignore[arg-type]
    for name in ("text", "text.en"):
        (d / name).unlink()
    return d


class Crash(Exception):
    """A training run stopped on purpose by :func:`crash_after_checkpoint`."""


def crash_after_checkpoint(
    monkeypatch: pytest.MonkeyPatch,
    step: int,
    train: Callable[[], object],
    exc: type[BaseException] = Crash,
) -> None:
    """Run ``train()`` with the shared training loop (distillation, CTC, pretraining) raising
    ``exc`` right after it writes checkpoint ``step``, as a run killed there would stop; the loop
    saves normally again afterwards.  The test fails when ``train()`` does not raise ``exc``.
    """
    import speechx.distill.trainer as trainer_mod

    real_save = trainer_mod.save_checkpoint

    def save_then_crash(state, ckpt_dir, at, keep):  # noqa: ANN001, ANN202
        path = real_save(state, ckpt_dir, at, keep)
        if at == step:
            raise exc
        return path

    monkeypatch.setattr(trainer_mod, "save_checkpoint", save_then_crash)
    try:
        with pytest.raises(exc):
            train()
    finally:
        monkeypatch.setattr(trainer_mod, "save_checkpoint", real_save)
