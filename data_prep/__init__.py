"""Corpus preparation: each ``data_prep/<corpus>.py`` turns a corpus on disk into Kaldi dirs.

Every preparer is ``prepare_<corpus>(source, out_dir, ...) -> PrepReport`` and has a
``python -m data_prep.<corpus> --help`` face.  ``speechx`` never imports this package; a CLI
reaches the preparers through :data:`PREPARERS` and :func:`get_preparer`.

Layering: this package may import :mod:`speechx.audio` and :mod:`speechx.data`, nothing above.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from speechx.audio import audio_info
from speechx.data.kaldi import KaldiDir, atomic_write_text
from speechx.errors import AudioError, SpeechxError

#: corpus name -> (module, function); resolved lazily by :func:`get_preparer`.
PREPARERS: dict[str, tuple[str, str]] = {
    "fillets": ("data_prep.fillets", "prepare_fillets"),
    "synth": ("data_prep.synth", "prepare_synth"),
    "ascend": ("data_prep.ascend", "prepare_ascend"),
    "seame": ("data_prep.seame", "prepare_seame"),
    "synthcs": ("data_prep.synth_codeswitch", "prepare_synthcs"),
    "commonvoice": ("data_prep.commonvoice", "prepare_commonvoice"),
    "covost2": ("data_prep.covost2", "prepare_covost2"),
    "fleurs": ("data_prep.fleurs", "prepare_fleurs"),
    "librispeech": ("data_prep.librispeech", "prepare_librispeech"),
    "longform": ("data_prep.longform", "prepare_longform"),
    "textcorpus": ("data_prep.textcorpus", "prepare_textcorpus"),
}


@dataclass
class PrepReport:
    """What a preparation run produced.

    Attributes:
        corpus: corpus name ("fillets", "synth", ...).
        out_dir: where the Kaldi dirs were written.
        dirs: Kaldi dir name -> number of utterances written to it.
        used: number of clips written (over all dirs).
        skipped: reason -> number of clips left out.
        splits: split name -> number of utterances (over all languages).
        hours: total audio written, in hours.
        n_sentences: distinct sentences considered (before any audio was looked at).
        coverage: text language -> fraction of written utterances that have that translation.
        elapsed: wall time in seconds.
        extra: corpus-specific numbers (e.g. files synthesised vs. reused).
    """

    corpus: str
    out_dir: str
    dirs: dict[str, int] = field(default_factory=dict)
    used: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    splits: dict[str, int] = field(default_factory=dict)
    hours: float = 0.0
    n_sentences: int = 0
    coverage: dict[str, float] = field(default_factory=dict)
    elapsed: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def skip(self, reason: str, n: int = 1) -> None:
        """Count ``n`` clips left out for ``reason``."""
        self.skipped[reason] = self.skipped.get(reason, 0) + n

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy."""
        return asdict(self)

    def summary(self) -> str:
        """A few human-readable lines: counts, skips by reason, per split and dir, time."""
        lines = [
            f"{self.corpus}: {self.used} clips used ({self.hours:.2f} h) from "
            f"{self.n_sentences} sentences, written to {self.out_dir} in {self.elapsed:.1f} s"
        ]
        if self.skipped:
            parts = ", ".join(f"{k}={v}" for k, v in sorted(self.skipped.items()))
            lines.append(f"  skipped {sum(self.skipped.values())}: {parts}")
        if self.splits:
            lines.append("  per split: " + ", ".join(f"{k}={v}" for k, v in self.splits.items()))
        for name, n in sorted(self.dirs.items()):
            lines.append(f"  {name}: {n} utterances")
        if self.coverage:
            cov = ", ".join(f"{k}={v:.1%}" for k, v in self.coverage.items())
            lines.append(f"  translation coverage: {cov}")
        for k, v in self.extra.items():
            lines.append(f"  {k}: {v}")
        return "\n".join(lines)

    def write_json(self, path: str | Path) -> Path:
        """Write :meth:`to_dict` as JSON (without the run-dependent ``elapsed``); returns path."""
        p = Path(path)
        d = self.to_dict()
        d.pop("elapsed")
        atomic_write_text(p, json.dumps(d, indent=2, sort_keys=True, ensure_ascii=False) + "\n")
        return p

    def add_dir(self, name: str, split: str, n: int) -> None:
        """Record a written Kaldi dir ``name`` of ``n`` utterances that belongs to ``split``."""
        self.dirs[name] = n
        self.splits[split] = self.splits.get(split, 0) + n

    def set_coverage(self, kdirs: Iterable[KaldiDir], langs: Iterable[str]) -> None:
        """Set ``coverage[lang]``, for each of ``langs``, to the fraction of the ``used``
        utterances that have a ``text.<lang>`` entry in one of ``kdirs`` (0.0 when none
        was used)."""
        kdirs = list(kdirs)
        for lang in langs:
            have = sum(len(kd.translations.get(lang, {})) for kd in kdirs)
            self.coverage[lang] = have / self.used if self.used else 0.0

    def write_dir(self, path: str | Path, kd: KaldiDir, split: str) -> bool:
        """Write ``kd`` to ``path`` and record it under ``split`` (see :meth:`add_dir`).

        An empty ``kd`` is not written: its name goes into ``extra["empty_dirs"]``.

        Returns:
            Whether the dir was written.

        Raises:
            DataDirError: ``kd`` is inconsistent (from :meth:`KaldiDir.write`).
        """
        p = Path(path)
        if not len(kd):
            self.extra.setdefault("empty_dirs", []).append(p.name)
            return False
        kd.write(p)
        self.add_dir(p.name, split, len(kd))
        return True

    def finish(
        self, started: float, *, json_path: str | Path | None = None, verbose: bool = False
    ) -> PrepReport:
        """Close a run: write the JSON to ``json_path`` (if given), set ``elapsed``, print the
        summary when ``verbose``.

        Args:
            started: the run's ``time.perf_counter()`` at its start.

        Returns:
            The report itself.
        """
        if json_path is not None:
            self.write_json(json_path)
        self.elapsed = time.perf_counter() - started
        if verbose:
            print(self.summary())
        return self


