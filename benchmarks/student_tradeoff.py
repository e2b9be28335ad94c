"""Speed against quality: a speech teacher and the small students distilled from it.

    .venv/bin/python benchmarks/student_tradeoff.py --quick     # < 60 s, a subset of everything
    .venv/bin/python benchmarks/student_tradeoff.py             # the demo model + exp/s2s_*/model
    .venv/bin/python benchmarks/student_tradeoff.py --models egs/fillets/exp/demo/model \\
        egs/fillets/exp/s2s_small/model w2v2-scratch-fast

The first model is the teacher (default ``egs/fillets/exp/demo/model``, frozen Whisper-base with
an attention-pooling head); the others are students (default: every
``egs/fillets/exp/s2s_*/model``).  A model is a speechx model dir or a preset name of
``speechx.models.build_encoder`` (random weights: timed, but its recall is not scored).
For each model it prints

* parameters;
* audio-seconds per wall-second of ``SpeechEncoder.encode`` (fp32, ``--batch-size``,
  ``--threads``) on the same fillets dev clips, decoded to 16 kHz beforehand so the models are
  timed, not the decoder.  The models take turns for ``--rounds`` rounds and each keeps its
  fastest round, so a machine that is busy for a while slows them alike;
* dev recall@1 of speech:X -> text:en through ``speechx.evaluation.speech_retrieval``
  (teacher embeddings read from the data dirs) on ``--recall-sets`` (fillets_nl_dev and the
  synth dev sets), per set and their mean: the metric of the distillation's dev evaluation.

The last lines are ``ratio <student>_speedup_vs_teacher=...`` (student speed / teacher speed)
and ``ratio <student>_recall_retained=...`` (student mean recall@1 / teacher's), where
``<student>`` is the experiment tag of ``exp/<tag>/model`` (or the preset name).
``--quick`` uses 6 clips cut to 4 s, one round and the first 24 utterances of each dev set (the
pools are those utterances' sentences, so its recalls are higher than the full sets').
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from speechx.audio import load_audio
from speechx.data.kaldi import KaldiDir
from speechx.models import SpeechEncoder, build_encoder
from speechx.models.presets import PRESETS

SR = 16000
ROOT = Path(__file__).resolve().parents[1]
EGS = ROOT / "egs/fillets"
DEV_SCP = EGS / "data/fillets_nl_dev/wav.scp"
TEACHER_DIR = EGS / "exp/demo/model"
RECALL_SETS = [EGS / f"data/{s}_dev" for s in ("fillets_nl", "synth_nl", "synth_en", "synth_de")]
TEACHER_ID = "use-multilingual-v3"

Clip = tuple[np.ndarray, int]


@dataclass
class Row:
    """One model's figures."""

    name: str
    key: str
    params: int
    speed: float = float("nan")
    recall: dict[str, float] = field(default_factory=dict)

    @property
    def mean_recall(self) -> float:
        """Mean recall@1 over the dev sets (NaN without any)."""
        return float(np.mean(list(self.recall.values()))) if self.recall else float("nan")


# ------------------------------------------------------------------------------ models
def model_key(spec: str) -> str:
    """A short identifier for ratio lines: the tag of ``.../<tag>/model``, else the last path
    part or the preset name, with every character outside ``[A-Za-z0-9_]`` made ``_``.

    >>> model_key("egs/fillets/exp/s2s_small/model"), model_key("w2v2-fbank-small")
    ('s2s_small', 'w2v2_fbank_small')
    """
    p = Path(spec)
    name = p.parent.name if p.name == "model" and p.parent.name else p.name
    return re.sub(r"[^A-Za-z0-9_]", "_", name)


def is_preset(spec: str) -> bool:
    """Whether ``spec`` names a preset (and not a directory)."""
    return spec in PRESETS and not Path(spec).is_dir()


def load_model(spec: str, embed_dim: int = 512) -> SpeechEncoder:
    """A speechx model dir (loaded) or a preset name (built with random weights), in eval mode.

    Raises:
        speechx.errors.ModelError: neither a model dir nor a preset.
    """
    if is_preset(spec):
        torch.manual_seed(0)
        return build_encoder(spec, embed_dim, pooling="attention").eval()
    return SpeechEncoder.from_pretrained(spec).eval()


def count_parameters(enc: torch.nn.Module) -> int:
    """Number of parameters (trainable or not)."""
    return sum(p.numel() for p in enc.parameters())


def default_students() -> list[str]:
    """Every ``egs/fillets/exp/s2s_*/model`` that holds weights."""
    return [str(p.parent) for p in sorted(EGS.glob("exp/s2s_*/model/model.safetensors"))]


