"""Index a ~10-hour collection with ``speechx index-audio``: peak memory and hours per hour.

    .venv/bin/python benchmarks/audio_index.py           # 10 one-hour files, the trained model
                                                          # (egs/fillets/exp/demo/model), energy
                                                          # boundaries; hours on 2 cores
    .venv/bin/python benchmarks/audio_index.py --quick   # 2 half-minute files, the tiny preset,
                                                          # fixed windows (< 60 s)

The recordings are made as in ``benchmarks/memory.py`` (:func:`memory.make_recording`: the real
Dutch Fish Fillets dev clips looped with short pauses, or speech-like noise without the data),
written to a temporary Kaldi dir, and indexed by ``speechx index-audio`` in a child process
(``--nj`` jobs are its children), so writing the files does not count.  The peak RSS is the
largest of that process tree (``getrusage(RUSAGE_CHILDREN)``); it is compared with the size of
*one* recording held whole as float32 at 16 kHz, which the indexer never does: it streams each
recording in blocks, one recording after another.

It ends with ``ratio audio_index_peak_rss_gb=...``, ``ratio audio_index_hours_per_hour=...``
(hours of audio indexed per wall-clock hour) and ``ratio audio_index_rss_over_one_recording=...``
(peak RSS above the model's own footprint, over one recording's float32 size: below 1 would
prove that less than one recording's audio was ever in memory, but the RSS also holds the
encoder's working memory, so above 1 proves nothing either way; with ``--quick``'s 30-s files
that working memory, about 150 MB for the tiny preset, dwarfs a 2-MB recording).  ``--quick`` took 13 s of indexing here (4.7 h/h for
the tiny preset, peak 0.54 GB).  The full run (2026-12-04, demo model, energy boundaries, one
job, a quiet machine): 10.0 h in 816 s, **44.1 hours per hour**, 15,770 windows, peak RSS
1.18 GB of which 0.55 GB is the model; one recording would be 220 MB of float32.  The RSS above
the model (638 MB; 428 MB for 2 x 30 min, 263 MB for 15 min) is not audio, which never exceeds
a block plus a batch of windows (``tests/test_audio_search.py`` checks numpy's peak with
tracemalloc), but the encoder's activations and the allocator's cache for windows of varying
length.  With ``--boundaries vad`` (silero) 15 min took 50 s, 18 h/h.
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from memory import make_recording  # noqa: E402  (benchmarks/ is not a package)

REPO = Path(__file__).resolve().parent.parent
TRAINED = REPO / "egs/fillets/exp/demo/model"


def _model_rss_mb(model: str) -> float:
    """RSS of a child that only loads the model (the baseline the audio adds to)."""
    code = (
        "import resource,sys\n"
        "from speechx.models import SpeechEncoder\n"
        "SpeechEncoder.from_pretrained(sys.argv[1])\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, model], capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="2 x 30 s, tiny preset (< 60 s)")
    p.add_argument("--files", type=int, default=None, help="recordings (10; quick 2)")
    p.add_argument("--minutes", type=float, default=None, help="per recording (60; quick 0.5)")
    p.add_argument("--model", default=None, help="model dir (default: the demo model; quick: tiny)")
    p.add_argument("--window", type=float, default=6.0)
    p.add_argument("--hop", type=float, default=2.0)
    p.add_argument("--boundaries", default=None, help="fixed|energy|vad (energy; quick fixed)")
    p.add_argument("--nj", type=int, default=1)
    p.add_argument("--backend", default="faiss-flat")
    a = p.parse_args()
    files = a.files or (2 if a.quick else 10)
    minutes = a.minutes or (0.5 if a.quick else 60.0)
    boundaries = a.boundaries or ("fixed" if a.quick else "energy")

    with tempfile.TemporaryDirectory(prefix="speechx-audio-index-") as tmp:
        root = Path(tmp)
        model = a.model
        if model is None and (a.quick or not TRAINED.is_dir()):
            from speechx.models.presets import build_encoder

            model = str(build_encoder("tiny", embed_dim=512).save_pretrained(root / "tiny"))
        model = model or str(TRAINED)
        t0 = time.perf_counter()
        data = root / "data" / "collection"
        data.mkdir(parents=True)
        scp, utt2spk, utt2dur = [], [], []
        secs = 0.0
        for i in range(files):
            wav = root / "wav" / f"rec{i:02d}.wav"
            wav.parent.mkdir(exist_ok=True)
            dur = make_recording(wav, minutes, 16000)
            secs += dur
            scp.append(f"rec{i:02d} {wav}\n")
            utt2spk.append(f"rec{i:02d} rec{i:02d}\n")
            utt2dur.append(f"rec{i:02d} {dur:.3f}\n")
        for name, lines in (("wav.scp", scp), ("utt2spk", utt2spk), ("utt2dur", utt2dur)):
            (data / name).write_text("".join(lines))
        print(
            f"{files} recordings, {secs / 3600:.2f} h, written in {time.perf_counter() - t0:.1f} s"
        )
        base_mb = _model_rss_mb(model)
        argv = [sys.executable, "-m", "speechx.cli", "index-audio", "--model", model]
        argv += ["--data-dir", str(data), "--out", str(root / "index"), "--window", str(a.window)]
        argv += ["--hop", str(a.hop), "--boundaries", boundaries, "--backend", a.backend]
        argv += ["--nj", str(a.nj)]
        t0 = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            sys.exit(f"index-audio failed:\n{proc.stderr[-3000:]}")
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        meta = json.loads((root / "index" / "audio_index.json").read_text())

    one_mb = minutes * 60 * 16000 * 4 / 2**20
    hph = secs / wall  # hours per hour = seconds per second
    print(
        f"model {model}; {boundaries} windows of {a.window:g} s, hop {a.hop:g} s; --nj {a.nj}; "
        f"backend {a.backend}"
    )
    print(f"{'windows':>10} {'audio_h':>8} {'wall_s':>8} {'h/h':>7} {'model_MB':>9} {'peak_MB':>8}")
    print(
        f"{meta['n_windows']:10d} {secs / 3600:8.2f} {wall:8.1f} {hph:7.1f} {base_mb:9.0f} "
        f"{peak_mb:8.0f}"
    )
    print(
        f"one recording held whole would be {one_mb:.0f} MB of float32; the index run's peak is "
        f"{peak_mb - base_mb:.0f} MB above the model's own {base_mb:.0f} MB"
    )
    print(f"ratio audio_index_peak_rss_gb={peak_mb / 1024:.3f}")
    print(f"ratio audio_index_hours_per_hour={hph:.2f}")
    print(f"ratio audio_index_rss_over_one_recording={max(0.0, peak_mb - base_mb) / one_mb:.3f}")


if __name__ == "__main__":
    main()