class CorpusWarning(UserWarning):
    """An utterance of a real corpus left out during preparation (the message names it)."""


@dataclass
class SkipLog:
    """Counts skipped utterances in a :class:`PrepReport`, warns, and keeps them for a TSV.

    At most ``max_warnings`` warnings are issued per reason (``None``: no limit); the TSV
    written by :meth:`write` always names every skipped utterance.
    """

    report: PrepReport
    max_warnings: int | None = 20
    rows: list[tuple[str, str, str]] = field(default_factory=list)
    _warned: Counter = field(default_factory=Counter)

    def skip(self, utt: str, reason: str, detail: str) -> None:
        """Count ``utt`` as left out for ``reason``; warn with ``detail`` (what is wrong)."""
        self.report.skip(reason)
        self.rows.append((utt, reason, detail))
        n = self._warned[reason]
        if self.max_warnings is None or n < self.max_warnings:
            warnings.warn(
                f"{self.report.corpus}: skipping {utt}: {detail}", CorpusWarning, stacklevel=3
            )
        elif n == self.max_warnings:
            warnings.warn(
                f"{self.report.corpus}: further '{reason}' skips are not shown; every skipped "
                "utterance is listed in the skipped TSV",
                CorpusWarning,
                stacklevel=3,
            )
        self._warned[reason] += 1

    def skip_duration(
        self,
        utt: str,
        where: str | os.PathLike,
        dur: float,
        min_duration: float,
        max_duration: float,
    ) -> bool:
        """Skip ``utt`` as ``too_short`` or ``too_long`` when ``dur`` (seconds, of the audio at
        ``where``) is outside ``[min_duration, max_duration]``.

        Returns:
            Whether it was skipped.
        """
        if not (dur < min_duration or dur > max_duration):
            return False
        why = "too_short" if dur < min_duration else "too_long"
        self.skip(utt, why, f"{where}: {dur:.2f} s")
        return True

    def write(self, path: str | os.PathLike) -> Path:
        """Write ``utt<TAB>reason<TAB>detail`` lines (with a header); returns the path."""
        p = Path(path)
        lines = ["utt\treason\tdetail\n"]
        for utt, reason, detail in self.rows:
            lines.append(f"{utt}\t{reason}\t{' '.join(detail.split())}\n")
        atomic_write_text(p, "".join(lines))
        return p


# ------------------------------------------------------------------- helpers of the preparers
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_id(s: str) -> str:
    """``s`` with every character other than ``A-Z a-z 0-9 . _ -`` replaced by ``_``."""
    return _ID_UNSAFE.sub("_", s)


