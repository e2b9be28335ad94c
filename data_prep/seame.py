"""SEAME: Mandarin–English code-switching speech from Singapore and Malaysia (LDC2015S04).

The LDC release holds two parts, conversational and interview speech::

    LDC2015S04/seame_d1/data/conversation/audio/01NC01FBX_0101.flac
                                         /transcript/phaseI/01NC01FBX_0101.txt
                                         /transcript/phaseII/01NC01FBX_0101.txt
    LDC2015S04/seame_d2/data/interview/audio/NI01MAX_0101.flac
                                      /transcript/phaseII/NI01MAX_0101.txt

(some copies are flattened to ``data/{conversation,interview}/...`` or keep the transcripts
directly in ``transcript/``).  :func:`find_seame` looks for every ``conversation`` and
``interview`` directory with ``audio/`` and ``transcript/`` below the given directory.

A transcript has one tab-separated line per segment, times in milliseconds:

* phase II (the revised transcripts, used by default): ``rec-id  start  end  LANG  text``
  with ``LANG`` one of ``ZH``, ``EN``, ``CS`` (code-switched);
* phase I: ``rec-id  start  end  text`` (no language label).

Recording ids encode the speaker: ``01NC01FBX_0101`` is conversation group 01, NTU, speaker
``NC01F`` (location, style, number, gender); ``UI06MAZ_0105`` is speaker ``UI06M``.  The speaker
id is that five-character code, as in ESPnet's SEAME recipe.

:func:`prepare_seame` writes ``<out>/seame_zh-en_<split>`` dirs with ``wav.scp`` (absolute paths
to the FLAC recordings, read by soundfile; no pipes), ``segments``, ``text``, ``text.langtags``,
``utt2spk``, ``spk2utt``, ``utt2lang``, ``utt2lang.corpus``, ``utt2dur`` and ``utt2sent``.  Utterance ids are
``<spk>-<rec>-<start ms>-<end ms>`` (seven digits each).

Text cleaning (:class:`data_prep.codeswitch.CleanConfig`, with the defaults) follows what ESPnet's
``egs2/seame/asr1/local/preprocess.py`` does for its ``text`` (the ``text.rm.noise`` variant
without ``<noise>``/``<unk>``): the paralinguistic markers ``(ppl)`` ``(ppc)`` ``(ppb)``
``(ppo)`` (bracketed or bare), ``<unk>``, ``<unl>``, ``< unk >``, ``<v-noise>``, ``<noise>``
and ``[...]`` are removed; brackets around words are dropped, punctuation becomes a space,
full-width Latin becomes ASCII (NFKC) and everything is lower-cased.  Unlike ESPnet, spaces are
not inserted between Chinese characters (MER tokens are single CJK characters anyway) and
short segments are kept (filter with ``min_duration``).  Language tags and ``utt2lang`` follow
:mod:`data_prep.ascend` (both use :mod:`data_prep.codeswitch`): ``utt2lang`` is ``zh-en`` (or, with ``utt2lang="label"``, the corpus
label), and ``utt2lang.corpus`` maps ``ZH``/``EN``/``CS`` to ``zh``/``en``/``zh-en``; phase-I
segments get the language of their tags.

Splits.  SEAME has no official split in the LDC release.  By default speakers are split
(speaker-disjoint, 80/10/10, :func:`speechx.data.splits.split_sentences` over speaker ids) into
``train``/``dev``/``test``.  With ``dev_set_dir`` pointing at a clone of the community split
(github.com/zengzp0912/SEAME-dev-set, as used by ESPnet), the segments listed in
``dev_man/text`` and ``dev_sge/text`` go to ``devman`` and ``devsge`` (matched as ESPnet does:
same recording, both ends within 30 ms) and every other segment to ``train``.

Skipped, each with a warning naming the utterance and a row in ``local/seame_skipped.tsv``:
``empty_transcript``, ``missing_audio``, ``unreadable_audio``, ``bad_times`` (end not after
start), ``segment_out_of_range`` (past the end of the recording), ``too_short``
(``min_duration``) and ``duplicate_id``.

Run ``python -m data_prep.seame --help``.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from data_prep import PrepReport, SkipLog, prep_parser, ratios_arg, run_preparer, safe_id
from data_prep.codeswitch import (
    EN,
    MIXED,
    UTT2LANG_MODES,
    ZH,
    CleanConfig,
    CodeSwitchSplits,
    add_clean_args,
    clean_config_from_args,
    clean_transcript,
)
from speechx.audio import AudioInfo, audio_info
from speechx.data.kaldi import Segment
from speechx.data.splits import DEFAULT_RATIOS, DEFAULT_SPLIT_NAMES, split_sentences
from speechx.errors import AudioError, SpeechxError

PARTS: tuple[str, ...] = ("conversation", "interview")
AUDIO_EXTS: tuple[str, ...] = (".flac", ".wav")
#: phase-II language column -> ``utt2lang.corpus`` value
LANGUAGE_LABELS: dict[str, str] = {"zh": ZH, "en": EN, "cs": MIXED}
DEV_SET_SPLITS: dict[str, str] = {"dev_man": "devman", "dev_sge": "devsge"}
#: ESPnet's tolerance when matching the community dev-set ids (in 10 ms units).
DEV_SET_TOLERANCE = 3
LABELS: frozenset[str] = frozenset({"ZH", "EN", "CS"})


class SeameError(SpeechxError, ValueError):
    """A SEAME copy that cannot be read: not found, no transcripts, malformed lines."""


@dataclass(frozen=True)
class SeamePart:
    """One ``conversation`` or ``interview`` directory of the release."""

    kind: str
    audio_dir: Path
    transcripts: tuple[Path, ...]
    phase: str  # "II", "I" or "" (transcripts directly in transcript/)


@dataclass(frozen=True)
class SeameSegment:
    """One transcript line.

    Attributes:
        recording: recording id (the audio file name without extension).
        start_ms, end_ms: segment times in milliseconds.
        label: the phase-II language column (``ZH``/``EN``/``CS``), ``None`` in phase I.
        text: the raw transcript ("" when the line has none).
        source: ``<file>:<line>`` of the line, for messages.
    """

    recording: str
    start_ms: int
    end_ms: int
    label: str | None
    text: str
    source: str


def find_seame(corpus_dir: str | os.PathLike, phase: str = "auto") -> list[SeamePart]:
    """Find the conversation and interview parts of a SEAME copy.

    Args:
        corpus_dir: the release (``LDC2015S04``), one of its ``seame_d*`` / ``data``
            directories, or a part directory itself.
        phase: ``"II"``, ``"I"``, or ``"auto"`` (phase II where present, else phase I, else
            the ``*.txt`` directly in ``transcript/``).

    Returns:
        The parts found, sorted by path.

    Raises:
        SeameError: the directory does not exist, no part is found, a part has no transcript
            of the requested phase, or ``phase`` is not one of the values above.
    """
    if phase not in ("auto", "I", "II"):
        raise SeameError(f"phase must be 'auto', 'I' or 'II', got {phase!r}")
    root = Path(corpus_dir)
    if not root.is_dir():
        raise SeameError(f"{root}: SEAME corpus directory not found")
    candidates = [root] if root.name in PARTS else []
    for depth in ("*", "*/*", "*/*/*", "*/*/*/*"):
        candidates += [p for p in sorted(root.glob(depth)) if p.name in PARTS]
    parts: list[SeamePart] = []
    for d in dict.fromkeys(candidates):
        tdir, adir = d / "transcript", d / "audio"
        if not (tdir.is_dir() and adir.is_dir()):
            continue
        order = {"auto": ("phaseII", "phaseI", ""), "II": ("phaseII",), "I": ("phaseI",)}[phase]
        for sub in order:
            files = tuple(sorted(f for f in (tdir / sub).glob("*.txt") if f.is_file()))
            if files:
                parts.append(SeamePart(d.name, adir, files, sub.removeprefix("phase")))
                break
        else:
            raise SeameError(f"{tdir}: no transcripts for phase {phase!r}")
    if not parts:
        raise SeameError(
            f"{root}: no SEAME parts found (expected {{conversation,interview}}/audio and "
            "/transcript below it)"
        )
    return parts


def parse_transcript(path: str | os.PathLike, phase: str | None = None) -> list[SeameSegment]:
    """Read one transcript file: ``rec start end [LANG] text`` lines, tab-separated.

    Args:
        path: the ``.txt`` file.
        phase: ``"II"`` (the fourth field is the language label), ``"I"`` (no label) or
            ``None`` (a label when a tab-separated line has five or more fields).  Lines
            without tabs are split at blanks, with a label when the fourth word is ``ZH``,
            ``EN`` or ``CS``.

    Returns:
        The segments in file order; a line with a recording id and times but no text gives a
        segment with ``text == ""``.

    Raises:
        SeameError: the file is not UTF-8, or a line lacks times or has times that are not
            numbers (the file and line are named).
    """
    p = Path(path)
    try:
        content = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise SeameError(f"{p}: not valid UTF-8 ({exc.reason} at byte {exc.start})") from None
    out: list[SeameSegment] = []
    for no, raw in enumerate(content.splitlines(), start=1):
        if not raw.strip():
            continue
        if "\t" in raw:
            fields = [f.strip() for f in raw.split("\t")]
            with_label = phase == "II" or (phase is None and len(fields) >= 5)
        else:
            fields = raw.split(None, 4)
            with_label = phase != "I" and len(fields) >= 4 and fields[3].upper() in LABELS
            if not with_label and len(fields) > 4:
                fields = raw.split(None, 3)
        if len(fields) < 3:
            raise SeameError(f"{p}:{no}: expected 'rec-id<TAB>start<TAB>end<TAB>...', got {raw!r}")
        rec, start, end = fields[:3]
        try:
            start_ms, end_ms = int(round(float(start))), int(round(float(end)))
        except ValueError:
            raise SeameError(f"{p}:{no}: start/end {start!r}/{end!r} are not numbers") from None
        rest = fields[3:]
        label: str | None = None
        if with_label and rest:
            label, rest = rest[0].upper() or None, rest[1:]
        text = " ".join(r for r in rest if r).strip()
        out.append(SeameSegment(rec, start_ms, end_ms, label, text, f"{p}:{no}"))
    return out


def speaker_of(recording: str) -> str:
    """The speaker code of a recording id: ``01NC01FBX_0101`` -> ``NC01F``, ``UI06MAZ_0105`` ->
    ``UI06M``; ids of another shape give their part before ``_``."""
    main = recording.split("_")[0]
    m = re.match(r"^\d{2}([A-Z]{2}\d{2}[MF])[A-Z]{2}$", main)
    if m:
        return m.group(1)
    m = re.match(r"^([A-Z]{2}\d{2}[MF])[A-Z]{2}$", main)
    if m:
        return m.group(1)
    return safe_id(main) or "x"


def utterance_id(seg: SeameSegment) -> str:
    """``<spk>-<rec>-<start ms:07d>-<end ms:07d>``."""
    rec = safe_id(seg.recording)
    return f"{speaker_of(seg.recording)}-{rec}-{seg.start_ms:07d}-{seg.end_ms:07d}"


def read_dev_set(dev_set_dir: str | os.PathLike) -> dict[str, dict[str, list[tuple[int, int]]]]:
    """Read the community dev sets (``dev_man/text``, ``dev_sge/text`` of SEAME-dev-set).

    Their ids are ``<spk>-<rec>-<start>-<end>`` with times in 10 ms units.

    Returns:
        split name (``devman``, ``devsge``) -> lower-cased recording id -> ``(start, end)``
        pairs in 10 ms units.

    Raises:
        SeameError: the directory or one of the two ``text`` files is missing, or an id does
            not end in two numbers (the file and line are named).
    """
    root = Path(dev_set_dir)
    out: dict[str, dict[str, list[tuple[int, int]]]] = {}
    for sub, name in DEV_SET_SPLITS.items():
        f = root / sub / "text"
        if not f.is_file():
            raise SeameError(f"{f}: SEAME dev-set list not found")
        table: dict[str, list[tuple[int, int]]] = {}
        for no, line in enumerate(f.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.split()[0].lower().split("-")
            try:
                rec, s, e = parts[-3], int(parts[-2]), int(parts[-1])
            except (IndexError, ValueError):
                raise SeameError(
                    f"{f}:{no}: id {line.split()[0]!r} is not spk-rec-start-end"
                ) from None
            table.setdefault(rec, []).append((s, e))
        out[name] = table
    return out


def _dev_split(seg: SeameSegment, dev: dict[str, dict[str, list[tuple[int, int]]]]) -> str:
    s, e = seg.start_ms / 10.0, seg.end_ms / 10.0
    for name, table in dev.items():
        for ds, de in table.get(seg.recording.lower(), ()):
            if abs(ds - s) < DEV_SET_TOLERANCE and abs(de - e) < DEV_SET_TOLERANCE:
                return name
    return "train"


def _find_audio(audio_dir: Path, recording: str, index: dict[str, Path]) -> Path | None:
    for ext in AUDIO_EXTS:
        p = audio_dir / f"{recording}{ext}"
        if p.is_file():
            return p
    return index.get(recording.lower())


def prepare_seame(
    corpus_dir: str | os.PathLike,
    out_dir: str | os.PathLike = "data",
    *,
    phase: str = "auto",
    dev_set_dir: str | os.PathLike | None = None,
    ratios: Sequence[float] = DEFAULT_RATIOS,
    split_names: Sequence[str] = DEFAULT_SPLIT_NAMES,
    seed: int = 0,
    min_duration: float = 0.0,
    clean: CleanConfig | None = None,
    utt2lang: str = "pair",
    max_warnings: int | None = 20,
    verbose: bool = False,
) -> PrepReport:
    """Write ``<out_dir>/seame_zh-en_<split>`` Kaldi dirs from a SEAME (LDC2015S04) copy.

    Args:
        corpus_dir: the release or any directory above its ``conversation``/``interview``.
        out_dir: where the dirs, ``local/seame_prep.json`` and ``local/seame_skipped.tsv`` go.
        phase: transcript phase, see :func:`find_seame`.
        dev_set_dir: a clone of SEAME-dev-set; when given, the splits are ``train``,
            ``devman`` and ``devsge`` instead of a speaker split.
        ratios, split_names, seed: the speaker-disjoint split used without ``dev_set_dir``.
        min_duration: segments shorter than this (seconds) are skipped as ``too_short``.
        clean: transcript normalisation (default :class:`CleanConfig`).
        utt2lang: ``"pair"`` (``zh-en`` everywhere) or ``"label"`` (the corpus label); the
            label is always in ``utt2lang.corpus``.
        max_warnings: warnings issued per skip reason (the TSV lists every skip).
        verbose: print the summary.

    Returns:
        A :class:`PrepReport`; ``extra`` holds the cleaning settings, the phase of each part,
        recordings used, utterances per corpus label, tokens tagged by context and
        label/tag disagreements.

    Raises:
        SeameError: the corpus, a transcript or the dev-set lists cannot be read, or
            ``utt2lang`` is not ``"pair"`` or ``"label"``.
    """
    t0 = time.perf_counter()
    if utt2lang not in UTT2LANG_MODES:
        raise SeameError(f"utt2lang must be one of {UTT2LANG_MODES}, got {utt2lang!r}")
    cfg = clean or CleanConfig()
    out = Path(out_dir)
    parts = find_seame(corpus_dir, phase)
    dev = read_dev_set(dev_set_dir) if dev_set_dir is not None else None

    report = PrepReport(corpus="seame", out_dir=str(out))
    log = SkipLog(report, max_warnings=max_warnings)
    infos: dict[Path, AudioInfo | str] = {}
    # every usable segment, in corpus order: the split needs all speakers first
    kept: list[tuple[SeameSegment, str, Path, float, str]] = []
    seen: set[str] = set()
    for part in parts:
        index = {
            f.stem.lower(): f
            for f in part.audio_dir.iterdir()
            if f.is_file() and f.suffix.lower() in AUDIO_EXTS
        }
        for tfile in part.transcripts:
            for seg in parse_transcript(tfile, part.phase or None):
                report.n_sentences += 1
                utt = utterance_id(seg)
                if utt in seen:
                    log.skip(utt, "duplicate_id", f"segment repeated at {seg.source}")
                    continue
                seen.add(utt)
                text = clean_transcript(seg.text, cfg)
                if not text:
                    raw = seg.text or "(none)"
                    log.skip(utt, "empty_transcript", f"nothing left of {raw!r} ({seg.source})")
                    continue
                if seg.end_ms <= seg.start_ms:
                    log.skip(utt, "bad_times", f"end not after start ({seg.source})")
                    continue
                dur = (seg.end_ms - seg.start_ms) / 1000.0
                if dur < min_duration:
                    log.skip(utt, "too_short", f"{dur:.3f} s < {min_duration:g} s ({seg.source})")
                    continue
                audio = _find_audio(part.audio_dir, seg.recording, index)
                if audio is None:
                    log.skip(
                        utt,
                        "missing_audio",
                        f"no {seg.recording}.flac/.wav in {part.audio_dir} ({seg.source})",
                    )
                    continue
                if audio not in infos:
                    try:
                        infos[audio] = audio_info(audio)
                    except AudioError as exc:
                        infos[audio] = str(exc)
                info = infos[audio]
                if isinstance(info, str):
                    log.skip(utt, "unreadable_audio", info)
                    continue
                if seg.end_ms / 1000.0 > info.duration + 0.01:
                    log.skip(
                        utt,
                        "segment_out_of_range",
                        f"ends at {seg.end_ms / 1000:.3f} s, past the end of {audio} "
                        f"({info.duration:.3f} s) ({seg.source})",
                    )
                    continue
                kept.append((seg, utt, audio, dur, text))

    speakers = sorted({speaker_of(seg.recording) for seg, *_ in kept})
    by_speaker = split_sentences(speakers, ratios, split_names, seed) if dev is None else {}
    names = list(split_names) if dev is None else ["train", *DEV_SET_SPLITS.values()]
    dirs = CodeSwitchSplits(f"seame_{MIXED}", LANGUAGE_LABELS, utt2lang_mode=utt2lang)
    for name in names:
        dirs.for_split(name)
    for seg, utt, audio, dur, text in kept:
        spk = speaker_of(seg.recording)
        dirs.add(
            by_speaker[spk] if dev is None else _dev_split(seg, dev),
            utt,
            text=text,
            speaker=spk,
            label=seg.label,
            duration=dur,
            wav=str(audio.resolve()),
            segment=Segment(safe_id(seg.recording), seg.start_ms / 1000.0, seg.end_ms / 1000.0),
        )

    extra = {
        "parts": {str(p.audio_dir.parent): f"phase{p.phase}" if p.phase else "flat" for p in parts},
        "recordings": len({audio for _, _, audio, *_ in kept}),
        "speakers": len(speakers),
        "split": "dev-set" if dev is not None else "speaker",
    }
    return dirs.finish(out, report, log, started=t0, clean=cfg, extra=extra, verbose=verbose)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m data_prep.seame``: parse arguments, run :func:`prepare_seame`, print."""
    ap = prep_parser(
        "seame",
        "Prepare SEAME (LDC2015S04) as Kaldi dirs seame_zh-en_<split> with "
        "segments into the FLAC recordings, cleaned text, text.langtags, utt2lang, utt2spk, "
        "spk2utt, utt2dur.",
    )
    ap.add_argument("--corpus-dir", required=True, help="the SEAME release (LDC2015S04)")
    ap.add_argument("--phase", default="auto", choices=("auto", "I", "II"), help="transcript phase")
    ap.add_argument(
        "--dev-set-dir",
        default=None,
        help="clone of SEAME-dev-set: splits train/devman/devsge instead of a speaker split",
    )
    ap.add_argument(
        "--ratios",
        type=ratios_arg,
        default="0.8,0.1,0.1",
        help="speaker split train,dev,test (default 0.8,0.1,0.1)",
    )
    ap.add_argument("--seed", type=int, default=0, help="speaker split seed (default: 0)")
    ap.add_argument("--min-duration", type=float, default=0.0, help="seconds (default: 0)")
    add_clean_args(ap)
    args = ap.parse_args(argv)
    return run_preparer(
        lambda: prepare_seame(
            args.corpus_dir,
            args.out_dir,
            phase=args.phase,
            dev_set_dir=args.dev_set_dir,
            ratios=args.ratios,
            seed=args.seed,
            min_duration=args.min_duration,
            clean=clean_config_from_args(args),
            utt2lang=args.utt2lang,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
