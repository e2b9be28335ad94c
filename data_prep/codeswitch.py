"""What the code-switching corpus preparers share: transcript cleaning, language tags, output.

:mod:`data_prep.ascend` and :mod:`data_prep.seame` (real Mandarin–English speech) use all of
it; :mod:`data_prep.synth_codeswitch` (synthetic pairs such as ``nl-en``) uses the
``text.langtags`` check.

* :class:`CleanConfig` / :func:`clean_transcript`: a raw corpus transcript becomes ``text``
  (NFKC, non-speech markers removed, punctuation to spaces, Latin lower-cased);
  :func:`add_clean_args` gives both corpus CLIs the same options for it.
* :func:`token_langtags`: one tag per MER token (:func:`speechx.metrics.asr.mixed_tokens`): a
  CJK character is ``zh``, a token with another letter ``en``, and a token without letters
  takes the tag of its neighbours.
* :class:`CodeSwitchSplits`: the ``<corpus>_zh-en_<split>`` dirs of one run (one
  :class:`CodeSwitchDir` each), filled an utterance at a time with its corpus label, and
  written with ``text.langtags`` and ``utt2lang.corpus``; it also keeps the tallies the
  report carries and writes the run's skipped TSV and report JSON.
* :func:`write_langtags` and :func:`check_langtags`: write or re-read ``text.langtags``, with
  the tag count checked by :func:`speechx.metrics.codeswitch.check_tag_counts`, the check the
  code-switching evaluator applies when it reads the dir.
"""

from __future__ import annotations

import argparse
import os
import re
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from data_prep import PrepReport, SkipLog
from speechx.data.kaldi import KaldiDir, Segment, read_mapping, write_mapping
from speechx.errors import DataDirError, MetricError
from speechx.metrics.asr import is_cjk, mixed_tokens
from speechx.metrics.codeswitch import check_tag_counts

ZH, EN = "zh", "en"
MIXED = "zh-en"

LANGTAGS_FILE = "text.langtags"
CORPUS_LANG_FILE = "utt2lang.corpus"
#: ``utt2lang="pair"``: ``zh-en`` for every utterance; ``"label"``: the corpus label
UTT2LANG_MODES: tuple[str, ...] = ("pair", "label")


class LangtagsError(DataDirError):
    """A ``text.langtags`` file that does not fit the ``text`` of its data dir."""


# --------------------------------------------------------------------------- text cleaning
#: Bracketed non-speech markers of ASCEND and SEAME, removed whole: ``[UNK]``, ``[noise]``,
#: ``<unk>``, ``< unk >``, ``<v-noise>``, ``(ppl)``/``(ppc)``/``(ppb)``/``(ppo)`` ...
DEFAULT_MARKERS: tuple[str, ...] = (
    r"\[[^\[\]]*\]",
    r"<[^<>]*>",
    r"\(\s*pp[a-z]*\s*\)",
)
#: Bare marker words removed after the bracketed ones (SEAME writes paralinguistics unbracketed
#: too): ``ppl`` laughter, ``ppc`` cough, ``ppb`` breath, ``ppo`` other.
DEFAULT_MARKER_WORDS: tuple[str, ...] = ("ppl", "ppc", "ppb", "ppo")
#: Hesitations dropped when ``CleanConfig.drop_fillers`` is set.
DEFAULT_FILLERS: tuple[str, ...] = ("嗯", "呃", "啊", "哦", "um", "uh", "uhm", "erm", "hmm", "mm")

_APOSTROPHES = "'\u2019\u2018\u02bc"


@dataclass(frozen=True)
class CleanConfig:
    """How a raw corpus transcript becomes the ``text`` of a data dir.

    Attributes:
        nfkc: apply Unicode NFKC first (full-width ``ｏｋ`` / ``１２`` become ``ok`` / ``12``).
        markers: regular expressions (case-insensitive) of markup removed whole.
        marker_words: whitespace-separated words removed whole (case-insensitive).
        strip_punctuation: replace Unicode punctuation by a space; apostrophes between letters
            are kept (as ``'``).  Brackets that survive the markers (``(um)``) only lose the
            bracket characters.
        lowercase: lower-case the text (only cased scripts change).
        drop_fillers: also remove the hesitation words in ``fillers``.
        fillers: the hesitation words (whole words, or single CJK characters).
    """

    nfkc: bool = True
    markers: tuple[str, ...] = DEFAULT_MARKERS
    marker_words: tuple[str, ...] = DEFAULT_MARKER_WORDS
    strip_punctuation: bool = True
    lowercase: bool = True
    drop_fillers: bool = False
    fillers: tuple[str, ...] = DEFAULT_FILLERS

    def settings(self) -> dict[str, Any]:
        """A JSON-ready description, recorded in the preparation report."""
        return {
            "nfkc": self.nfkc,
            "markers": list(self.markers),
            "marker_words": list(self.marker_words),
            "strip_punctuation": self.strip_punctuation,
            "lowercase": self.lowercase,
            "drop_fillers": self.drop_fillers,
            "fillers": list(self.fillers) if self.drop_fillers else [],
        }


