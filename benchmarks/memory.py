"""Peak memory of embedding a 1-hour recording in windows (speechx.longform), streamed from disk.

    .venv/bin/python benchmarks/memory.py            # 60 min at 16 kHz + 10 min at 22.05 kHz,
                                                     # the trained Whisper-base student
    .venv/bin/python benchmarks/memory.py --quick    # 2 min + 1 min, the tiny preset (< 60 s)

The recording is made by looping the real Dutch Fish Fillets clips of
``egs/fillets/data/fillets_nl_dev/wav.scp`` (with short pauses) into a temporary WAV; when that
data dir is missing, speech-like modulated noise is used.  A second, shorter file at 22.05 kHz
exercises the streaming resampler.

Each measurement runs in a child process that only loads the model and encodes, so writing the
files does not count: the child reports its peak RSS (``getrusage`` maxrss), the RSS after
loading the model, the number of windows, and audio-seconds per wall-second.  The naive
alternative, loading the whole file as one array, is measured the same way (its array size and
peak RSS); encoding that array in one forward pass is not attempted, since no encoder here
attends over an hour.

It ends with ``ratio peak_rss_gb=...`` (the largest peak of the windowed runs) and
``ratio longform_realtime_factor=...`` (audio seconds embedded per wall-clock second on the
16 kHz file; above 1 is faster than real time).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

REPO = Path(__file__).resolve().parent.parent
DEV_SCP = REPO / "egs/fillets/data/fillets_nl_dev/wav.scp"
#: trained models, first found wins: the larger config's, then the demo's (`make demo`)
TRAINED = [REPO / "egs/fillets/exp/large/model", REPO / "egs/fillets/exp/demo/model"]


# --------------------------------------------------------------------------- recording
def _clips(sample_rate: int, limit: int = 60) -> list[np.ndarray]:
    """Up to ``limit`` real Dutch clips at ``sample_rate``, or synthetic ones without the data."""
    from speechx.audio import load_audio

    if DEV_SCP.is_file():
        paths = [ln.split(maxsplit=1)[1] for ln in DEV_SCP.read_text().splitlines()[:limit]]
        return [load_audio(p, sample_rate) for p in paths if Path(p).is_file()]
    rng = np.random.default_rng(0)
    out = []
    for _ in range(20):
        n = int(rng.uniform(1.5, 4.0) * sample_rate)
        t = np.arange(n) / sample_rate
        env = np.abs(np.sin(2 * np.pi * rng.uniform(2, 5) * t))  # syllable-rate envelope
        out.append((0.1 * env * rng.standard_normal(n)).astype(np.float32))
    return out


def make_recording(path: Path, minutes: float, sample_rate: int) -> float:
    """Write ``minutes`` of looped clips with 0.3 s pauses as 16-bit WAV; return its seconds."""
    clips = _clips(sample_rate)
    pause = np.zeros(int(0.3 * sample_rate), dtype=np.float32)
    target = int(minutes * 60 * sample_rate)
    written = 0
    with sf.SoundFile(str(path), "w", sample_rate, 1, subtype="PCM_16") as fh:
        i = 0
        while written < target:
            piece = np.concatenate([clips[i % len(clips)], pause])[: target - written]
            fh.write(piece)
            written += piece.shape[0]
            i += 1
    return written / sample_rate


# ------------------------------------------------------------------------------- child
def child(a: argparse.Namespace) -> None:
    """Run in a fresh process: load the model, then encode (or naively load) one file."""

    def rss_mb() -> float:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * 4096 / 2**20

    if a.child == "naive":
        from speechx.audio import load_audio

        t0 = time.perf_counter()
        wav = load_audio(a.audio, 16000)
        result = {"array_mb": wav.nbytes / 2**20, "seconds": time.perf_counter() - t0}
    else:
        import torch

        from speechx.longform import LongformConfig, encode_long
        from speechx.models import SpeechEncoder
        from speechx.models.presets import PRESETS, build_encoder

        torch.set_num_threads(a.threads)
        if a.model in PRESETS:
            encoder = build_encoder(a.model, embed_dim=512)
        else:
            encoder = SpeechEncoder.from_pretrained(a.model)
        encoder.eval()
        model_mb = rss_mb()
        cfg = LongformConfig(window=a.window, hop=a.hop, batch_size=a.batch_size)
        t0 = time.perf_counter()
        out = encode_long(encoder, a.audio, cfg)
        wall = time.perf_counter() - t0
        result = {
            "model_rss_mb": model_mb,
            "windows": len(out),
            "audio_s": out.duration,
            "wall_s": wall,
            "realtime": out.duration / wall,
        }
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("RESULT " + json.dumps(result), flush=True)


def run_child(a: argparse.Namespace, mode: str, audio: Path) -> dict:
    argv = [sys.executable, __file__, "--child", mode, "--audio", str(audio)]
    argv += ["--model", a.model, "--window", str(a.window), "--batch-size", str(a.batch_size)]
    argv += ["--threads", str(a.threads)]
    if a.hop is not None:
        argv += ["--hop", str(a.hop)]
    proc = subprocess.run(argv, capture_output=True, text=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        sys.exit(f"child {mode} on {audio} failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


# -------------------------------------------------------------------------------- main
def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="2 + 1 minutes, tiny preset (< 60 s)")
    p.add_argument("--minutes", type=float, default=None, help="16 kHz file (60, quick 2)")
    p.add_argument("--resample-minutes", type=float, default=None, help="22.05 kHz (10, quick 1)")
    p.add_argument(
        "--model",
        default=None,
        help="model dir or preset (default: egs/fillets/exp/large/model or exp/demo/model if present, else the "
        "whisper-base preset; quick: the tiny preset)",
    )
    p.add_argument("--window", type=float, default=10.0)
    p.add_argument("--hop", type=float, default=None, help="default window/2")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--child", choices=["encode", "naive"], help=argparse.SUPPRESS)
    p.add_argument("--audio", type=Path, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        child(a)
        return

    minutes = a.minutes or (2.0 if a.quick else 60.0)
    rs_minutes = a.resample_minutes or (1.0 if a.quick else 10.0)
    if a.model is None:
        found = [str(m) for m in TRAINED if m.is_dir()]
        a.model = "tiny" if a.quick else (found[0] if found else "whisper-base")
    hop = a.hop if a.hop is not None else a.window / 2
    print(f"model {a.model}; window {a.window} s, hop {hop} s, batch {a.batch_size}")

    with tempfile.TemporaryDirectory(prefix="speechx-memory-") as tmp:
        f16, f22 = Path(tmp) / "long_16k.wav", Path(tmp) / "long_22k.wav"
        t0 = time.perf_counter()
        dur16 = make_recording(f16, minutes, 16000)
        dur22 = make_recording(f22, rs_minutes, 22050)
        src = "fillets nl dev clips" if DEV_SCP.is_file() else "synthetic noise"
        print(f"recordings from {src} written in {time.perf_counter() - t0:.1f}s")
        rows = []
        for name, path, dur in (("16 kHz", f16, dur16), ("22.05 kHz", f22, dur22)):
            r = run_child(a, "encode", path)
            rows.append((name, dur, r))
        naive = run_child(a, "naive", f16)

    print()
    header = (
        f"{'run':<26} {'audio_min':>9} {'windows':>8} {'model_MB':>9} {'peak_MB':>9} "
        f"{'wall_s':>8} {'audio_s/s':>9}"
    )
    print(header)
    print("-" * len(header))
    for name, dur, r in rows:
        print(
            f"{'windowed ' + name:<26} {dur / 60:9.1f} {r['windows']:8d} {r['model_rss_mb']:9.0f} "
            f"{r['peak_rss_mb']:9.0f} {r['wall_s']:8.1f} {r['realtime']:9.1f}"
        )
    print(
        f"{'naive whole-file load':<26} {dur16 / 60:9.1f} {'-':>8} {'-':>9} "
        f"{naive['peak_rss_mb']:9.0f} {naive['seconds']:8.1f} {'-':>9}"
    )
    print(
        f"\nnaive: the {dur16 / 60:.0f}-min file alone is a {naive['array_mb']:.0f} MB float32 "
        "array at 16 kHz, before any model activations; no encoder here attends over it at once"
    )
    peak = max(r["peak_rss_mb"] for _, _, r in rows) / 1024
    print(f"goal: peak RSS <= 2 GB -> {'met' if peak <= 2 else 'NOT met'} ({peak:.2f} GB)")
    print(f"ratio peak_rss_gb={peak:.3f}")
    print(f"ratio longform_realtime_factor={rows[0][2]['realtime']:.2f}")


if __name__ == "__main__":
    main()
