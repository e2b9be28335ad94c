"""CoVoST 2: Common Voice clips with translations, 21 languages into English and English into 15.

CoVoST 2 ships only text: ``covost_v2.<src>_<tgt>.tsv`` (from ``covost_v2.<src>_<tgt>.tsv.tar.gz``)
with the columns ``path sentence translation split``, where ``split`` is ``train``,
``train_covost`` (extra training clips), ``dev`` or ``test``.  The audio is Common Voice 4's
``<src>/clips/*.mp3``, and the speaker (``client_id``) comes from Common Voice's
``<src>/validated.tsv``, joined on ``path`` exactly as the official ``get_covost_splits.py``
does.  The per-split files that script writes, ``covost_v2.<src>_<tgt>.{train,dev,test}.tsv``
(``path sentence translation client_id``), are read as well and need no join.  Both are
written by pandas with ``escapechar="\\"`` and no quoting, and are read the same way.

:func:`prepare_covost2` writes ``<out>/covost2_<src>_<split>`` Kaldi dirs (``train`` =
``train`` + ``train_covost``) with ``text`` (the transcript), ``text.<tgt>`` (the translation
into every requested target), ``utt2lang`` (the source language), ``utt2sent`` (the source
sentence: the id of :func:`data_prep.commonvoice.sentence_id`, shared with the
``commonvoice`` dirs of the same locale), ``utt2spk``, ``utt2dur`` and 16 kHz WAVs (or, with
``--audio-format source``, the MP3 clips themselves).

Mapping of the shared recipe options: ``--speech-langs`` are source languages (Common Voice
locales: ``fr de ... en``), ``--text-langs`` the languages whose text is written: a target
``t`` of source ``s`` is read from ``covost_v2.<s>_<t>.tsv``, and ``s`` itself gives
``text.<s>`` (the transcript).  X->en is ``--speech-langs fr de --text-langs en``; en->X is
``--speech-langs en --text-langs de ja ...``, and an English clip then carries every target.

Where files are looked for: ``--corpus-dir`` is the Common Voice release root (holding
``<src>/clips``) or the one source-locale directory; the CoVoST TSVs are looked for in
``--covost-dir`` if given, else in the locale directory and in the corpus directory.

Run ``python -m data_prep.covost2 --help``; ``--check`` only reports what is missing.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from data_prep import (
    PrepReport,
    SkipLog,
    parse_list,
    prep_parser,
    preparer_kwargs,
    run_preparer,
    safe_id,
)
from data_prep.commonvoice import (
    NOT_KWARGS,
    REQUIRED_COLUMNS,
    CommonVoiceError,
    Utterance,
    add_common_args,
    find_locales,
    normalise_sentence,
    read_tsv,
    resolve_clip,
    run_check,
    sentence_id,
    speaker_id,
    write_dirs,
    write_sentence_table,
)

#: Sources translated into English, and English targets, of CoVoST 2.
XX_EN: tuple[str, ...] = (
    "fr", "de", "es", "ca", "it", "ru", "zh-CN", "pt", "fa", "et", "mn",
    "nl", "tr", "ar", "sv-SE", "lv", "sl", "ta", "ja", "id", "cy",
)  # fmt: skip
EN_XX: tuple[str, ...] = (
    "de", "tr", "fa", "sv-SE", "mn", "zh-CN", "cy", "ca", "sl", "et", "id", "ar", "ta", "lv", "ja",
)  # fmt: skip
SPLITS: tuple[str, ...] = ("train", "dev", "test")
#: the released TSV's ``split`` value -> speechx split (v2: ``train_covost`` is training data)
SPLIT_VALUES: dict[str, str] = {
    "train": "train",
    "train_covost": "train",
    "dev": "dev",
    "test": "test",
}
ESCAPE = "\\"

REPORT_JSON = "local/covost2_prep.json"
SKIPPED_TSV = "local/covost2_skipped.tsv"
SENTENCES_TSV = "local/covost2_sentences.tsv"


class CoVoSTError(CommonVoiceError):
    """A CoVoST 2 copy that cannot be found or read (the message names the path)."""


def is_covost_pair(src: str, tgt: str) -> bool:
    """True when CoVoST 2 publishes translations from ``src`` into ``tgt``."""
    return (tgt == "en" and src in XX_EN) or (src == "en" and tgt in EN_XX)


@dataclass(frozen=True)
class PairFiles:
    """The TSV(s) of one language pair: the released file, or the three per-split files."""

    src: str
    tgt: str
    released: Path | None = None
    per_split: dict[str, Path] = field(default_factory=dict)

    @property
    def paths(self) -> list[Path]:
        return [self.released] if self.released else list(self.per_split.values())


def _search_dirs(
    corpus_dir: Path, locale_dir: Path, covost_dir: str | os.PathLike | None
) -> list[Path]:
    if covost_dir is not None:
        return [Path(covost_dir)]
    return list(dict.fromkeys([locale_dir, corpus_dir]))


def find_pair(src: str, tgt: str, dirs: Sequence[Path]) -> PairFiles | None:
    """The TSVs of ``src``->``tgt`` in the first of ``dirs`` that has them (the released
    file first, then a complete set of per-split files), or None."""
    stem = f"covost_v2.{src}_{tgt}"
    for d in dirs:
        if (d / f"{stem}.tsv").is_file():
            return PairFiles(src, tgt, released=d / f"{stem}.tsv")
        per = {s: d / f"{stem}.{s}.tsv" for s in SPLITS}
        if all(p.is_file() for p in per.values()):
            return PairFiles(src, tgt, per_split=per)
    return None


def _targets(src: str, text_langs: Sequence[str] | None, dirs: Sequence[Path]) -> list[str]:
    """The targets to look for: requested ones that CoVoST publishes (or that are on disk),
    or, without a request, every target with a TSV on disk."""
    if text_langs is not None:
        return [
            t
            for t in text_langs
            if t != src and (is_covost_pair(src, t) or find_pair(src, t, dirs))
        ]
    found: list[str] = []
    for d in dirs:
        if d.is_dir():
            for p in sorted(d.glob(f"covost_v2.{src}_*.tsv")):
                tgt = p.name[len(f"covost_v2.{src}_") :].split(".")[0]
                if tgt and tgt not in found:
                    found.append(tgt)
    return found


def _discover_sources(corpus_dir: Path, covost_dir: str | os.PathLike | None) -> list[str]:
    dirs = [Path(covost_dir)] if covost_dir else [corpus_dir, *corpus_dir.iterdir()]
    srcs: list[str] = []
    for d in dirs:
        if d.is_dir():
            for p in sorted(d.glob("covost_v2.*_*.tsv")):
                src = p.name[len("covost_v2.") :].split("_")[0]
                if src not in srcs:
                    srcs.append(src)
    return srcs


def plan_covost2(
    corpus_dir: str | os.PathLike,
    speech_langs: Sequence[str] | None,
    text_langs: Sequence[str] | None,
    covost_dir: str | os.PathLike | None = None,
) -> tuple[dict[str, Path], dict[str, list[PairFiles]], list[str]]:
    """Locate everything a preparation needs.

    Returns:
        ``(locale dirs, pairs per source, problems)``: each problem names a missing file or
        directory and where it was looked for.

    Raises:
        CoVoSTError: ``corpus_dir`` does not exist.
    """
    root = Path(corpus_dir)
    if not root.is_dir():
        raise CoVoSTError(f"{root}: Common Voice corpus directory (CoVoST 2 audio) not found")
    srcs = list(speech_langs) if speech_langs else _discover_sources(root, covost_dir)
    problems: list[str] = []
    if not srcs:
        problems.append(
            f"covost2: no covost_v2.<src>_<tgt>.tsv found in {covost_dir or root} or its "
            "locale directories; give --speech-langs and --covost-dir"
        )
        return {}, {}, problems
    try:
        locales = find_locales(root, srcs)
    except CommonVoiceError as exc:
        return {}, {}, [str(exc)]
    pairs: dict[str, list[PairFiles]] = {}
    for src, d in locales.items():
        dirs = _search_dirs(root, d, covost_dir)
        if not (d / "clips").is_dir():
            problems.append(f"covost2 {src}: clips directory {d / 'clips'} not found")
        targets = _targets(src, text_langs, dirs)
        if not targets:
            want = ", ".join(t for t in (text_langs or []) if t != src) or "any language"
            problems.append(
                f"covost2 {src}: CoVoST 2 has no translation from {src} into {want}; it "
                f"translates {', '.join(XX_EN)} into en, and en into {', '.join(EN_XX)}"
            )
            continue
        found = []
        for tgt in targets:
            pf = find_pair(src, tgt, dirs)
            if pf is None:
                looked = ", ".join(str(x / f"covost_v2.{src}_{tgt}.tsv") for x in dirs)
                problems.append(
                    f"covost2 {src}->{tgt}: translation TSV not found (looked for {looked})"
                )
                continue
            found.append(pf)
            if pf.released is not None and not (d / "validated.tsv").is_file():
                problems.append(
                    f"covost2 {src}: {d / 'validated.tsv'} not found (the speakers of "
                    f"{pf.released.name} come from Common Voice's validated.tsv)"
                )
        pairs[src] = found
    return locales, pairs, list(dict.fromkeys(problems))


def check_covost2(
    corpus_dir: str | os.PathLike | None,
    speech_langs: Sequence[str] | None = None,
    text_langs: Sequence[str] | None = None,
    *,
    covost_dir: str | os.PathLike | None = None,
) -> list[str]:
    """What :func:`prepare_covost2` would miss, without reading any audio.

    Returns:
        One line per problem naming the file or directory and where it was looked for (an
        empty list: ready to prepare).
    """
    if corpus_dir is None or str(corpus_dir) == "":
        return ["covost2: no corpus directory given (--corpus-dir: the Common Voice 4 release)"]
    try:
        _, _, problems = plan_covost2(
            corpus_dir, parse_list(speech_langs), parse_list(text_langs), covost_dir
        )
    except CoVoSTError as exc:
        return [str(exc)]
    return problems


@dataclass
class _Clip:
    split: str
    sentence: str
    client_id: str
    where: str
    translations: dict[str, str] = field(default_factory=dict)


def _read_pair(
    pf: PairFiles,
    locale_dir: Path,
    cv_rows: dict[str, tuple[str, str]] | None,
    clips: dict[str, _Clip],
    log: SkipLog,
    report: PrepReport,
) -> None:
    """Merge the rows of one pair into ``clips`` (path -> clip), logging skipped rows."""
    if pf.released is not None:
        sources = [(pf.released, None)]
        required: tuple[str, ...] = ("path", "translation", "split")
    else:
        sources = [(p, s) for s, p in pf.per_split.items()]
        required = ("path", "sentence", "translation", "client_id")
    for path, fixed_split in sources:
        table = read_tsv(path, required=required, escapechar=ESCAPE, unquote=(), int_columns=())
        for lineno, detail in table.malformed:
            log.skip(f"{path.name}:{lineno}", "malformed_row", f"{path}:{lineno}: {detail}")
        seen: set[str] = set()
        for r in table.rows:
            c = r.cells
            where = f"{path.name}:{r.line}"
            key = Path(c["path"].strip()).name
            if not key:
                log.skip(where, "malformed_row", f"{where}: empty path")
                continue
            if key in seen:
                log.skip(where, "duplicate_row", f"{where}: clip {key} listed again")
                continue
            seen.add(key)
            raw_split = fixed_split or c["split"].strip()
            split = SPLIT_VALUES.get(raw_split)
            if split is None:
                report.skip("outside_split")
                continue
            if fixed_split is None:
                assert cv_rows is not None
                cv = cv_rows.get(key)
                if cv is None:
                    log.skip(
                        where,
                        "not_in_validated",
                        f"{where}: clip {key} is not in {locale_dir / 'validated.tsv'}",
                    )
                    continue
                sentence, client = cv
            else:
                sentence, client = c["sentence"], c["client_id"]
            clip = clips.get(key)
            if clip is None:
                clip = clips[key] = _Clip(split, sentence, client, where)
            elif clip.split != split:
                report.extra["split_conflicts"] = report.extra.get("split_conflicts", 0) + 1
            t = normalise_sentence(c["translation"])
            if t:
                clip.translations.setdefault(pf.tgt, t)
            else:
                report.extra["empty_translations"] = report.extra.get("empty_translations", 0) + 1


def prepare_covost2(
    corpus_dir: str | os.PathLike,
    out_dir: str | os.PathLike = "data",
    *,
    speech_langs: Sequence[str] | str | None = None,
    text_langs: Sequence[str] | str | None = None,
    covost_dir: str | os.PathLike | None = None,
    audio_format: str = "wav",
    audio_dir: str | os.PathLike | None = None,
    nj: int = 1,
    overwrite_audio: bool = False,
    max_warnings: int | None = 20,
    verbose: bool = False,
) -> PrepReport:
    """Write ``<out_dir>/covost2_<src>_{train,dev,test}`` Kaldi dirs with ``text.<tgt>``.

    Args:
        corpus_dir: the Common Voice release (root, or the source locale directory).
        out_dir: where the dirs go; ``local/covost2_prep.json``, ``local/covost2_skipped.tsv``
            and ``local/covost2_sentences.tsv`` as well.
        speech_langs: source languages (default: every source with a TSV on disk).
        text_langs: targets to read, and sources whose transcript is also ``text.<src>``
            (default: every target on disk, plus the source).
        covost_dir: where the ``covost_v2.*.tsv`` files are (default: the locale directory,
            then ``corpus_dir``).
        audio_format, audio_dir, nj, overwrite_audio: as in
            :func:`data_prep.commonvoice.prepare_commonvoice` (WAVs go to
            ``<out_dir>/covost2_wav`` by default).
        max_warnings: warnings per skip reason (the skipped TSV lists every one).
        verbose: print the summary.

    Returns:
        A :class:`PrepReport`; ``skipped`` counts ``malformed_row``, ``duplicate_row``,
        ``not_in_validated``, ``outside_split`` (split values other than train, train_covost,
        dev, test), ``empty_sentence``, ``no_translation``, ``sentence_in_eval_split`` (a train
        clip whose sentence is in dev or test), ``missing_clip``, ``unreadable_audio`` and
        ``empty_audio``; ``extra`` has ``pairs``, ``split_conflicts`` (a clip the pairs of
        one source split differently: the first pair's split is kept) and
        ``empty_translations``.

    Raises:
        CoVoSTError: the corpus, a translation TSV, ``validated.tsv`` or a clips directory is
            missing (all of them named, with where they were looked for), or a TSV lacks a
            required column.
    """
    t0 = time.perf_counter()
    out = Path(out_dir)
    tl = parse_list(text_langs)
    locales, pairs, problems = plan_covost2(corpus_dir, parse_list(speech_langs), tl, covost_dir)
    if problems:
        raise CoVoSTError("; ".join(problems))
    report = PrepReport(corpus="covost2", out_dir=str(out))
    log = SkipLog(report, max_warnings=max_warnings)
    sentences: dict[str, tuple[str, dict[str, str]]] = {}
    utts: list[Utterance] = []
    report.extra["pairs"] = [f"{p.src}_{p.tgt}" for ps in pairs.values() for p in ps]
    for src, d in locales.items():
        cv_rows = None
        if any(p.released is not None for p in pairs[src]):
            table = read_tsv(d / "validated.tsv", required=REQUIRED_COLUMNS)
            cv_rows = {
                Path(r.cells["path"].strip()).name: (r.cells["sentence"], r.cells["client_id"])
                for r in table.rows
            }
            # the oldest releases leave ".mp3" off the path; CoVoST's paths have it
            cv_rows.update(
                {f"{k}.mp3": v for k, v in list(cv_rows.items()) if not k.endswith(".mp3")}
            )
        clips: dict[str, _Clip] = {}
        for pf in pairs[src]:
            _read_pair(pf, d, cv_rows, clips, log, report)
        eval_sents = {
            sentence_id(src, c.sentence) for c in clips.values() if c.split in ("dev", "test")
        }
        order = {"dev": 0, "test": 1, "train": 2}
        for key, c in sorted(clips.items(), key=lambda kv: (order[kv[1].split], kv[0])):
            spk = speaker_id(c.client_id)
            utt = f"{spk}-{safe_id(key.removesuffix('.mp3'))}"
            text = normalise_sentence(c.sentence)
            if not text:
                log.skip(utt, "empty_sentence", f"{c.where}: empty sentence for {key}")
                continue
            if not c.translations:
                log.skip(utt, "no_translation", f"{c.where}: no non-empty translation of {key}")
                continue
            sid = sentence_id(src, text)
            if c.split == "train" and sid in eval_sents:
                log.skip(
                    utt, "sentence_in_eval_split", f"{c.where}: sentence {text!r} is in dev/test"
                )
                continue
            clip = resolve_clip(d / "clips", key)
            if clip is None:
                log.skip(utt, "missing_clip", f"{c.where}: {d / 'clips' / key} not found")
                continue
            report.n_sentences += sid not in sentences
            entry = sentences.setdefault(sid, (c.split, {}))[1]
            entry.setdefault(src, text)
            for lang, t in c.translations.items():
                entry.setdefault(lang, t)
            utts.append(Utterance(utt, c.split, src, spk, text, sid, clip, dict(c.translations)))
    write_dirs(
        utts,
        out,
        "covost2",
        report,
        log,
        text_langs=tl,
        audio_dir=Path(audio_dir) if audio_dir is not None else out / "covost2_wav",
        audio_format=audio_format,
        nj=nj,
        overwrite_audio=overwrite_audio,
    )
    langs = list(dict.fromkeys([*locales, *(p.tgt for ps in pairs.values() for p in ps)]))
    write_sentence_table(out / SENTENCES_TSV, sentences, langs)
    log.write(out / SKIPPED_TSV)
    return report.finish(t0, json_path=out / REPORT_JSON, verbose=verbose)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m data_prep.covost2``: parse arguments, run :func:`prepare_covost2`, print."""
    ap = prep_parser(
        "covost2",
        "Prepare CoVoST 2 (covost_v2.<src>_<tgt>.tsv + Common Voice <src>/clips and "
        "validated.tsv) as Kaldi dirs covost2_<src>_<split> with text.<tgt> translations.",
    )
    add_common_args(ap, corpus_help="the Common Voice release root, or the source locale dir")
    ap.add_argument(
        "--covost-dir",
        default=None,
        help="where covost_v2.<src>_<tgt>[.<split>].tsv are (default: the locale dir, then "
        "--corpus-dir)",
    )
    args = ap.parse_args(argv)
    if args.check:
        return run_check(
            check_covost2(
                args.corpus_dir, args.speech_langs, args.text_langs, covost_dir=args.covost_dir
            ),
            "covost2",
        )
    if args.corpus_dir is None:
        ap.error("--corpus-dir is required (the Common Voice release with the source clips)")
    return run_preparer(lambda: prepare_covost2(**preparer_kwargs(args, drop=NOT_KWARGS)))


if __name__ == "__main__":
    sys.exit(main())