def _strip_punct(text: str) -> str:
    out: list[str] = []
    n = len(text)
    for i, ch in enumerate(text):
        if ch in _APOSTROPHES:
            prev_ok = i > 0 and text[i - 1].isalpha()
            next_ok = i + 1 < n and text[i + 1].isalpha()
            out.append("'" if prev_ok and next_ok else " ")
        elif unicodedata.category(ch).startswith("P"):
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def clean_transcript(text: str, config: CleanConfig | None = None) -> str:
    """Normalise a raw transcript as described by ``config`` (default :class:`CleanConfig`).

    Returns:
        The cleaned text with single spaces and no leading/trailing blanks; ``""`` when
        nothing but markers and punctuation was there.

    Example:
        >>> clean_transcript("我 觉得 [UNK] ＯＫ, (ppl) that's <noise> fine!")
        "我 觉得 ok that's fine"
    """
    cfg = config or CleanConfig()
    s = unicodedata.normalize("NFKC", text) if cfg.nfkc else text
    for pattern in cfg.markers:
        s = re.sub(pattern, " ", s, flags=re.IGNORECASE)
    if cfg.marker_words:
        drop = {w.lower() for w in cfg.marker_words}
        s = " ".join(w for w in s.split() if w.lower() not in drop)
    if cfg.strip_punctuation:
        s = _strip_punct(s)
    if cfg.lowercase:
        s = s.lower()
    words = s.split()
    if cfg.drop_fillers:
        # whole words only: a filler glued to other characters ("嗯对") is left alone
        fillers = {f.lower() for f in cfg.fillers}
        words = [w for w in words if w.lower() not in fillers]
    return " ".join(words)


def add_clean_args(ap: argparse.ArgumentParser, *, drop_fillers: bool = False) -> None:
    """Add the options of the Mandarin–English corpus CLIs: ``--utt2lang``, ``--keep-case``
    and, with ``drop_fillers``, ``--drop-fillers``.

    Read them back with :func:`clean_config_from_args` and ``args.utt2lang``.
    """
    ap.add_argument(
        "--utt2lang",
        default="pair",
        choices=UTT2LANG_MODES,
        help="utt2lang: the pair zh-en for all (default) or the corpus label",
    )
    ap.add_argument("--keep-case", action="store_true", help="do not lower-case transcripts")
    if drop_fillers:
        ap.add_argument(
            "--drop-fillers", action="store_true", help="remove hesitations (嗯 呃 um uh ...)"
        )


def clean_config_from_args(args: argparse.Namespace) -> CleanConfig:
    """The :class:`CleanConfig` asked for by the options of :func:`add_clean_args`."""
    return CleanConfig(
        lowercase=not args.keep_case, drop_fillers=getattr(args, "drop_fillers", False)
    )


# --------------------------------------------------------------------------- language tags
def _token_script(token: str) -> str | None:
    """``zh`` for a CJK character, ``en`` for a token with a letter, ``None`` otherwise."""
    if len(token) == 1 and is_cjk(token):
        return ZH
    if any(ch.isalpha() for ch in token):
        return EN
    return None


def token_langtags(text: str, fallback: str = EN) -> list[str]:
    """One language tag per MER token of ``text`` (``speechx.metrics.asr.mixed_tokens``).

    A CJK character is ``zh``; a token holding any other letter is ``en``.  A token without a
    letter (``"3"``, ``"%"``) takes the tag of the nearest tagged token before it, or, at the
    start of the text, the nearest one after it; with no tagged token at all it gets
    ``fallback``.

    Example:
        >>> token_langtags("我 有 3 个 apple")
        ['zh', 'zh', 'zh', 'zh', 'en']
    """
    scripts = [_token_script(t) for t in mixed_tokens(text)]
    tags: list[str] = []
    last: str | None = None
    for s in scripts:
        last = s or last
        tags.append(last or "")
    nxt: str | None = None
    for i in range(len(tags) - 1, -1, -1):
        if scripts[i] is not None:
            nxt = scripts[i]
        if not tags[i]:
            tags[i] = nxt or fallback
    return tags


def count_context_tags(text: str) -> int:
    """How many MER tokens of ``text`` have no letter and are tagged by their context."""
    return sum(_token_script(t) is None for t in mixed_tokens(text))


