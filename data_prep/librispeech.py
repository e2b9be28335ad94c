"""LibriSpeech: read English audiobook speech (openslr.org/12, CC BY 4.0).

Expected layout (what the openslr tarballs unpack to), under ``corpus_dir`` or under
``corpus_dir/LibriSpeech``:

.. code-block:: text

    LibriSpeech/
      SPEAKERS.TXT                              (optional: ``ID | SEX | SUBSET | MINUTES | NAME``)
      train-clean-100/<spk>/<chapter>/<spk>-<chapter>.trans.txt
      train-clean-100/<spk>/<chapter>/<spk>-<chapter>-<utt>.flac
      train-clean-360/ train-other-500/ dev-clean/ dev-other/ test-clean/ test-other/

A ``*.trans.txt`` line is ``<spk>-<chapter>-<utt> TRANSCRIPT IN CAPITALS``.

:func:`prepare_librispeech` writes ``<out>/librispeech_en_{train,dev,test}``:

* **train** is every subset of ``train_subsets`` that is present (default: every ``train-*``
  subset found), **dev** is ``dev_subsets`` (default ``dev-clean``; add ``dev-other`` to
  pool it in), **test** is ``test_subsets`` (default ``test-clean``).  Each subset of
  ``extra_sets`` also gets a dir of its own, e.g. ``test-other`` ->
  ``librispeech_en_test_other``.
* ``wav.scp`` points at the FLAC files themselves (absolute paths; 16 kHz, nothing is
  converted), ``text`` is the transcript (lower-cased unless ``keep_case``), ``utt2spk`` the
  published speaker id (the prefix of every utterance id), ``utt2lang`` ``en``, ``utt2dur`` read
  from the FLAC headers, ``utt2sent`` the utterance itself (no sentence is shared between
  utterances), ``spk2gender`` from ``SPEAKERS.TXT`` when it is there, and ``text.en`` (the
  transcript again) when ``en`` is among the text languages.  LibriSpeech has no translations:
  other text languages are reported with 0 % coverage, never invented.

``--speech-langs`` accepts only ``en``; ``--text-langs`` may hold anything (see above).

Skipped, each with a warning naming the utterance and a row in
``<out>/local/librispeech_skipped.tsv``: ``missing_audio`` (a transcript line without its
FLAC), ``unreadable_audio`` (a header libsndfile cannot read, or zero samples),
``empty_transcript``, ``duplicate_id`` (the same utterance in two subsets or twice in one
transcript file), ``too_short``/``too_long`` (outside ``min_duration``/``max_duration``) and
``no_transcript`` (a FLAC file no transcript names).  ``<out>/local/librispeech_prep.json``
holds the :class:`~data_prep.PrepReport`.

Run ``python -m data_prep.librispeech --help``.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from data_prep import (
    PrepReport,
    SkipLog,
    add_duration_args,
    existing_duration,
    parse_list,
    prep_parser,
    preparer_kwargs,
    run_preparer,
)
from speechx.data.kaldi import KaldiDir, write_mapping
from speechx.errors import SpeechxError

TRAIN_SUBSETS: tuple[str, ...] = ("train-clean-100", "train-clean-360", "train-other-500")
DEV_SUBSETS: tuple[str, ...] = ("dev-clean",)
TEST_SUBSETS: tuple[str, ...] = ("test-clean",)
KNOWN_SUBSETS: tuple[str, ...] = (
    *TRAIN_SUBSETS,
    "dev-clean",
    "dev-other",
    "test-clean",
    "test-other",
)
LANG = "en"
REPORT_JSON = "local/librispeech_prep.json"
SKIPPED_TSV = "local/librispeech_skipped.tsv"

_UTT_ID = re.compile(r"^\d+-\d+-\d+$")


class LibriSpeechError(SpeechxError, ValueError):
    """A LibriSpeech copy that cannot be found or prepared as asked (the message says where)."""


def find_librispeech(corpus_dir: str | os.PathLike) -> Path:
    """The ``LibriSpeech`` directory: ``corpus_dir`` itself or ``corpus_dir/LibriSpeech``.

    Returns:
        The directory that holds the subset directories.

    Raises:
        LibriSpeechError: neither place holds a known subset directory; both places are named.
    """
    root = Path(corpus_dir)
    candidates = [root, root / "LibriSpeech"]
    for c in candidates:
        if c.is_dir() and any((c / s).is_dir() for s in KNOWN_SUBSETS):
            return c
    looked = " and ".join(str(c) for c in candidates)
    raise LibriSpeechError(
        f"LibriSpeech not found: no subset directory ({', '.join(KNOWN_SUBSETS)}) in {looked}; "
        "download the subsets from https://www.openslr.org/12 and unpack them there"
    )


def check_librispeech(
    corpus_dir: str | os.PathLike | None,
    subsets: Sequence[str] = (*DEV_SUBSETS, *TEST_SUBSETS),
    train_subsets: Sequence[str] | None = None,
    speech_langs: Sequence[str] = (),
) -> list[str]:
    """What is missing for a preparation run, without reading any audio (for ``--dry-run``).

    Args:
        corpus_dir: the local copy (``None``: not given, which is itself a problem).
        subsets: subset directories that must exist (default: the dev and test subsets).
        train_subsets: train subsets that must exist; ``None``: at least one ``train-*``.
        speech_langs: must be empty or ``en``.

    Returns:
        One message per missing thing, naming the path looked at; empty when all is there.
    """
    langs = [x for x in (parse_list(list(speech_langs)) or []) if x != LANG]
    if langs:
        return [f"LibriSpeech is English only: speech language(s) {' '.join(langs)} not in it"]
    if corpus_dir is None or str(corpus_dir) == "":
        return ["LibriSpeech has no default location: pass --corpus-dir (the dir of LibriSpeech/)"]
    try:
        root = find_librispeech(corpus_dir)
    except LibriSpeechError as exc:
        return [str(exc)]
    problems = [f"{root / s}: subset directory missing" for s in subsets if not (root / s).is_dir()]
    if train_subsets is None:
        if not any((root / s).is_dir() for s in TRAIN_SUBSETS):
            problems.append(f"{root}: no train subset ({', '.join(TRAIN_SUBSETS)})")
    else:
        problems += [
            f"{root / s}: subset directory missing"
            for s in train_subsets
            if not (root / s).is_dir()
        ]
    for s in subsets:
        d = root / s
        if d.is_dir() and next(d.glob("*/*/*.trans.txt"), None) is None:
            problems.append(f"{d}: no <spk>/<chapter>/*.trans.txt transcript files")
    return problems


@dataclass(frozen=True)
class LibriUtterance:
    """One transcript line of a subset."""

    utt: str
    speaker: str
    text: str
    flac: Path
    trans_file: Path
    line: int


def iter_subset(subset_dir: Path) -> Iterator[LibriUtterance]:
    """Yield every transcript line of one subset, in file order.

    Lines whose id is not ``<spk>-<chapter>-<utt>`` are yielded too (with their raw id), so
    that the caller can count them; the FLAC path is the sibling ``<id>.flac``.

    Raises:
        LibriSpeechError: a transcript file is not UTF-8 (named with its line).
    """
    for trans in sorted(subset_dir.glob("*/*/*.trans.txt")):
        try:
            content = trans.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise LibriSpeechError(f"{trans}: not UTF-8 ({exc.reason})") from None
        for no, line in enumerate(content.splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.strip().split(maxsplit=1)
            utt = parts[0]
            text = parts[1] if len(parts) > 1 else ""
            yield LibriUtterance(
                utt, utt.split("-")[0], text, trans.parent / f"{utt}.flac", trans, no
            )


def read_speakers(path: Path) -> dict[str, str]:
    """``SPEAKERS.TXT`` as ``{speaker id: "m" | "f"}`` (comment lines start with ``;``).

    Returns:
        The genders found; an empty dict when the file is missing.  Malformed lines are skipped.
    """
    if not path.is_file():
        return {}
    out: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith(";") or "|" not in line:
            continue
        cells = [c.strip() for c in line.split("|")]
        if len(cells) >= 2 and cells[0].isdigit() and cells[1].upper() in ("M", "F"):
            out[cells[0]] = cells[1].lower()
    return out


def _set_name(subset: str, split: str | None) -> str:
    return f"librispeech_{LANG}_{split or subset.replace('-', '_')}"


def _duration(path: Path) -> tuple[float | None, str]:
    """``(seconds, "")`` or ``(None, reason)`` from the FLAC header."""
    if not path.is_file():
        return None, "missing_audio"
    dur = existing_duration(path)
    return (dur, "") if dur is not None else (None, "unreadable_audio")


def prepare_librispeech(
    corpus_dir: str | os.PathLike,
    out_dir: str | os.PathLike = "data",
    *,
    speech_langs: Sequence[str] | None = None,
    text_langs: Sequence[str] | None = None,
    train_subsets: Sequence[str] | None = None,
    dev_subsets: Sequence[str] = DEV_SUBSETS,
    test_subsets: Sequence[str] = TEST_SUBSETS,
    extra_sets: Sequence[str] = (),
    keep_case: bool = False,
    min_duration: float = 0.0,
    max_duration: float = 35.0,
    nj: int = 4,
    max_warnings: int | None = 20,
    verbose: bool = False,
) -> PrepReport:
    """Write Kaldi dirs ``<out_dir>/librispeech_en_<split>`` from a local LibriSpeech copy.

    Args:
        corpus_dir: the directory holding ``LibriSpeech/`` (or ``LibriSpeech/`` itself).
        out_dir: where the dirs, ``local/librispeech_prep.json`` and
            ``local/librispeech_skipped.tsv`` go.
        speech_langs: must be ``None`` or ``["en"]`` (LibriSpeech is English).
        text_langs: ``en`` writes ``text.en``; other languages have no data (0 % coverage).
        train_subsets: subsets pooled into ``train`` (default: every ``train-*`` present).
        dev_subsets, test_subsets: subsets pooled into ``dev`` and ``test``.
        extra_sets: subsets written as dirs of their own (``test-other`` ->
            ``librispeech_en_test_other``).
        keep_case: keep the published upper case (default: lower-case the transcripts, which
            is what a text teacher expects).
        min_duration, max_duration: utterances outside this range (seconds) are skipped.
        nj: threads reading FLAC headers.
        max_warnings: warnings per skip reason (the TSV lists every skip).
        verbose: print the summary.

    Returns:
        A :class:`PrepReport` (skips by reason, utterances per dir, hours, coverage).

    Raises:
        LibriSpeechError: the corpus is not found, a language other than ``en`` is asked for
            as speech, a requested subset is missing, or nothing at all was prepared.
    """
    t0 = time.perf_counter()
    speech = parse_list(speech_langs) or [LANG]
    if speech != [LANG]:
        raise LibriSpeechError(
            f"LibriSpeech is English only: --speech-langs must be 'en', got {' '.join(speech)}"
        )
    texts = parse_list(text_langs) or [LANG]
    root = find_librispeech(corpus_dir)
    out = Path(out_dir)
    if train_subsets is None:
        train_subsets = [s for s in TRAIN_SUBSETS if (root / s).is_dir()]
    plan: list[tuple[str, str]] = []  # (subset, dir name)
    for split, subsets in (("train", train_subsets), ("dev", dev_subsets), ("test", test_subsets)):
        plan += [(s, _set_name(s, split)) for s in subsets]
    plan += [(s, _set_name(s, None)) for s in extra_sets]
    missing = [s for s, _ in plan if not (root / s).is_dir()]
    if missing:
        raise LibriSpeechError(
            f"{root}: subset director{'y' if len(missing) == 1 else 'ies'} "
            f"{', '.join(missing)} not found (have: "
            f"{', '.join(s for s in KNOWN_SUBSETS if (root / s).is_dir()) or 'none'})"
        )

    report = PrepReport(corpus="librispeech", out_dir=str(out))
    log = SkipLog(report, max_warnings=max_warnings)
    genders = read_speakers(root / "SPEAKERS.TXT")
    kdirs: dict[str, KaldiDir] = {}
    seen: dict[str, str] = {}
    seconds = 0.0
    with ThreadPoolExecutor(max_workers=max(1, nj)) as pool:
        for subset, name in plan:
            kd = kdirs.setdefault(name, KaldiDir())
            rows = list(iter_subset(root / subset))
            listed = {r.flac for r in rows}
            for flac in sorted((root / subset).glob("*/*/*.flac")):
                if flac not in listed:
                    log.skip(flac.stem, "no_transcript", f"{flac} is in no *.trans.txt file")
            durations = pool.map(lambda r: _duration(r.flac), rows)
            for row, (dur, reason) in zip(rows, durations, strict=True):
                report.n_sentences += 1
                where = f"{row.trans_file}:{row.line}"
                if not _UTT_ID.match(row.utt):
                    log.skip(row.utt, "bad_id", f"{where}: id is not <spk>-<chapter>-<utt>")
                    continue
                if row.utt in seen:
                    log.skip(row.utt, "duplicate_id", f"{where}: already read from {seen[row.utt]}")
                    continue
                seen[row.utt] = subset
                text = " ".join(row.text.split())
                if not keep_case:
                    text = text.lower()
                if not text:
                    log.skip(row.utt, "empty_transcript", f"{where}: no transcript")
                    continue
                if dur is None:
                    log.skip(row.utt, reason, f"{row.flac}: {reason.replace('_', ' ')}")
                    continue
                if log.skip_duration(row.utt, row.flac, dur, min_duration, max_duration):
                    continue
                kd.wav_scp[row.utt] = str(row.flac.resolve())
                kd.text[row.utt] = text
                kd.utt2spk[row.utt] = row.speaker
                kd.utt2lang[row.utt] = LANG
                kd.utt2dur[row.utt] = round(dur, 3)
                kd.utt2sent[row.utt] = row.utt
                if LANG in texts:
                    kd.translations.setdefault(LANG, {})[row.utt] = text
                report.used += 1
                seconds += dur

    for name, kd in sorted(kdirs.items()):
        if not report.write_dir(out / name, kd, name.removeprefix(f"librispeech_{LANG}_")):
            continue
        spk2gender = sorted((s, genders[s]) for s in kd.spk2utt if s in genders)
        if spk2gender:
            write_mapping(out / name / "spk2gender", spk2gender)
        elif (out / name / "spk2gender").exists():
            (out / name / "spk2gender").unlink()
    if not report.used:
        raise LibriSpeechError(f"{root}: no usable utterance in {', '.join(s for s, _ in plan)}")
    report.hours = seconds / 3600.0
    for tl in texts:
        report.coverage[tl] = 1.0 if tl == LANG else 0.0
    report.extra["subsets"] = {name: [s for s, n in plan if n == name] for name in kdirs}
    log.write(out / SKIPPED_TSV)
    return report.finish(t0, json_path=out / REPORT_JSON, verbose=verbose)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m data_prep.librispeech``: parse arguments, run the preparer, print."""
    ap = prep_parser(
        "librispeech",
        "Prepare LibriSpeech (<corpus-dir>[/LibriSpeech]/<subset>/<spk>/<chapter>/*.flac + "
        "*.trans.txt) as Kaldi dirs librispeech_en_{train,dev,test}.",
    )
    ap.add_argument("--corpus-dir", required=True, help="dir holding LibriSpeech/ (or it)")
    ap.add_argument("--speech-langs", nargs="+", default=None, help="only 'en' (the default)")
    ap.add_argument(
        "--text-langs",
        nargs="+",
        default=None,
        help="'en' writes text.en; LibriSpeech has no translations (default: en)",
    )
    ap.add_argument(
        "--train-subsets",
        nargs="+",
        default=None,
        help=f"pooled into train (default: every one of {' '.join(TRAIN_SUBSETS)} present)",
    )
    ap.add_argument(
        "--dev-subsets", nargs="+", default=list(DEV_SUBSETS), help="default: dev-clean"
    )
    ap.add_argument(
        "--test-subsets", nargs="+", default=list(TEST_SUBSETS), help="default: test-clean"
    )
    ap.add_argument(
        "--extra-sets",
        nargs="*",
        default=[],
        help="subsets written as dirs of their own, e.g. test-other -> librispeech_en_test_other",
    )
    ap.add_argument("--keep-case", action="store_true", help="keep the published upper case")
    add_duration_args(ap, max_duration=35.0)
    ap.add_argument("--nj", type=int, default=4, help="threads reading FLAC headers (default 4)")
    args = ap.parse_args(argv)
    return run_preparer(lambda: prepare_librispeech(**preparer_kwargs(args)))


if __name__ == "__main__":
    sys.exit(main())
