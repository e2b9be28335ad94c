"""Synthetic multilingual speech: every sentence spoken in every language by espeak-ng.

The sentences and their split come from a sentence table (``local/fillets_sentences.tsv``,
written by :mod:`data_prep.fillets`) or from Kaldi dirs with ``utt2sent``; reusing that split
means no test sentence is ever trained on, in any language.  Each (sentence, language) gets one
"speaker": an espeak-ng voice variant (``+m1`` .. ``+m7``, ``+f1`` .. ``+f5``), a speed and a
pitch, chosen from a hash of ``(seed, lang, sentence id)``.  Audio is resampled to 16 kHz with
soxr and saved as 16-bit WAV under ``<audio_dir>/<lang>/`` (default ``<out_dir>/../wav/<name>``),
outside the Kaldi dirs.  Files already there are kept, so an interrupted run resumes.

Crash safety: every WAV is written to a hidden temp file and renamed, so a killed run leaves no
truncated clip, only temp files.  A run holds ``<audio_dir>/.lock`` (:class:`speechx.runlock.
RunLock`: a second run on the same audio dir stops with an error naming the first) and, holding
it, deletes the temp files a killed run left.  A rerun after a kill writes the same Kaldi dirs
and audio, byte for byte, as an uninterrupted run.

Output Kaldi dirs: ``<out_dir>/<name>_<lang>_<split>`` (``--name``, default ``synth``) with
``wav.scp``, ``text`` (the sentence in ``<lang>``), ``text.<lang>`` for every language in which
the table has the sentence, ``utt2spk`` (``<lang>-<variant>-s<speed>-p<pitch>``), ``utt2lang``,
``utt2dur`` and ``utt2sent``.  A row is spoken only in the languages where it has text (the
others count as ``no_text``), so a table of monolingual rows (:mod:`data_prep.textcorpus`)
works as it is.

Run ``python -m data_prep.synth --help``.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np
import soundfile as sf
import soxr
from tqdm import tqdm

from data_prep import PrepReport, existing_duration, parse_list, prep_parser, run_preparer
from speechx.audio import save_audio
from speechx.data.kaldi import KaldiDir, atomic_write_text
from speechx.data.splits import DEFAULT_SPLIT_NAMES
from speechx.errors import SpeechxError
from speechx.runlock import RunLock

DEFAULT_LANGS: tuple[str, ...] = ("en", "de", "fr", "es", "it", "nl", "pl", "ru")
DEFAULT_SENTENCES = "local/fillets_sentences.tsv"
DEFAULT_NAME = "synth"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")

#: speechx language code -> espeak-ng voice, where they differ.
ESPEAK_VOICES: dict[str, str] = {"en": "en-us", "fr": "fr-fr"}

_SPLIT_SUFFIX = re.compile(r"_([A-Za-z0-9]+)$")


class SynthError(SpeechxError, RuntimeError):
    """espeak-ng is missing or broken, a voice does not exist, or the input is unusable."""


@dataclass(frozen=True)
class VoiceSpace:
    """The speaker grid: every combination is one synthetic speaker of a language."""

    variants: tuple[str, ...] = ("m1", "m2", "m3", "m4", "m5", "m6", "m7") + (
        "f1",
        "f2",
        "f3",
        "f4",
        "f5",
    )
    speeds: tuple[int, ...] = (140, 160, 180)  # words per minute (espeak-ng -s)
    pitches: tuple[int, ...] = (35, 50, 65)  # 0..99 (espeak-ng -p)


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker."""

    lang: str
    espeak_voice: str
    variant: str
    speed: int
    pitch: int

    @property
    def speaker(self) -> str:
        """``<lang>-<variant>-s<speed>-p<pitch>``, the Kaldi speaker id."""
        return f"{self.lang}-{self.variant}-s{self.speed}-p{self.pitch}"

    def command(self, executable: str = "espeak-ng") -> list[str]:
        """The espeak-ng command that reads UTF-8 text on stdin and writes WAV to stdout."""
        return [
            executable,
            "-v",
            f"{self.espeak_voice}+{self.variant}",
            "-s",
            str(self.speed),
            "-p",
            str(self.pitch),
            "-b",
            "1",
            "--stdout",
        ]