def language_of_tags(tags: Sequence[str]) -> str:
    """``zh``, ``en`` or ``zh-en`` (both present) for a tag sequence; ``""`` for no tags."""
    present = set(tags)
    if ZH in present and EN in present:
        return MIXED
    if present:
        return next(iter(present))
    return ""


def utterance_language(label: str | None, tags: Sequence[str], labels: Mapping[str, str]) -> str:
    """The corpus label mapped by ``labels`` (``zh``/``en``/``zh-en``), else the tags' language."""
    if label is not None:
        mapped = labels.get(label.strip().lower()) or labels.get(label.strip())
        if mapped:
            return mapped
    return language_of_tags(tags) or EN


# --------------------------------------------------------------------------- text.langtags
def write_langtags(
    path: str | os.PathLike, kdir: KaldiDir, langtags: Mapping[str, Sequence[str]]
) -> Path:
    """Write ``text.langtags`` (``utt-id tag tag ...``) next to an already written data dir.

    Call it *after* :meth:`KaldiDir.write`, which removes a ``text.langtags`` it has no
    mapping for.

    Returns:
        The path of the file written.

    Raises:
        DataDirError: an utterance has no tags, or its tag count differs from the number of
            MER tokens of its ``text`` (the file and the utterance are named).
    """
    p = Path(path) / LANGTAGS_FILE
    refs = {utt: kdir.text.get(utt, "") for utt in kdir.utt_ids}
    try:
        check_tag_counts(refs, langtags)
    except MetricError as exc:
        raise DataDirError(f"{p}: {exc}") from None
    write_mapping(p, [(utt, " ".join(langtags[utt])) for utt in refs])
    return p


def check_langtags(data_dir: str | os.PathLike) -> int:
    """Check that ``text.langtags`` has exactly one tag per MER token of ``text``.

    Returns:
        The number of utterances checked.

    Raises:
        LangtagsError: a file is missing, an utterance of ``text`` has no tags (or the reverse),
            or the counts differ (the file, utterance and both counts are named).
    """
    d = Path(data_dir)
    tags_path, text_path = d / LANGTAGS_FILE, d / "text"
    for p in (tags_path, text_path):
        if not p.is_file():
            raise LangtagsError(f"{p}: missing")
    tags, text = read_mapping(tags_path), read_mapping(text_path, allow_empty=True)
    for utt in sorted(set(tags) ^ set(text)):
        where = text_path if utt in text else tags_path
        raise LangtagsError(f"{tags_path}: utterance {utt!r} is only in {where.name}")
    try:
        return check_tag_counts(text, {u: t.split() for u, t in tags.items()})
    except MetricError as exc:
        raise LangtagsError(f"{tags_path}: {exc}") from None


# --------------------------------------------------------------------------- output dirs
@dataclass
class CodeSwitchDir:
    """One output Kaldi dir under construction, with its language tags.

    Attributes:
        utt2lang_mode: ``"pair"`` (``utt2lang`` is ``zh-en`` for every utterance) or
            ``"label"`` (``utt2lang`` is the corpus label, ``zh``/``en`` when monolingual).
        corpus_lang: utterance -> corpus label, written as ``utt2lang.corpus``.
    """

    kdir: KaldiDir = field(default_factory=KaldiDir)
    langtags: dict[str, list[str]] = field(default_factory=dict)
    utt2lang_mode: str = "pair"
    corpus_lang: dict[str, str] = field(default_factory=dict)

    def add(
        self, utt: str, *, text: str, speaker: str, lang: str, duration: float, tags: list[str]
    ) -> None:
        """Record one utterance; ``lang`` is its corpus label (``zh``, ``en``, ``zh-en``).

        ``wav.scp`` and ``segments`` are filled by the caller.
        """
        kd = self.kdir
        kd.text[utt] = text
        kd.utt2spk[utt] = speaker
        kd.utt2lang[utt] = MIXED if self.utt2lang_mode == "pair" else lang
        self.corpus_lang[utt] = lang
        kd.utt2dur[utt] = round(duration, 3)
        kd.utt2sent[utt] = utt
        self.langtags[utt] = tags

    def write(self, path: str | os.PathLike) -> Path:
        """Write the Kaldi files and ``text.langtags``; returns the directory."""
        d = self.kdir.write(path)
        write_langtags(d, self.kdir, self.langtags)
        write_mapping(d / CORPUS_LANG_FILE, sorted(self.corpus_lang.items()))
        return d


