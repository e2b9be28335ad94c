"""Long recordings for long-form search, built from the test utterances of Kaldi dirs.

Each long recording (a few minutes, ``minutes``) is a sequence of short utterances separated by
random pauses (``pause_min`` .. ``pause_max`` seconds, uniform), with low white noise under the
whole recording (``noise_db`` dBFS RMS, so that pauses are not digital silence), at 16 kHz.
Some utterances are *queries* (searched for by the evaluation) and the others *distractors*
(speech that is never a correct answer).  Everything is seeded: the same inputs and options give
byte-identical output.

What is placed:

- Only test-split material: every source dir's name must end in ``_test`` (``allow_any_split``
  lifts this for other uses, never for evaluation).
- A query's sentence (``utt2sent``; the utterance id when a dir has none) is placed once, in
  one rendering (one language, one voice), so a text query has exactly one true span.  A
  distractor sentence is placed in every rendering the dirs have (``all_distractor_renderings``;
  otherwise in one).
  Sentences whose normalised English text (else transcript) repeats an earlier sentence's are
  left out, for the same reason.
- A sentence becomes a query with probability ``query_fraction`` when one of its renderings
  lasts at least ``min_query_seconds`` and its English text has at least
  ``min_query_words`` words (shorter lines, such as "Yes.", are ambiguous); otherwise it is a
  distractor.  So distractors are a sentence-disjoint subset of the same test dirs: speech of
  the same kind (real Dutch, synthetic languages) that no query's text describes.
- The rendering placed is the one from the source dir with the fewest placements of that role
  so far (ties broken by the seed), which balances queries over the dirs.  Another rendering of
  a query's sentence, preferably in another language, is named as ``alt_utt`` / ``alt_audio``
  for spoken queries: it is never in the recordings.

Output (``name`` defaults to ``longform_test``):

- ``<audio_dir>/<name>/<name>-rec<NNN>.wav``: 16-bit WAV at 16 kHz, written block by block
  (one utterance in memory at a time) to a temp file renamed into place;
- ``<out_dir>/<name>/``: a Kaldi dir of the long recordings (``wav.scp``, ``utt2spk``,
  ``spk2utt``, ``utt2dur``, and ``text``: the transcripts in the order spoken) and
  ``truth.tsv`` (:mod:`speechx.data.spans`): every placed utterance with its recording, start
  and end (exact to the sample), role, source dir, language, sentence and texts.

Run ``python -m data_prep.longform --help`` or ``speechx prepare longform --help``.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from data_prep import PrepReport, prep_parser, run_preparer
from speechx.audio import audio_info, load_audio
from speechx.data.kaldi import KaldiDir, c_sort_key
from speechx.data.spans import PlacedUtterance, write_truth
from speechx.errors import DataDirError

SAMPLE_RATE = 16000
DEFAULT_NAME = "longform_test"
_PUNCT = re.compile(r"[^\w\s]")


@dataclass(frozen=True)
class _Utt:
    source: str
    utt: str
    path: str
    start: float | None
    end: float | None
    duration: float
    lang: str
    sent: str
    texts: dict[str, str]

    @property
    def key_text(self) -> str:
        return self.texts.get("text.en") or self.texts.get("text", "")


def _norm(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_PUNCT.sub(" ", text).split())


def _dir_lang(name: str) -> str:
    parts = name.split("_")
    return parts[-2] if len(parts) >= 3 else ""


def _read_source(d: Path) -> list[_Utt]:
    kd = KaldiDir.read(d)
    out = []
    for u in kd.utt_ids:
        start, end = kd.segment(u)
        if u in kd.utt2dur:
            dur = kd.utt2dur[u]
        elif start is not None:
            dur = (end or 0.0) - start
        else:
            dur = audio_info(kd.audio_path(u)).duration
        texts = {"text": kd.text[u]} if kd.text.get(u) else {}
        for lang, t in kd.translations.items():
            if t.get(u):
                texts[f"text.{lang}"] = t[u]
        out.append(
            _Utt(
                d.name,
                u,
                kd.audio_path(u),
                start,
                end,
                float(dur),
                kd.utt2lang.get(u) or _dir_lang(d.name),
                kd.utt2sent.get(u) or f"{d.name}:{u}",
                texts,
            )
        )
    return out


def prepare_longform(
    data_dirs: Sequence[str | os.PathLike],
    out_dir: str | os.PathLike,
    *,
    name: str = DEFAULT_NAME,
    audio_dir: str | os.PathLike | None = None,
    minutes: float = 3.0,
    query_fraction: float = 0.5,
    max_queries: int | None = None,
    max_distractors: int | None = None,
    pause_min: float = 0.3,
    pause_max: float = 2.0,
    noise_db: float | None = -50.0,
    min_query_seconds: float = 1.0,
    min_query_words: int = 3,
    all_distractor_renderings: bool = True,
    seed: int = 0,
    allow_any_split: bool = False,
    progress: bool = True,
) -> PrepReport:
    """Build long recordings and their truth table (see the module docstring).

    Args:
        data_dirs: the source Kaldi dirs (test splits).
        out_dir: where the Kaldi dir ``name`` goes.
        name: the Kaldi dir's name and the recordings' id prefix.
        audio_dir: where the WAVs go (in ``<audio_dir>/<name>/``); default ``<out_dir>/audio``.
        minutes: target length of each recording (a recording ends after the utterance that
            takes it past this; the last one may be shorter).
        query_fraction: chance that an eligible sentence is a query.
        max_queries, max_distractors: caps on the number placed (``None``: no cap).
        pause_min, pause_max: seconds of pause between utterances (and before the first).
        noise_db: RMS of the white noise under the recordings in dBFS; ``None`` for none.
        min_query_seconds, min_query_words: what a query sentence needs (see above).
        all_distractor_renderings: place every rendering of a distractor sentence (each
            language and voice the dirs have), not just one: more distractor speech, and never
            a correct answer, so the truth stays unambiguous.
        seed: everything random follows from it.
        allow_any_split: accept source dirs whose name does not end in ``_test``.
        progress: a tqdm bar over recordings.

    Returns:
        The :class:`~data_prep.PrepReport` (``extra`` holds the counts of queries, distractors
        and recordings, and the queries per source dir).

    Raises:
        DataDirError: a source dir that is not a test split, cannot be read, or has nothing
            usable; bad options.
        AudioError: an utterance whose audio cannot be read (named).
    """
    t0 = time.perf_counter()
    if not data_dirs:
        raise DataDirError("prepare_longform: no source data dirs")
    if not (0 <= pause_min <= pause_max) or not minutes > 0 or not 0 <= query_fraction <= 1:
        raise DataDirError(
            f"prepare_longform: need 0 <= pause_min <= pause_max, minutes > 0 and query_fraction "
            f"in [0, 1]; got {pause_min}, {pause_max}, {minutes}, {query_fraction}"
        )
    dirs = [Path(d) for d in data_dirs]
    names = [d.name for d in dirs]
    if len(set(names)) != len(names):
        raise DataDirError(f"prepare_longform: source dirs must have distinct names, got {names}")
    for d in dirs:
        if not allow_any_split and not d.name.endswith("_test"):
            raise DataDirError(
                f"{d}: not a test split (its name does not end in _test); long-form evaluation "
                "data is built from test material only"
            )
    rng = np.random.default_rng(seed)
    by_sent: dict[str, list[_Utt]] = {}
    for d in dirs:
        for u in _read_source(d):
            by_sent.setdefault(u.sent, []).append(u)
    if not by_sent:
        raise DataDirError(f"prepare_longform: no utterances in {', '.join(map(str, dirs))}")
    sents = sorted(by_sent, key=c_sort_key)
    seen_text: set[str] = set()
    unique = []
    for s in sents:  # in C order, so "the earlier sentence" does not depend on the seed
        key = _norm(by_sent[s][0].key_text)
        if key and key in seen_text:
            continue
        seen_text.add(key)
        unique.append(s)
    report = PrepReport(corpus="longform", out_dir=str(out_dir))
    report.n_sentences = len(sents)
    if len(unique) < len(sents):
        report.skip("repeated_text", len(sents) - len(unique))
    placed: list[tuple[_Utt, str, _Utt | None]] = []
    counts = {"query": {n: 0 for n in names}, "distractor": {n: 0 for n in names}}
    for i in rng.permutation(len(unique)):
        renderings = by_sent[unique[i]]
        eligible = [
            u
            for u in renderings
            if u.duration >= min_query_seconds and len(_norm(u.key_text).split()) >= min_query_words
        ]
        want_query = bool(eligible) and rng.random() < query_fraction
        if want_query and max_queries is not None and sum(counts["query"].values()) >= max_queries:
            want_query = False
        role = "query" if want_query else "distractor"
        n_distractors = sum(counts["distractor"].values())
        if (
            role == "distractor"
            and max_distractors is not None
            and n_distractors >= max_distractors
        ):
            report.skip("over_max_distractors")
            continue
        if role == "distractor" and all_distractor_renderings:
            for u in renderings:
                counts[role][u.source] += 1
                placed.append((u, role, None))
            continue
        pool = eligible if role == "query" else renderings
        fewest = min(counts[role][u.source] for u in pool)
        tied = [u for u in pool if counts[role][u.source] == fewest]
        chosen = tied[int(rng.integers(len(tied)))]
        counts[role][chosen.source] += 1
        alt = None
        if role == "query":
            others = [u for u in renderings if u is not chosen]
            other_lang = [u for u in others if u.lang != chosen.lang]
            alt = (other_lang or others or [None])[0]
        placed.append((chosen, role, alt))
    # the distractors of one sentence are spread over the collection, not kept together
    placed = [placed[i] for i in rng.permutation(len(placed))]
    if not placed:
        raise DataDirError("prepare_longform: nothing to place")

    # pack into recordings of about `minutes` each
    pauses = rng.uniform(pause_min, pause_max, size=len(placed) + 1)
    target = minutes * 60.0
    groups: list[list[int]] = [[]]
    length = pauses[0]
    for k, (u, _, _) in enumerate(placed):
        if groups[-1] and length >= target:
            groups.append([])
            length = pauses[k]
        groups[-1].append(k)
        length += u.duration + pauses[k + 1]

    audio_root = Path(audio_dir) if audio_dir is not None else Path(out_dir) / "audio"
    wav_dir = audio_root / name
    wav_dir.mkdir(parents=True, exist_ok=True)
    sigma = None if noise_db is None else 10.0 ** (noise_db / 20.0)
    kd = KaldiDir()
    rows: list[PlacedUtterance] = []
    total_seconds = 0.0
    for g, members in enumerate(tqdm(groups, disable=not progress, unit="rec", desc=name)):
        rec = f"{name}-rec{g:03d}"
        noise_rng = np.random.default_rng([seed, g])
        path = wav_dir / f"{rec}.wav"
        spans = _write_recording(
            path, [placed[k][0] for k in members], pauses, members, sigma, noise_rng
        )
        n_samples = spans.pop()
        for k, (s, e) in zip(members, spans, strict=True):
            u, role, alt = placed[k]
            rows.append(
                PlacedUtterance(
                    utt=u.utt,
                    recording=rec,
                    start=s / SAMPLE_RATE,
                    end=e / SAMPLE_RATE,
                    role=role,
                    source=u.source,
                    lang=u.lang,
                    sent=u.sent,
                    alt_utt="" if alt is None else alt.utt,
                    alt_lang="" if alt is None else alt.lang,
                    alt_audio="" if alt is None else _alt_audio(alt),
                    texts=dict(u.texts),
                )
            )
        kd.wav_scp[rec] = str(path.resolve())
        kd.utt2spk[rec] = rec
        kd.utt2dur[rec] = n_samples / SAMPLE_RATE
        kd.text[rec] = " ".join(placed[k][0].texts.get("text", "") for k in members).strip() or "-"
        total_seconds += n_samples / SAMPLE_RATE
    out = Path(out_dir) / name
    report.write_dir(out, kd, "test")
    write_truth(out / "truth.tsv", rows)
    report.used = len(rows)
    report.hours = total_seconds / 3600.0
    n_query = sum(counts["query"].values())
    report.extra.update(
        {
            "recordings": len(groups),
            "queries": n_query,
            "distractors": len(rows) - n_query,
            "queries_per_source": counts["query"],
            "distractors_per_source": counts["distractor"],
        }
    )
    return report.finish(t0)


def _alt_audio(u: _Utt) -> str:
    """The path of ``u``'s audio; a segment is written as ``path@start-end`` (seconds)."""
    if u.start is None:
        return u.path
    return f"{u.path}@{u.start:.3f}-{'' if u.end is None else f'{u.end:.3f}'}"