def choose_voice(
    lang: str,
    sent_id: str,
    seed: int = 0,
    space: VoiceSpace | None = None,
    espeak_voices: dict[str, str] | None = None,
) -> Voice:
    """The speaker of ``sent_id`` in ``lang``: a pure function of ``(seed, lang, sent_id)``.

    Returns:
        A :class:`Voice` drawn uniformly from ``space`` (default :class:`VoiceSpace`).
    """
    space = space or VoiceSpace()
    voices = ESPEAK_VOICES if espeak_voices is None else espeak_voices
    h = hashlib.blake2b(f"{seed}\x00{lang}\x00{sent_id}".encode(), digest_size=8).digest()
    x = int.from_bytes(h, "big")
    variant = space.variants[x % len(space.variants)]
    x //= len(space.variants)
    speed = space.speeds[x % len(space.speeds)]
    x //= len(space.speeds)
    pitch = space.pitches[x % len(space.pitches)]
    return Voice(lang, voices.get(lang, lang), variant, speed, pitch)


def check_espeak(
    langs: Sequence[str],
    executable: str = "espeak-ng",
    espeak_voices: dict[str, str] | None = None,
) -> str:
    """Check that espeak-ng runs and has a voice for every language.

    Returns:
        The full path of the executable.

    Raises:
        SynthError: espeak-ng is not on PATH (with how to install it), or a language has no
            voice (the language and voice are named).
    """
    exe = shutil.which(executable)
    if exe is None:
        raise SynthError(
            f"{executable} not found on PATH; install it (Debian: apt-get install espeak-ng)"
        )
    voices = ESPEAK_VOICES if espeak_voices is None else espeak_voices
    for lang in langs:
        voice = voices.get(lang, lang)
        proc = subprocess.run(
            [exe, "-v", voice, "-q", "test"], capture_output=True, text=True, timeout=30
        )
        msg = (proc.stderr + proc.stdout).strip()
        if proc.returncode != 0 or "does not exist" in msg:
            detail = msg or f"exit code {proc.returncode}"
            raise SynthError(
                f"espeak-ng has no voice {voice!r} for language {lang!r} ({detail}); "
                "see `espeak-ng --voices`"
            )
    return exe


