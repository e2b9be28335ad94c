"""Speech-encoder speed on this machine: training step time and encode throughput.

    .venv/bin/python benchmarks/encoder_speed.py [--presets w2v2-scratch-small w2v2-scratch-fast]

For each preset it prints the mean forward+backward time of a batch (16 x 3 s by default,
AdamW step excluded), the audio seconds trained per wall second, and ``encode`` throughput as a
multiple of real time (seconds of audio embedded per wall second).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch

from speechx.models import build_encoder


def train_step_seconds(
    preset: str, batch: int, seconds: float, repeats: int, sr: int
) -> tuple[float, float]:
    """Mean wall and process-CPU time of forward + backward on random audio (after a warm-up).

    CPU time divided by the thread count approximates the wall time on an idle machine; it is
    printed because these machines are shared and wall time alone swings with the load.
    """
    enc = build_encoder(preset, embed_dim=512, pooling="attention").train()
    x = torch.randn(batch, int(seconds * sr)) * 0.1
    lengths = torch.full((batch,), x.shape[1], dtype=torch.long)
    target = torch.nn.functional.normalize(torch.randn(batch, 512), dim=-1)
    wall, cpu = [], []
    for i in range(repeats + 1):
        enc.zero_grad(set_to_none=True)
        t0, c0 = time.perf_counter(), time.process_time()
        emb = enc(x, lengths)["embeddings"]
        loss = (1 - (emb * target).sum(-1)).mean()
        loss.backward()
        if i:  # the first pass warms up allocators and kernels
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    return float(np.mean(wall)), float(np.mean(cpu))


def encode_realtime_factor(preset: str, n: int, seconds: float, batch_size: int, sr: int) -> float:
    """Seconds of audio embedded per wall second by ``encode`` (lengths vary 0.5x-1.5x)."""
    enc = build_encoder(preset, embed_dim=512, pooling="attention").eval()
    rng = np.random.default_rng(0)
    durs = rng.uniform(0.5 * seconds, 1.5 * seconds, size=n)
    inputs = [((0.1 * rng.standard_normal(int(d * sr))).astype(np.float32), sr) for d in durs]
    enc.encode(inputs[:batch_size], batch_size=batch_size)  # warm-up
    t0 = time.perf_counter()
    enc.encode(inputs, batch_size=batch_size, show_progress=False)
    return float(durs.sum() / (time.perf_counter() - t0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["w2v2-scratch-small", "w2v2-scratch-fast"])
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--encode-n", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    sr = 16000
    audio = args.batch * args.seconds
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    for preset in args.presets:
        step, cpu = train_step_seconds(preset, args.batch, args.seconds, args.repeats, sr)
        rtf = encode_realtime_factor(preset, args.encode_n, args.seconds, args.batch, sr)
        print(
            f"{preset:22s} fwd+bwd {args.batch}x{args.seconds:g}s: {step:6.2f} s/step wall, "
            f"{cpu:6.2f} s CPU ({audio / step:5.1f} s audio/s wall)   "
            f"encode: {rtf:6.1f}x real time"
        )
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