@dataclass
class CodeSwitchSplits:
    """The ``<prefix>_<split>`` dirs of one code-switching corpus run, and what tagging found.

    Attributes:
        prefix: dir name before the split, e.g. ``ascend_zh-en``.
        labels: the corpus's language label (lower-cased) -> ``zh``, ``en`` or ``zh-en``.
        utt2lang_mode: see :class:`CodeSwitchDir`.
        by_split: split -> its dir under construction (created on first use).
        corpus_lang: utterances per corpus label (or per tag language when unlabelled).
        tokens_tagged_by_context: MER tokens without a letter, tagged by their neighbours.
        label_tag_disagreements: utterances whose label differs from what their tags say.
        seconds: audio added, in seconds.
    """

    prefix: str
    labels: Mapping[str, str]
    utt2lang_mode: str = "pair"
    by_split: dict[str, CodeSwitchDir] = field(default_factory=dict)
    corpus_lang: Counter = field(default_factory=Counter)
    tokens_tagged_by_context: int = 0
    label_tag_disagreements: int = 0
    seconds: float = 0.0

    def for_split(self, split: str) -> CodeSwitchDir:
        """The dir of ``split`` (an empty one the first time)."""
        if split not in self.by_split:
            self.by_split[split] = CodeSwitchDir(utt2lang_mode=self.utt2lang_mode)
        return self.by_split[split]

    def add(
        self,
        split: str,
        utt: str,
        *,
        text: str,
        speaker: str,
        label: str | None,
        duration: float,
        wav: str,
        segment: Segment | None = None,
    ) -> None:
        """Tag a cleaned transcript and add its utterance to ``split``.

        Args:
            label: the corpus's language label of the utterance (``None`` when it has none);
                a monolingual label is the tag of tokens that nothing else decides.
            wav: the ``wav.scp`` entry: of the utterance, or of the recording of ``segment``.
            segment: where the utterance lies in its recording (then ``wav.scp`` is keyed by
                the recording id).
        """
        mapped = self.labels.get((label or "").strip().lower())
        tags = token_langtags(text, fallback=mapped if mapped in (ZH, EN) else EN)
        lang = utterance_language(label, tags, self.labels)
        if mapped and mapped != language_of_tags(tags):
            self.label_tag_disagreements += 1
        self.tokens_tagged_by_context += count_context_tags(text)
        cs = self.for_split(split)
        if segment is None:
            cs.kdir.wav_scp[utt] = wav
        else:
            cs.kdir.wav_scp[segment.recording_id] = wav
            cs.kdir.segments[utt] = segment
        cs.add(utt, text=text, speaker=speaker, lang=lang, duration=duration, tags=tags)
        self.corpus_lang[lang] += 1
        self.seconds += duration

    def write(self, out_dir: str | os.PathLike, report: PrepReport) -> None:
        """Write every non-empty dir under ``out_dir`` and count them into ``report``.

        ``report.dirs`` gets the dirs written, ``report.splits`` every split (``0`` for an
        empty one), ``report.used`` and ``report.hours`` grow by what was added.
        """
        for split, cs in self.by_split.items():
            name = f"{self.prefix}_{split}"
            if len(cs.kdir):
                cs.write(Path(out_dir) / name)
                report.dirs[name] = len(cs.kdir)
            report.splits[split] = len(cs.kdir)
            report.used += len(cs.kdir)
        report.hours += self.seconds / 3600.0

    def finish(
        self,
        out_dir: str | os.PathLike,
        report: PrepReport,
        log: SkipLog,
        *,
        started: float,
        clean: CleanConfig,
        extra: Mapping[str, Any],
        verbose: bool = False,
    ) -> PrepReport:
        """End a corpus run: :meth:`write` the dirs, then ``local/<corpus>_skipped.tsv`` and
        ``local/<corpus>_prep.json`` under ``out_dir``.

        Args:
            started: the run's ``time.perf_counter()`` at its start.
            clean: recorded as ``extra["clean"]``, first.
            extra: the corpus's own ``extra`` entries, recorded before :meth:`extra`'s.

        Returns:
            ``report``, finished (:meth:`PrepReport.finish`).
        """
        out = Path(out_dir)
        self.write(out, report)
        report.extra.update({"clean": clean.settings(), **extra, **self.extra()})
        log.write(out / "local" / f"{report.corpus}_skipped.tsv")
        json_path = out / "local" / f"{report.corpus}_prep.json"
        return report.finish(started, json_path=json_path, verbose=verbose)

    def extra(self) -> dict[str, Any]:
        """The report's ``extra`` entries of the tagging: ``utt2lang_mode``, ``corpus_lang``,
        ``tokens_tagged_by_context`` and ``label_tag_disagreements``."""
        return {
            "utt2lang_mode": self.utt2lang_mode,
            "corpus_lang": dict(sorted(self.corpus_lang.items())),
            "tokens_tagged_by_context": self.tokens_tagged_by_context,
            "label_tag_disagreements": self.label_tag_disagreements,
        }