def synthesize(
    text: str, voice: Voice, sample_rate: int = 16000, executable: str = "espeak-ng"
) -> np.ndarray:
    """Speak ``text`` with ``voice``.

    Returns:
        float32 mono samples at ``sample_rate``.

    Raises:
        SynthError: espeak-ng fails or writes no audio (the voice and text are named).
    """
    try:
        proc = subprocess.run(
            voice.command(executable), input=text.encode("utf-8"), capture_output=True, timeout=120
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise SynthError(f"espeak-ng ({voice.speaker}) failed on {text[:60]!r}: {exc}") from None
    if proc.returncode != 0 or not proc.stdout:
        err = proc.stderr.decode("utf-8", "replace").strip()
        raise SynthError(
            f"espeak-ng ({voice.speaker}) exited {proc.returncode} on {text[:60]!r}: {err}"
        )
    try:
        wav, sr = sf.read(io.BytesIO(proc.stdout), dtype="float32", always_2d=True)
    except Exception as exc:  # libsndfile raises several types
        raise SynthError(f"espeak-ng ({voice.speaker}) wrote unreadable audio: {exc}") from None
    wav = wav.mean(axis=1)
    if sr != sample_rate and wav.size:
        wav = soxr.resample(wav, sr, sample_rate, quality="HQ").astype(np.float32, copy=False)
    return np.ascontiguousarray(wav, dtype=np.float32)


# --------------------------------------------------------------------------- sentence sources


@dataclass
class Sentence:
    """A sentence id with its split and its text in each language."""

    sent_id: str
    split: str
    texts: dict[str, str] = field(default_factory=dict)


def read_sentence_table(path: str | os.PathLike) -> dict[str, Sentence]:
    """Read a ``sent_id<TAB>split<TAB><lang>...`` table with a header row.

    Returns:
        ``{sent_id: Sentence}``; empty cells are left out of ``texts``.

    Raises:
        SynthError: the file is missing, the header is wrong, a row has the wrong number of
            cells or repeats an id (file and line are named).
    """
    p = Path(path)
    if not p.is_file():
        raise SynthError(f"{p}: sentence table not found (run data_prep.fillets first?)")
    lines = p.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t") if lines else []
    if header[:2] != ["sent_id", "split"] or len(header) < 3:
        raise SynthError(f"{p}: expected a header 'sent_id<TAB>split<TAB><lang>...'")
    langs = header[2:]
    out: dict[str, Sentence] = {}
    for no, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cells = line.split("\t")
        if len(cells) != len(header):
            raise SynthError(f"{p}:{no}: expected {len(header)} cells, got {len(cells)}")
        sid, split = cells[0], cells[1]
        if sid in out:
            raise SynthError(f"{p}:{no}: duplicate sentence id {sid!r}")
        out[sid] = Sentence(
            sid, split, {lg: t for lg, t in zip(langs, cells[2:], strict=True) if t.strip()}
        )
    return out


def sentences_from_kaldi(dirs: Sequence[str | os.PathLike]) -> dict[str, Sentence]:
    """Collect sentences from Kaldi dirs named ``<anything>_<split>`` that have ``utt2sent``.

    The text of an utterance in its own language (``utt2lang``) comes from ``text``, other
    languages from ``text.<lang>``; the first text seen for a (sentence, language) is kept.

    Returns:
        ``{sent_id: Sentence}``.

    Raises:
        SynthError: a dir name has no ``_<split>`` suffix, a dir has no ``utt2sent``, or one
            sentence appears in two different splits.
    """
    out: dict[str, Sentence] = {}
    for d in sorted(Path(x) for x in dirs):
        m = _SPLIT_SUFFIX.search(d.name)
        if not m:
            raise SynthError(f"{d}: dir name must end in _<split> (e.g. fillets_nl_train)")
        split = m.group(1)
        kd = KaldiDir.read(d)
        if len(kd) and not kd.utt2sent:
            raise SynthError(f"{d}: no utt2sent; cannot tell which utterances share a sentence")
        for utt in kd.utt_ids:
            sid = kd.utt2sent.get(utt)
            if sid is None:
                continue
            s = out.setdefault(sid, Sentence(sid, split))
            if s.split != split:
                raise SynthError(f"{d}: sentence {sid!r} is in split {split!r} and {s.split!r}")
            if utt in kd.utt2lang and kd.text.get(utt):
                s.texts.setdefault(kd.utt2lang[utt], kd.text[utt])
            for lang, t in sorted(kd.translations.items()):
                if t.get(utt):
                    s.texts.setdefault(lang, t[utt])
    return out


# --------------------------------------------------------------------------- the preparer


@dataclass(frozen=True)
class _Job:
    sent_id: str
    split: str
    lang: str
    text: str
    voice: Voice
    path: Path

    @property
    def utt(self) -> str:
        return f"{self.voice.speaker}-{self.sent_id}"


def _run_job(job: _Job, sample_rate: int, executable: str) -> tuple[str, float | None]:
    """Returns ``(status, duration)``: status is reused, synthesised, or a skip reason."""
    dur = existing_duration(job.path)
    if dur is not None:
        return "reused", dur
    try:
        wav = synthesize(job.text, job.voice, sample_rate, executable)
    except SynthError:
        return "espeak_failed", None
    if wav.size < int(0.05 * sample_rate) or not np.any(wav):
        return "empty_audio", None
    save_audio(job.path, wav, sample_rate)
    return "synthesised", wav.size / sample_rate


Job = TypeVar("Job")


@dataclass
class JobResults(Generic[Job]):
    """What :func:`run_jobs` did.

    Attributes:
        done: ``(job, duration)`` of every job with audio, in job order.
        failed: ``(job, reason)`` of every job without, in job order.
        statuses: ``synthesised`` / ``reused`` -> number of jobs.
    """

    done: list[tuple[Job, float]] = field(default_factory=list)
    failed: list[tuple[Job, str]] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)