# ------------------------------------------------------------------------------ speed
def load_clips(scp: Path, n: int, max_seconds: float | None = None) -> list[Clip]:
    """``n`` clips evenly spaced through a ``wav.scp`` (0: all), at 16 kHz, each cut to at
    most ``max_seconds``."""
    paths = [line.split(maxsplit=1)[1].strip() for line in scp.read_text().splitlines() if line]
    if 0 < n < len(paths):
        paths = [paths[i] for i in np.linspace(0, len(paths) - 1, n).round().astype(int)]
    clips = [(load_audio(p, SR), SR) for p in paths]
    if max_seconds is not None:
        clips = [(w[: int(max_seconds * SR)], sr) for w, sr in clips]
    return clips


def audio_seconds(clips: Sequence[Clip]) -> float:
    """Total duration of ``clips`` in seconds."""
    return sum(len(w) / sr for w, sr in clips)


def measure_speeds(
    encoders: dict[str, SpeechEncoder],
    clips: Sequence[Clip],
    *,
    batch_size: int = 8,
    threads: int = 2,
    rounds: int = 2,
) -> dict[str, float]:
    """Audio-seconds per wall-second of each encoder's ``encode(clips)``: the models take turns
    for ``rounds`` rounds (after one warm-up on the shortest clip each) and the fastest round of
    each is kept.

    Returns:
        ``{name: audio-seconds per second}``.
    """
    total = audio_seconds(clips)
    shortest = [min(clips, key=lambda c: len(c[0]))]
    best = dict.fromkeys(encoders, 0.0)
    for enc in encoders.values():
        enc.encode(shortest, batch_size=batch_size, show_progress=False, num_threads=threads)
    for _ in range(rounds):
        for name, enc in encoders.items():
            t0 = time.perf_counter()
            enc.encode(clips, batch_size=batch_size, show_progress=False, num_threads=threads)
            best[name] = max(best[name], total / (time.perf_counter() - t0))
    return best


# ------------------------------------------------------------------------------ quality
def subset_dir(src: Path, dst: Path, n: int, teacher_id: str = TEACHER_ID) -> Path:
    """The first ``n`` utterances of data dir ``src`` written to ``dst``, with the rows of the
    teacher embeddings of ``teacher_id`` that belong to them.

    Returns:
        ``dst``.
    """
    kdir = KaldiDir.read(src)
    keep = kdir.utt_ids[:n]
    kdir.subset(keep).write(dst)
    tsrc, tdst = src / "teacher" / teacher_id, dst / "teacher" / teacher_id
    tdst.mkdir(parents=True, exist_ok=True)
    ids = (tsrc / "ids.txt").read_text(encoding="utf-8").split()
    rows = [ids.index(u) for u in keep]
    (tdst / "ids.txt").write_text("".join(f"{u}\n" for u in keep), encoding="utf-8")
    for arr in tsrc.glob("*.npy"):
        np.save(tdst / arr.name, np.load(arr)[rows])
    return dst


def dev_recall(
    encoder: SpeechEncoder,
    sets: Sequence[Path],
    *,
    max_utts: int | None = None,
    batch_size: int = 8,
    teacher_id: str = TEACHER_ID,
    target: str = "en",
) -> dict[str, float]:
    """recall@1 of speech:X -> text:en (``target="en"``) or -> text:X, the set's own language
    (``target="own"``), on each data dir (the first ``max_utts`` utterances of each when given),
    through ``speechx.evaluation.speech_retrieval``.

    Returns:
        ``{set name: recall@1}``.

    Raises:
        speechx.errors.EvaluationError: a dir without ``utt2lang`` or teacher embeddings.
    """
    from speechx.evaluation.speech_retrieval import load_test_set, score_test_sets

    with tempfile.TemporaryDirectory(prefix="student_tradeoff.") as tmp:
        dirs = [
            subset_dir(Path(d), Path(tmp) / Path(d).name, max_utts, teacher_id)
            if max_utts
            else Path(d)
            for d in sets
        ]
        tests = [
            load_test_set(
                d,
                encoder,
                teacher_id,
                text_langs=["en"] if target == "en" else None,
                sample_rate=encoder.sample_rate,
                batch_size=batch_size,
            )
            for d in dirs
        ]
    rows, _ = score_test_sets(tests)
    return {
        r["set"]: float(r["recall@1"])
        for r in rows
        if r["query"].startswith("speech:")
        and r["target"] == ("text:en" if target == "en" else f"text:{r['query'][7:]}")
    }


