"""Training epochs with a frozen Whisper-base: re-encoding the audio every epoch vs cached features.

A tiny Kaldi dir of real Dutch fillets clips with random unit-norm targets is distilled for a
few epochs with ``data.feature_cache=off`` (the frozen encoder runs on every batch) and
``data.feature_cache=auto`` (the encoder runs once, when the store is built; the head trains
on the stored frames).  The script prints the time of the first epoch (which includes building
the store), of each later epoch, the total, and the speed-up of a later epoch and of the whole
run.

    .venv/bin/python benchmarks/feature_cache.py --clips 64 --epochs 5 --threads 2
"""

from __future__ import annotations

import argparse
import glob
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from speechx.audio import audio_info
from speechx.data.kaldi import KaldiDir
from speechx.distill.config import config_from_dict
from speechx.distill.trainer import train_distill


def make_dir(root: Path, pattern: str, n: int, dim: int) -> Path:
    """A Kaldi dir of the first ``n`` clips of 1-6 s with random targets; returns its path."""
    paths = [p for p in sorted(glob.glob(pattern)) if 1.0 <= audio_info(p).duration <= 6.0][:n]
    if not paths:
        raise SystemExit(f"no clips match {pattern}")
    ids = [f"utt{i:04d}" for i in range(len(paths))]
    d = root / "data"
    kdir = KaldiDir(
        wav_scp=dict(zip(ids, paths, strict=True)),
        text={u: f"sentence {i}" for i, u in enumerate(ids)},
        utt2spk={u: u for u in ids},
        utt2lang={u: "nl" for u in ids},
    )
    kdir.write(d)
    out = d / "teacher" / "bench"
    out.mkdir(parents=True)
    (out / "ids.txt").write_text("".join(f"{u}\n" for u in sorted(ids)))
    vec = np.random.default_rng(0).standard_normal((len(ids), dim)).astype(np.float32)
    np.save(out / "text.npy", vec / np.linalg.norm(vec, axis=1, keepdims=True))
    return d


def run(data: Path, exp: Path, cache: str, epochs: int, threads: int) -> list[float]:
    """Train; returns ``[setup, epoch 0, epoch 1, ...]`` wall times in seconds.

    Setup includes building the feature store when the cache is on.
    """
    cfg = config_from_dict(
        {
            "data": {
                "train": [str(data)],
                "teacher_id": "bench",
                "max_batch_seconds": 40,
                "feature_cache": cache,
            },
            "model": {"source": "whisper-base", "overrides": {"pooling": "attention"}},
            "epochs": epochs,
            "eval_every": 10**6,
            "save_every": 10**6,
            "log_every": 10**6,
            "num_threads": threads,
        }
    ).validate()
    import speechx.distill.trainer as trainer_mod

    first_call: dict[int, float] = {}
    real = trainer_mod.TrainingLoop._epoch_batches

    def timed(self, epoch):  # noqa: ANN001, ANN202
        # the loop asks for an epoch's batches when it starts the epoch
        first_call.setdefault(epoch, time.perf_counter())
        return real(self, epoch)

    trainer_mod.TrainingLoop._epoch_batches = timed  # type: ignore[method-assign]
    start = time.perf_counter()
    try:
        train_distill(cfg, exp)
    finally:
        trainer_mod.TrainingLoop._epoch_batches = real  # type: ignore[method-assign]
    end = time.perf_counter()
    marks = [start] + [first_call[e] for e in range(epochs)] + [end]
    return [b - a for a, b in zip(marks, marks[1:], strict=False)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pattern", default="/usr/share/games/fillets-ng/sound/*/nl/*.ogg")
    parser.add_argument("--clips", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = make_dir(root, args.pattern, args.clips, 512)
        seconds = sum(audio_info(p).duration for p in KaldiDir.read(data).wav_scp.values())
        print(
            f"{args.clips} clips, {seconds:.0f} s of audio, {args.epochs} epochs, "
            f"{args.threads} threads"
        )
        off = run(data, root / "off", "off", args.epochs, args.threads)
        on = run(data, root / "on", "auto", args.epochs, args.threads)
    for name, t in (("re-encode (cache off)", off), ("cached features", on)):
        print(
            f"{name:22s} setup {t[0]:.1f}s  epochs "
            f"{', '.join(f'{x:.1f}s' for x in t[1:])}  total {sum(t):.1f}s"
        )
    # the last epoch also holds the final save, dev-less model write and curves
    epoch_off, epoch_on = float(np.median(off[1:])), float(np.median(on[1:]))
    print(
        f"an epoch (median): {epoch_off:.2f}s re-encoding vs {epoch_on:.2f}s cached "
        f"({epoch_off / epoch_on:.0f}x); whole run {sum(off) / sum(on):.2f}x faster "
        "(the cache is built once, in setup)"
    )


if __name__ == "__main__":
    main()