def run_jobs(
    run: Callable[[Job], tuple[str, float | None]],
    jobs: Sequence[Job],
    report: PrepReport,
    *,
    nj: int,
    progress: bool | None,
    desc: str,
    unit: str,
) -> JobResults[Job]:
    """Run synthesis jobs on ``nj`` threads behind a progress bar.

    Args:
        run: one job -> ``(status, duration)``; a ``None`` duration means the job failed and
            ``status`` is the reason.
        report: every failure is counted into it (:meth:`PrepReport.skip`).
        progress: show the bar (default: when stderr is a terminal; redrawn every 30 s when
            it is not).

    Returns:
        The :class:`JobResults`.
    """
    show = sys.stderr.isatty() if progress is None else progress
    out: JobResults[Job] = JobResults()
    with (
        ThreadPoolExecutor(max_workers=nj) as pool,
        tqdm(
            total=len(jobs),
            disable=not show,
            desc=desc,
            unit=unit,
            mininterval=0.5 if sys.stderr.isatty() else 30.0,
        ) as bar,
    ):
        for job, (status, dur) in zip(jobs, pool.map(run, jobs), strict=True):
            bar.update(1)
            if dur is None:
                report.skip(status)
                out.failed.append((job, status))
            else:
                out.statuses[status] += 1
                out.done.append((job, dur))
    return out


# --------------------------------------------------------------------------- sharded jobs
# With nj > 1 the clips are split Kaldi-style into nj pieces <audio_root>/split<nj>/<i>
# (jobs.json: the piece's clips; results.tsv: what became of each), run as separate processes
# through speechx.parallel (locally, or via a launcher such as recipes/utils/slurm.sh), and the
# results are read back in piece order, which is job order: the output equals that of nj=1.

_RESULTS = "results.tsv"


def _job_record(job: _Job) -> dict:
    v = job.voice
    return {
        "sent_id": job.sent_id,
        "split": job.split,
        "lang": job.lang,
        "text": job.text,
        "voice": [v.lang, v.espeak_voice, v.variant, v.speed, v.pitch],
        "path": str(job.path),
    }


def _job_from_record(r: dict) -> _Job:
    lang, espeak_voice, variant, speed, pitch = r["voice"]
    voice = Voice(lang, espeak_voice, variant, int(speed), int(pitch))
    return _Job(r["sent_id"], r["split"], r["lang"], r["text"], voice, Path(r["path"]))


def _piece_results(piece: Path, spec: str) -> list[tuple[str, float | None]] | None:
    """The results of a finished piece, or None when it must run (again).

    A piece is finished when its ``results.tsv`` was written for exactly this ``jobs.json``
    and every clip it made is still a readable file.
    """
    try:
        lines = (piece / _RESULTS).read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    if not lines or lines[0] != f"# {hashlib.sha256(spec.encode()).hexdigest()}":
        return None
    jobs = json.loads(spec)["jobs"]
    rows = [line.split("\t") for line in lines[1:]]
    if len(rows) != len(jobs):
        return None
    out: list[tuple[str, float | None]] = []
    for row, rec in zip(rows, jobs, strict=True):
        status, dur = row[1], (float(row[2]) if row[2] else None)
        if dur is not None and existing_duration(Path(rec["path"])) is None:
            return None  # a clip lost since: run the piece again (it redoes only that clip)
        out.append((status, dur))
    return out


def run_piece(piece: str | os.PathLike) -> int:
    """Run one piece of a sharded synthesis (``python -m data_prep.synth --run-piece DIR``).

    Reads ``DIR/jobs.json``, makes every clip not already on disk, and writes
    ``DIR/results.tsv`` (one ``utt<TAB>status<TAB>duration`` line per job, after a header that
    fingerprints ``jobs.json``) atomically.  A piece that is already finished returns at once.

    Returns:
        0.

    Raises:
        SynthError: ``jobs.json`` is missing or unreadable.
    """
    piece = Path(piece)
    try:
        spec = (piece / "jobs.json").read_text(encoding="utf-8")
        conf = json.loads(spec)
    except (OSError, ValueError) as exc:
        raise SynthError(f"{piece / 'jobs.json'}: cannot read the piece's jobs: {exc}") from None
    if _piece_results(piece, spec) is not None:
        print(f"{piece}: already finished")
        return 0
    jobs = [_job_from_record(r) for r in conf["jobs"]]
    rows = [f"# {hashlib.sha256(spec.encode()).hexdigest()}\n"]
    counts: Counter = Counter()
    for job in jobs:
        status, dur = _run_job(job, conf["sample_rate"], conf["executable"])
        counts[status] += 1
        rows.append(f"{job.utt}\t{status}\t{'' if dur is None else repr(dur)}\n")
    atomic_write_text(piece / _RESULTS, "".join(rows))
    print(f"{piece}: {len(jobs)} clips: {dict(sorted(counts.items()))}")
    return 0


