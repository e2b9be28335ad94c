"""Whisper-base encoder throughput: true-length encoding vs transformers' 30-s padding.

Real Dutch fillets clips (``/usr/share/games/fillets-ng/sound/*/nl/*.ogg``) of 3-5 s are
encoded in batches of 8 by :class:`speechx.models.whisper.WhisperBackbone` with
``encoding="variable"`` and ``encoding="padded"``; the script prints audio-seconds per second of
each and their ratio (the goal is >= 5x), plus how close the mean-pooled frames of the two paths
are (cosine).

    .venv/bin/python benchmarks/whisper_variable_length.py --clips 32 --threads 2
"""

from __future__ import annotations

import argparse
import glob
import os
import time

import numpy as np
import torch

from speechx.audio import audio_info, load_audio
from speechx.models.whisper import WhisperBackbone
from speechx.models.whisper_import import import_whisper


def pick_clips(pattern: str, n: int, lo: float, hi: float) -> list[np.ndarray]:
    """The first ``n`` clips (sorted by path) lasting between ``lo`` and ``hi`` seconds."""
    out = []
    for path in sorted(glob.glob(pattern)):
        if lo <= audio_info(path).duration <= hi:
            out.append(load_audio(path, 16000))
            if len(out) == n:
                break
    if not out:
        raise SystemExit(f"no clips of {lo}-{hi} s match {pattern}")
    return out


def run(bb: WhisperBackbone, clips: list[np.ndarray], batch_size: int) -> tuple[float, np.ndarray]:
    """Seconds taken and mean-pooled frames ``[N, H]``."""
    pooled = []
    start = time.perf_counter()
    with torch.inference_mode():
        for i in range(0, len(clips), batch_size):
            chunk = clips[i : i + batch_size]
            lengths = torch.tensor([len(c) for c in chunk])
            batch = torch.zeros(len(chunk), int(lengths.max()))
            for row, c in enumerate(chunk):
                batch[row, : len(c)] = torch.from_numpy(c)
            out = bb(batch, lengths)
            for row in range(len(chunk)):
                pooled.append(out.hidden[row, : int(out.frame_lengths[row])].mean(0).numpy())
    return time.perf_counter() - start, np.stack(pooled)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pattern", default="/usr/share/games/fillets-ng/sound/*/nl/*.ogg")
    parser.add_argument("--clips", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--min-seconds", type=float, default=3.0)
    parser.add_argument("--max-seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    clips = pick_clips(args.pattern, args.clips, args.min_seconds, args.max_seconds)
    audio_s = sum(len(c) for c in clips) / 16000
    bb = WhisperBackbone.from_checkpoint(import_whisper("whisper-base")).eval()
    run(bb, clips[: args.batch_size], args.batch_size)  # warm-up
    results = {}
    for encoding in ("variable", "padded"):
        bb.options.encoding = encoding
        seconds, pooled = run(bb, clips, args.batch_size)
        results[encoding] = (seconds, pooled)
        print(
            f"{encoding:8s}: {len(clips)} clips, {audio_s:.1f} s of audio in {seconds:.2f} s = "
            f"{audio_s / seconds:.1f} audio-s/s"
        )
    ratio = results["padded"][0] / results["variable"][0]
    a, b = results["variable"][1], results["padded"][1]
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
    print(f"speed-up variable / padded: {ratio:.1f}x (goal >= 5x)")
    print(
        f"mean-pooled frames, variable vs padded: cosine mean {cos.mean():.3f}, min {cos.min():.3f}"
    )
    print(f"threads {args.threads}, load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