def _write_recording(
    path: Path,
    utts: list[_Utt],
    pauses: np.ndarray,
    members: list[int],
    sigma: float | None,
    noise_rng: np.random.Generator,
) -> list:
    """Write one recording (pause, utterance, pause, ...) to ``path`` block by block.

    Returns:
        The ``(start, end)`` samples of each utterance, then the total number of samples.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    spans: list = []
    pos = 0
    try:
        with sf.SoundFile(tmp, "w", SAMPLE_RATE, 1, subtype="PCM_16", format="WAV") as fh:

            def put(x: np.ndarray) -> None:
                if sigma is not None:
                    x = x + sigma * noise_rng.standard_normal(x.shape[0]).astype(np.float32)
                fh.write(np.clip(x, -1.0, 1.0))

            for j, (u, k) in enumerate(zip(utts, members, strict=True)):
                if j == 0:
                    gap = np.zeros(int(round(pauses[k] * SAMPLE_RATE)), dtype=np.float32)
                    put(gap)
                    pos += gap.shape[0]
                wav = load_audio(u.path, SAMPLE_RATE, start=u.start, end=u.end, warn_silence=False)
                put(wav)
                spans.append((pos, pos + wav.shape[0]))
                pos += wav.shape[0]
                gap = np.zeros(int(round(pauses[k + 1] * SAMPLE_RATE)), dtype=np.float32)
                put(gap)
                pos += gap.shape[0]
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    spans.append(pos)
    return spans


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m data_prep.longform``: parse arguments, run :func:`prepare_longform`."""
    ap = prep_parser(
        "longform",
        "Build long recordings (utterances of test-split Kaldi dirs with pauses, distractor "
        "speech and low noise) and a truth table of where each utterance lies, for long-form "
        "search evaluation (speechx evaluate-longform).",
    )
    ap.add_argument("--data-dirs", nargs="+", required=True, help="source test-split Kaldi dirs")
    ap.add_argument(
        "--name", default=DEFAULT_NAME, help=f"output dir name (default {DEFAULT_NAME})"
    )
    ap.add_argument("--audio-dir", default=None, help="WAV root (default <out-dir>/audio)")
    ap.add_argument("--minutes", type=float, default=3.0, help="recording length (default 3)")
    ap.add_argument("--query-fraction", type=float, default=0.5, help="default 0.5")
    ap.add_argument("--max-queries", type=int, default=None)
    ap.add_argument("--max-distractors", type=int, default=None)
    ap.add_argument("--pause-min", type=float, default=0.3, help="seconds (default 0.3)")
    ap.add_argument("--pause-max", type=float, default=2.0, help="seconds (default 2.0)")
    ap.add_argument(
        "--noise-db",
        type=_noise_arg,
        default=-50.0,
        help="white noise RMS in dBFS under the recordings, or 'none' (default -50)",
    )
    ap.add_argument("--min-query-seconds", type=float, default=1.0)
    ap.add_argument("--min-query-words", type=int, default=3)
    ap.add_argument(
        "--one-distractor-rendering",
        action="store_true",
        help="place one rendering of each distractor sentence (default: every rendering)",
    )
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--allow-any-split",
        action="store_true",
        help="accept source dirs not named *_test (never for an evaluation)",
    )
    ap.add_argument("--report-json", default=None, help="also write the report as JSON here")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    return run_preparer(
        lambda: prepare_longform(
            args.data_dirs,
            args.out_dir,
            name=args.name,
            audio_dir=args.audio_dir,
            minutes=args.minutes,
            query_fraction=args.query_fraction,
            max_queries=args.max_queries,
            max_distractors=args.max_distractors,
            pause_min=args.pause_min,
            pause_max=args.pause_max,
            noise_db=args.noise_db,
            min_query_seconds=args.min_query_seconds,
            min_query_words=args.min_query_words,
            all_distractor_renderings=not args.one_distractor_rendering,
            seed=args.seed,
            allow_any_split=args.allow_any_split,
            progress=not args.no_progress,
        ),
        report_json=args.report_json,
    )


def _noise_arg(text: str) -> float | None:
    if text.lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be a number (dBFS) or 'none', got {text!r}"
        ) from None


if __name__ == "__main__":
    sys.exit(main())