def ratios(rows: Sequence[Row]) -> dict[str, float]:
    """``<student>_speedup_vs_teacher`` and ``<student>_recall_retained`` of every row after the
    first (the teacher)."""
    teacher, out = rows[0], {}
    for r in rows[1:]:
        out[f"{r.key}_speedup_vs_teacher"] = r.speed / teacher.speed
        if r.recall:
            out[f"{r.key}_recall_retained"] = r.mean_recall / teacher.mean_recall
    return out


def format_table(rows: Sequence[Row]) -> str:
    """The table: model, parameters, speed, recall@1 per set and mean."""
    sets = list(dict.fromkeys(s for r in rows for s in r.recall))
    head = f"{'model':28s} {'params':>8s} {'audio-s/s':>10s}"
    head += "".join(f" {s[:16]:>16s}" for s in sets) + f" {'mean R@1':>9s}"
    lines = [head]
    for r in rows:
        line = f"{r.name[-28:]:28s} {r.params / 1e6:7.2f}M {r.speed:10.1f}"
        if r.recall:
            line += "".join(f" {r.recall.get(s, float('nan')):16.4f}" for s in sets)
            line += f" {r.mean_recall:9.4f}"
        else:
            line += "   (random weights: speed only)"
        lines.append(line)
    return "\n".join(lines)


# ------------------------------------------------------------------------------ main
def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a subset of everything, < 60 s")
    parser.add_argument(
        "--models",
        nargs="+",
        default=None,
        help=f"teacher first, then students: model dirs or presets (default {TEACHER_DIR} and "
        "every egs/fillets/exp/s2s_*/model; without any, the presets w2v2-fbank-small and "
        "w2v2-scratch-fast)",
    )
    parser.add_argument("--clips-from", type=Path, default=DEV_SCP, help="a wav.scp")
    parser.add_argument("--n-clips", type=int, default=None, help="default 64 (quick: 6)")
    parser.add_argument("--max-seconds", type=float, default=None, help="cut clips (quick: 4)")
    parser.add_argument("--rounds", type=int, default=None, help="default 2 (quick: 1)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--recall-sets", nargs="+", type=Path, default=RECALL_SETS)
    parser.add_argument(
        "--recall-utts", type=int, default=None, help="first N utterances per set (quick: 24)"
    )
    parser.add_argument(
        "--target",
        choices=["en", "own"],
        default="en",
        help="recall against the English translations (default) or each set's own transcripts",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    n_clips = args.n_clips if args.n_clips is not None else (6 if quick else 64)
    max_seconds = args.max_seconds if args.max_seconds is not None else (4.0 if quick else None)
    rounds = args.rounds or (1 if quick else 2)
    recall_utts = args.recall_utts if args.recall_utts is not None else (24 if quick else None)
    specs = args.models or [str(TEACHER_DIR), *default_students()]
    if len(specs) == 1:  # no student trained yet: the speed of the student architectures
        specs += ["w2v2-fbank-small"] if quick else ["w2v2-fbank-small", "w2v2-scratch-fast"]
    torch.set_num_threads(args.threads)
    start = time.perf_counter()

    encoders = {s: load_model(s) for s in specs}
    clips = load_clips(args.clips_from, n_clips, max_seconds)
    print(
        f"torch {torch.__version__}, {args.threads} threads, batch {args.batch_size}; "
        f"{len(clips)} clips of {args.clips_from} ({audio_seconds(clips):.0f} s of audio), "
        f"{rounds} round(s)"
    )
    speeds = measure_speeds(
        encoders, clips, batch_size=args.batch_size, threads=args.threads, rounds=rounds
    )
    rows = []
    for spec, enc in encoders.items():
        row = Row(spec, model_key(spec), count_parameters(enc), speeds[spec])
        if not is_preset(spec):  # random weights: speed only
            row.recall = dev_recall(
                enc,
                args.recall_sets,
                max_utts=recall_utts,
                batch_size=args.batch_size,
                target=args.target,
            )
        rows.append(row)
        print(
            f"  {spec}: {row.speed:.1f} audio-s/s, mean recall@1 {row.mean_recall:.4f}", flush=True
        )
    what = f"first {recall_utts} utterances of each set" if recall_utts else "full dev sets"
    tgt = "text:en" if args.target == "en" else "text:X (own language)"
    print(f"\nteacher: {specs[0]}; recall@1 speech:X -> {tgt} ({what})")
    print(format_table(rows))
    print(f"\nload average {os.getloadavg()[0]:.1f}; {time.perf_counter() - start:.0f} s")
    for name, value in ratios(rows).items():
        print(f"ratio {name}={value:.4g}")


if __name__ == "__main__":
    main()