def run_pieces(
    jobs: Sequence[_Job],
    report: PrepReport,
    work_dir: Path,
    *,
    nj: int,
    sample_rate: int,
    executable: str,
    cmd: str | None = None,
) -> JobResults[_Job]:
    """Run ``jobs`` as ``nj`` processes (pieces ``work_dir/split<nj>/<i>``), then merge.

    Finished pieces (see :func:`run_piece`) are not run again; if every piece is finished, no
    process is started.

    Returns:
        The :class:`JobResults` in job order; a finished piece's clips count as ``reused``.

    Raises:
        SynthError: a piece failed (its log is named).
    """
    from speechx.parallel import JobError, run_jobs

    root = work_dir / f"split{nj}"
    bounds = [len(jobs) * i // nj for i in range(nj + 1)]
    specs: list[str] = []
    finished: list[list[tuple[str, float | None]] | None] = []
    for i in range(nj):
        piece = root / str(i + 1)
        spec = json.dumps(
            {
                "sample_rate": sample_rate,
                "executable": executable,
                "jobs": [_job_record(j) for j in jobs[bounds[i] : bounds[i + 1]]],
            },
            ensure_ascii=False,
            indent=0,
        )
        piece.mkdir(parents=True, exist_ok=True)
        jobs_file = piece / "jobs.json"
        if not jobs_file.is_file() or jobs_file.read_text(encoding="utf-8") != spec:
            atomic_write_text(jobs_file, spec)
        specs.append(spec)
        finished.append(_piece_results(piece, spec))
    if any(f is None for f in finished):
        argv = [sys.executable, "-m", "data_prep.synth", "--run-piece", str(root / "JOB")]
        try:
            run_jobs(argv, nj, root / "log" / "synth.JOB.log", cmd=cmd)
        except JobError as exc:
            raise SynthError(f"synthesis job failed: {exc}") from None
    out: JobResults[_Job] = JobResults()
    for i in range(nj):
        results = _piece_results(root / str(i + 1), specs[i])
        if results is None:
            raise SynthError(f"{root / str(i + 1)}: the piece ran but its results are incomplete")
        for job, (status, dur) in zip(jobs[bounds[i] : bounds[i + 1]], results, strict=True):
            if dur is None:
                report.skip(status)
                out.failed.append((job, status))
            else:
                out.statuses["reused" if finished[i] is not None else status] += 1
                out.done.append((job, dur))
    return out


def prepare_synth(
    sentences: str | os.PathLike | Sequence[str | os.PathLike],
    out_dir: str | os.PathLike = "data",
    *,
    langs: Sequence[str] = DEFAULT_LANGS,
    nj: int = 2,
    seed: int = 0,
    splits: Sequence[str] = DEFAULT_SPLIT_NAMES,
    max_sentences: int | None = None,
    audio_dir: str | os.PathLike | None = None,
    sample_rate: int = 16000,
    voices: VoiceSpace | None = None,
    espeak_voices: dict[str, str] | None = None,
    executable: str = "espeak-ng",
    progress: bool | None = None,
    verbose: bool = False,
    cmd: str | None = None,
    name: str = DEFAULT_NAME,
) -> PrepReport:
    """Synthesise every sentence in every language and write ``<name>_<lang>_<split>`` dirs.

    Args:
        sentences: a sentence table (``local/fillets_sentences.tsv``) or a list of Kaldi dirs
            named ``*_<split>`` with ``utt2sent``; the split is taken from it unchanged.
        out_dir: where the Kaldi dirs go.
        langs: languages to speak (each needs an espeak-ng voice and a text in the table).
        nj: parallel jobs.  1 runs here; N > 1 splits the clips into N pieces
            ``<audio_dir>/split<N>/<i>`` run as separate processes (through ``cmd``) and merged
            in order, so the output is byte-identical to ``nj=1``; a finished piece is not run
            again.
        seed: picks the speaker of each (sentence, language).
        splits: which splits to synthesise.
        max_sentences: keep only the first N sentences (by id) of those splits.
        audio_dir: where the WAVs go (default ``<out_dir>/../wav/<name>``), one subdir per
            language; existing valid files are reused, not regenerated.
        sample_rate: of the saved audio.
        voices: the speaker grid (default :class:`VoiceSpace`).
        espeak_voices: language -> espeak-ng voice (default :data:`ESPEAK_VOICES`).
        executable: the espeak-ng program.
        progress: show a tqdm bar (default: when stderr is a terminal).
        verbose: print the summary.
        cmd: launcher of the ``nj`` pieces, as in :func:`speechx.parallel.run_jobs`
            (``recipes/utils/run.sh``, ``recipes/utils/slurm.sh ...``); default: subprocesses.
        name: prefix of the Kaldi dirs and of the default audio dir (``synth``; e.g.
            ``textsynth`` for the table of :mod:`data_prep.textcorpus`).

    Returns:
        A :class:`PrepReport`; ``extra`` has how many files were synthesised and reused;
        skipped clips are counted by reason (``no_text``, ``espeak_failed``, ``empty_audio``).

    Raises:
        SynthError: espeak-ng or a voice is missing, the sentence source is unusable, ``name``
            is not a plain name, or no clip at all could be made.
        speechx.runlock.RunLockError: another run is writing the same audio dir.
    """
    t0 = time.perf_counter()
    out = Path(out_dir)
    langs = parse_list(langs) or list(DEFAULT_LANGS)
    splits = parse_list(splits) or list(DEFAULT_SPLIT_NAMES)
    if nj < 1:
        raise SynthError(f"nj must be at least 1, got {nj}")
    if not _NAME.fullmatch(name):
        raise SynthError(f"name {name!r}: use letters, digits, '.', '_' and '-'")
    exe = check_espeak(langs, executable, espeak_voices)
    if isinstance(sentences, (str, os.PathLike)) and not Path(sentences).is_dir():
        table = read_sentence_table(sentences)
    else:
        dirs = [sentences] if isinstance(sentences, (str, os.PathLike)) else list(sentences)
        table = sentences_from_kaldi(dirs)
    chosen = [table[s] for s in sorted(table) if table[s].split in splits]
    if max_sentences is not None:
        chosen = chosen[:max_sentences]
    audio_root = Path(audio_dir) if audio_dir is not None else out.resolve().parent / "wav" / name
    report = PrepReport(corpus="synth", out_dir=str(out), n_sentences=len(chosen))

    with RunLock(audio_root, option="--audio-dir"):
        stale = remove_stale_tmp(audio_root, langs)
        jobs: list[_Job] = []
        for s in chosen:
            for lang in langs:
                text = " ".join(s.texts.get(lang, "").split())
                if not text:
                    report.skip("no_text")
                    continue
                voice = choose_voice(lang, s.sent_id, seed, voices, espeak_voices)
                path = (audio_root / lang / f"{voice.speaker}-{s.sent_id}.wav").resolve()
                jobs.append(_Job(s.sent_id, s.split, lang, text, voice, path))

        if nj > 1 and jobs:
            ran = run_pieces(
                jobs,
                report,
                audio_root,
                nj=min(nj, len(jobs)),
                sample_rate=sample_rate,
                executable=exe,
                cmd=cmd,
            )
        else:
            ran = run_jobs(
                lambda j: _run_job(j, sample_rate, exe),
                jobs,
                report,
                nj=1,
                progress=progress,
                desc="synth",
                unit="clip",
            )
        results, statuses = ran.done, ran.statuses
        if jobs and not results:
            raise SynthError(f"no clip could be synthesised ({dict(report.skipped)})")

        kdirs: dict[tuple[str, str], KaldiDir] = {}
        total = 0.0
        for job, dur in results:
            kd = kdirs.setdefault((job.lang, job.split), KaldiDir())
            utt = job.utt
            kd.wav_scp[utt] = str(job.path)
            kd.text[utt] = job.text
            kd.utt2spk[utt] = job.voice.speaker
            kd.utt2lang[utt] = job.lang
            kd.utt2dur[utt] = round(dur, 3)
            kd.utt2sent[utt] = job.sent_id
            for tl, t in table[job.sent_id].texts.items():
                kd.translations.setdefault(tl, {})[utt] = " ".join(t.split())
            total += dur
        report.splits = {s: 0 for s in splits}
        for (lang, split), kd in sorted(kdirs.items()):
            dir_name = f"{name}_{lang}_{split}"
            kd.write(out / dir_name)
            report.dirs[dir_name] = len(kd)
            report.splits[split] += len(kd)
        report.used = len(results)
        report.hours = total / 3600.0
        report.extra = {
            "synthesised": statuses["synthesised"],
            "reused": statuses["reused"],
            "speakers": len({j.voice.speaker for j, _ in results}),
            "audio_dir": str(audio_root),
        }
    report.extra["stale_tmp_removed"] = stale
    return report.finish(t0, verbose=verbose)


def remove_stale_tmp(audio_root: Path, langs: Sequence[str]) -> int:
    """Delete the hidden temp files (``.<clip>.wav.*.tmp``) a killed run left in
    ``<audio_root>/<lang>/``; call it only holding ``audio_root``'s lock.

    Returns:
        How many were deleted.
    """
    n = 0
    for lang in langs:
        d = audio_root / lang
        if d.is_dir():
            for tmp in d.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)
                n += 1
    return n


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m data_prep.synth``: parse arguments, run :func:`prepare_synth`, print."""
    ap = prep_parser(
        "synth",
        "Speak every sentence of a sentence table in several languages with "
        "espeak-ng and write Kaldi dirs synth_<lang>_<split> that reuse its split.",
    )
    ap.add_argument(
        "--sentences",
        default=None,
        help=f"sentence table (default: <out-dir>/{DEFAULT_SENTENCES})",
    )
    ap.add_argument(
        "--kaldi-dirs",
        nargs="+",
        default=None,
        help="take sentences from these Kaldi dirs (*_<split>, with utt2sent) instead",
    )
    ap.add_argument(
        "--name",
        default=DEFAULT_NAME,
        help="prefix of the dirs <name>_<lang>_<split> and of the default audio dir "
        f"(default: {DEFAULT_NAME})",
    )
    ap.add_argument(
        "--audio-dir", default=None, help="where the WAVs go (default: <out-dir>/../wav/<name>)"
    )
    ap.add_argument("--langs", nargs="+", default=None, help=f"default: {' '.join(DEFAULT_LANGS)}")
    ap.add_argument(
        "--nj",
        type=int,
        default=2,
        help="parallel jobs: the clips are split into N pieces <audio-dir>/splitN/<i>, one "
        "process each, merged in order (default: 2; 1 runs in this process)",
    )
    ap.add_argument(
        "--cmd",
        default=None,
        help="launcher of the pieces, e.g. recipes/utils/run.sh or 'recipes/utils/slurm.sh "
        "--mem 2G' (default: subprocesses here)",
    )
    ap.add_argument("--run-piece", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--seed", type=int, default=0, help="speaker choice seed (default: 0)")
    ap.add_argument(
        "--splits", nargs="+", default=None, help="splits to synthesise (default: all three)"
    )
    ap.add_argument("--max-sentences", type=int, default=None, help="first N sentences only")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    if args.run_piece is not None:
        try:
            return run_piece(args.run_piece)
        except SpeechxError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    source: str | list[str] = args.kaldi_dirs or args.sentences
    if source is None:
        source = str(Path(args.out_dir) / DEFAULT_SENTENCES)
    return run_preparer(
        lambda: prepare_synth(
            source,
            args.out_dir,
            langs=args.langs or DEFAULT_LANGS,
            nj=args.nj,
            seed=args.seed,
            splits=args.splits or DEFAULT_SPLIT_NAMES,
            max_sentences=args.max_sentences,
            audio_dir=args.audio_dir,
            progress=not args.no_progress,
            cmd=args.cmd,
            name=args.name,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