def parse_list(values: Sequence[str] | str | None) -> list[str] | None:
    """Split ``"nl,en"`` / ``["nl en", "de"]`` at commas and blanks, dropping repeats.

    Returns:
        The items in first-seen order, or ``None`` for ``None`` (meaning "the default").
    """
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    out = [x for v in values for x in re.split(r"[,\s]+", v) if x]
    return list(dict.fromkeys(out))


def existing_duration(path: Path, sample_rate: int | None = None) -> float | None:
    """Duration in seconds of an audio file already written by an earlier run, so that a
    rerun can reuse it.

    Returns:
        The duration, or ``None`` when the file must be (re)written: it is missing,
        unreadable or empty, or (with ``sample_rate``) not mono at that rate.
    """
    if not path.is_file():
        return None
    try:
        info = audio_info(path)
    except AudioError:
        return None
    if info.num_samples == 0:
        return None
    if sample_rate is not None and (info.sample_rate != sample_rate or info.channels != 1):
        return None
    return info.duration


def ratios_arg(text: str) -> list[float]:
    """argparse ``type`` of ``--ratios``: ``"0.8,0.1,0.1"`` -> ``[0.8, 0.1, 0.1]``.

    Raises:
        argparse.ArgumentTypeError: an item is not a number (argparse turns it into a usage
            error naming the option).
    """
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated numbers, got {text!r}") from None


def prep_parser(module: str, description: str) -> argparse.ArgumentParser:
    """The argument parser of ``python -m data_prep.<module>``, with its ``--out-dir`` option
    (where the Kaldi dirs go, default ``data``)."""
    ap = argparse.ArgumentParser(prog=f"python -m data_prep.{module}", description=description)
    ap.add_argument("--out-dir", default="data", help="where the Kaldi dirs go (default: data)")
    return ap


def add_duration_args(
    ap: argparse.ArgumentParser, *, max_duration: float, min_duration: float = 0.0
) -> None:
    """Add ``--min-duration`` and ``--max-duration`` (seconds, floats) with these defaults."""
    ap.add_argument(
        "--min-duration",
        type=float,
        default=min_duration,
        help=f"seconds (default: {min_duration:g})",
    )
    ap.add_argument(
        "--max-duration",
        type=float,
        default=max_duration,
        help=f"seconds (default: {max_duration:g})",
    )


def preparer_kwargs(args: argparse.Namespace, *, drop: Sequence[str] = ()) -> dict[str, Any]:
    """The parsed options as keyword arguments of a ``prepare_<corpus>`` function.

    Every option's ``dest`` must be the name of a parameter of the preparer (``--corpus-dir``
    -> ``corpus_dir``); options that are not, such as ``--check``, are named in ``drop``.

    Returns:
        A new dict ``dest -> value`` without the ``drop`` keys.
    """
    return {k: v for k, v in vars(args).items() if k not in drop}


def run_preparer(prepare: Callable[[], PrepReport], *, report_json: str | None = None) -> int:
    """The end of every ``python -m data_prep.<corpus>``: run, print, give an exit code.

    Args:
        prepare: calls the preparer with the parsed arguments.
        report_json: also write the report there (:meth:`PrepReport.write_json`).

    Returns:
        ``0`` after printing the summary; ``1`` after printing ``error: <message>`` to stderr
        when the preparer raised a :class:`~speechx.errors.SpeechxError`.
    """
    try:
        report = prepare()
    except SpeechxError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if report_json:
        report.write_json(report_json)
    print(report.summary())
    return 0


def get_preparer(name: str) -> Callable[..., PrepReport]:
    """The ``prepare_<corpus>`` function registered under ``name``.

    Raises:
        KeyError: ``name`` is not in :data:`PREPARERS` (the known names are listed).
    """
    if name not in PREPARERS:
        raise KeyError(f"unknown corpus {name!r}; known: {', '.join(sorted(PREPARERS))}")
    module, func = PREPARERS[name]
    return getattr(importlib.import_module(module), func)


__all__ = [
    "PREPARERS",
    "CorpusWarning",
    "PrepReport",
    "SkipLog",
    "add_duration_args",
    "existing_duration",
    "get_preparer",
    "parse_list",
    "prep_parser",
    "preparer_kwargs",
    "ratios_arg",
    "run_preparer",
    "safe_id",
]
