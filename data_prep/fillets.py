"""Fish Fillets NG: voice-acted game dialogue with subtitles in a dozen languages.

The Debian packages ``fillets-ng-data`` and ``fillets-ng-data-nl`` install the game under
``/usr/share/games/fillets-ng``.  Each level ``<level>`` has script files
``script/<level>/[demo_|brief_]dialogs_<lang>.lua`` made of calls

.. code-block:: lua

    dialogId("let-m-divna", "font_small", "What kind of strange ship is that?")
    dialogStr("Wat is dit voor raar schip?")

(the English line is the third argument of ``dialogId``, the translation into ``<lang>`` is the
``dialogStr`` that follows; ``dialogs_en.lua`` has no ``dialogStr``), and the spoken line is
``sound/<level>/<lang>/<id>.ogg``.  Shared jokes live in ``script/share/<prefix>_dialogs_<lang>.lua``
with audio in ``sound/share/<dir>/<lang>/`` (see :data:`SHARE_SOUND_DIRS`).

:func:`prepare_fillets` writes Kaldi dirs ``<out>/fillets_<speech-lang>_<split>`` with ``wav.scp``
(absolute ``.ogg`` paths, 22.05 kHz), ``text`` (the line in the spoken language), ``utt2spk``
(``<lang>-<character>``), ``utt2lang``, ``utt2dur``, ``utt2sent`` and ``text.<lang>`` for every
requested translation language, plus ``<out>/local/fillets_sentences.tsv`` with the split of
*every* script sentence, so that other corpora (``data_prep.synth``) reuse it.

Identical English lines share one sentence id.  The Czech voice pack (``cs``) is reserved for
independent evaluation: nothing named ``cs`` is ever opened, listed or stat-ed.

Run ``python -m data_prep.fillets --help``.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import soundfile as sf

from data_prep import PrepReport, parse_list, prep_parser, ratios_arg, run_preparer, safe_id
from speechx.audio import audio_info
from speechx.data.kaldi import KaldiDir, atomic_write_text
from speechx.data.splits import DEFAULT_SPLIT_NAMES, split_sentences
from speechx.errors import AudioError, SpeechxError

#: Where the Debian packages put the game data; searched in this order after the
#: ``--corpus-dir`` argument and the ``SPEECHX_FILLETS_DIR`` environment variable.
DEFAULT_CORPUS_DIRS: tuple[str, ...] = (
    "/usr/share/games/fillets-ng",
    "/usr/local/share/games/fillets-ng",
)
CORPUS_ENV = "SPEECHX_FILLETS_DIR"

#: Languages that must never be touched (reserved for independent evaluation).
RESERVED_LANGS: frozenset[str] = frozenset({"cs"})

DEFAULT_TEXT_LANGS: tuple[str, ...] = ("en", "nl", "de", "fr", "es", "it", "ru", "pl")

#: ``script/share/<prefix>_dialogs_<lang>.lua`` -> ``sound/share/<dir>/`` (from the game's own
#: ``dialogLoad`` calls); unknown prefixes map to a directory of the same name.
SHARE_SOUND_DIRS: dict[str, str] = {
    "black": "blackjokes",
    "bore": "borejokes",
    "border": "border",
    "shout": "border",
    "intro": "intro",
}

SENTENCES_TSV = "local/fillets_sentences.tsv"
REPORT_JSON = "local/fillets_prep.json"

_LEVEL_FILE = re.compile(r"^(?:(demo|brief)_)?dialogs_([A-Za-z]{2,3}(?:_[A-Za-z]{2})?)\.lua$")
_SHARE_FILE = re.compile(r"^([a-z]+)_dialogs_([A-Za-z]{2,3}(?:_[A-Za-z]{2})?)\.lua$")
_LANG_DIR = re.compile(r"^[a-z]{2,3}(?:_[A-Z]{2})?$")


class FilletsError(SpeechxError, ValueError):
    """The fillets corpus cannot be found or prepared as asked."""


# --------------------------------------------------------------------------- Lua script parsing

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<longcomment>--\[(?P<lceq>=*)\[.*?\](?P=lceq)\])
  | (?P<comment>--[^\n]*)
  | (?P<dq>"(?:[^"\\\n]|\\.)*")
  | (?P<sq>'(?:[^'\\\n]|\\.)*')
  | (?P<long>\[(?P<lseq>=*)\[.*?\](?P=lseq)\])
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<concat>\.\.)
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)

_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    "\n": "\n",
}


def _unescape(body: str) -> str:
    """Decode the escapes of a Lua 5.1 short string body (unknown escapes drop the backslash)."""
    out: list[str] = []
    i, n = 0, len(body)
    while i < n:
        c = body[i]
        if c != "\\" or i + 1 >= n:
            out.append(c)
            i += 1
            continue
        nxt = body[i + 1]
        if nxt.isdigit():
            m = re.match(r"\d{1,3}", body[i + 1 :])
            assert m is not None
            out.append(chr(int(m.group(0)) % 256))
            i += 1 + len(m.group(0))
        else:
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
    return "".join(out)


@dataclass(frozen=True)
class DialogLine:
    """One ``dialogId`` call of a script file, with the ``dialogStr`` that follows it."""

    dialog_id: str
    font: str
    english: str
    translation: str | None
    line: int


def _tokens(src: str) -> list[tuple[str, str, int]]:
    toks: list[tuple[str, str, int]] = []
    line = 1
    for m in _TOKEN.finditer(src):
        kind = m.lastgroup or "other"
        text = m.group(0)
        if kind in ("dq", "sq"):
            toks.append(("str", _unescape(text[1:-1]), line))
        elif kind == "long":
            body = text[len(m.group("lseq")) + 2 : -len(m.group("lseq")) - 2]
            toks.append(("str", body[1:] if body.startswith("\n") else body, line))
        elif kind not in ("ws", "comment", "longcomment", "lceq", "lseq"):
            toks.append((kind, text, line))
        line += text.count("\n")
    return toks


def _call_args(toks: list[tuple[str, str, int]], i: int) -> tuple[list[str | None], int]:
    """Parse the arguments of a call whose name is at ``toks[i]``.

    Returns:
        ``(args, next_index)``; an argument that is not a string literal (or a ``..``
        concatenation of literals) is ``None``.
    """
    if i + 1 < len(toks) and toks[i + 1][0] == "str":  # f"literal" call syntax
        return [toks[i + 1][1]], i + 2
    if i + 1 >= len(toks) or toks[i + 1][1] != "(":
        return [], i + 1
    args: list[str | None] = []
    parts: list[str] | None = []
    depth, j = 0, i + 2
    while j < len(toks):
        kind, text, _ = toks[j]
        if depth == 0 and text in (",", ")"):
            args.append("".join(parts) if parts is not None and parts else None)
            parts = []
            j += 1
            if text == ")":
                break
            continue
        if text == "(":
            depth += 1
        elif text == ")":
            depth -= 1
        if kind == "str" and parts is not None:
            parts.append(text)
        elif kind != "concat":
            parts = None
        j += 1
    if args == [None]:  # f()
        args = []
    return args, j


def parse_dialog_source(src: str, name: str = "<string>") -> list[DialogLine]:
    """Parse the ``dialogId``/``dialogStr`` calls of a fillets Lua script.

    String literals are decoded as Lua 5.1 does (``\\"``, ``\\\\``, ``\\n``, ``\\ddd``, long
    brackets); comments are ignored; calls may span lines.  A ``dialogId`` whose arguments are
    not literals (``dialogId("key"..i, "", "")`` in a loop) is left out.

    Returns:
        One :class:`DialogLine` per literal ``dialogId``, in file order.  ``translation`` is the
        first ``dialogStr`` after it (before the next ``dialogId``), or ``None``.
    """
    del name  # kept for symmetry with parse_dialog_file; the parser itself never fails
    out: list[DialogLine] = []
    toks = _tokens(src)
    current: dict | None = None
    i = 0
    while i < len(toks):
        kind, text, line = toks[i]
        if kind == "name" and text in ("dialogId", "dialogStr"):
            args, i = _call_args(toks, i)
            if text == "dialogId":
                if current is not None:
                    out.append(DialogLine(**current))
                current = None
                if len(args) >= 3 and all(a is not None for a in args[:3]):
                    current = dict(
                        dialog_id=args[0],
                        font=args[1],
                        english=args[2],
                        translation=None,
                        line=line,
                    )
            elif current is not None and current["translation"] is None and args:
                current["translation"] = args[0]
            continue
        i += 1
    if current is not None:
        out.append(DialogLine(**current))
    return out


def parse_dialog_file(path: str | os.PathLike) -> list[DialogLine]:
    """Parse one ``*dialogs_<lang>.lua`` file (see :func:`parse_dialog_source`).

    Raises:
        FilletsError: the file cannot be read or is not UTF-8 (the file is named).
    """
    p = Path(path)
    try:
        src = p.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise FilletsError(f"{p}: cannot read script ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise FilletsError(f"{p}: script is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    return parse_dialog_source(src, str(p))


# --------------------------------------------------------------------------- corpus model


@dataclass
class DialogEntry:
    """A dialog id of one sound group, merged over the language files."""

    group: str
    dialog_id: str
    english: str
    translations: dict[str, str] = field(default_factory=dict)

    def text(self, lang: str) -> str | None:
        """The line in ``lang`` (the English line for ``en``), or None when untranslated."""
        t = self.english if lang == "en" else self.translations.get(lang)
        t = " ".join((t or "").split())
        return t or None


def sentence_id(english: str) -> str:
    """The sentence id of an English line: ``fs-`` + 12 hex digits of its blake2b hash.

    Lines are compared after collapsing whitespace, so identical lines share an id.
    """
    norm = " ".join(english.split())
    return "fs-" + hashlib.blake2b(norm.encode("utf-8"), digest_size=6).hexdigest()


def find_corpus_dir(corpus_dir: str | os.PathLike | None = None) -> Path:
    """Locate the game data: ``corpus_dir``, else ``$SPEECHX_FILLETS_DIR``, else the defaults.

    Returns:
        A directory that has ``script/`` and ``sound/``.

    Raises:
        FilletsError: none of the places holds the data; every place looked at is named.
    """
    if corpus_dir is not None:
        candidates = [Path(corpus_dir)]
    else:
        env = os.environ.get(CORPUS_ENV)
        candidates = ([Path(env)] if env else []) + [Path(d) for d in DEFAULT_CORPUS_DIRS]
    for c in candidates:
        if (c / "script").is_dir() and (c / "sound").is_dir():
            return c
    looked = ", ".join(str(c) for c in candidates)
    raise FilletsError(
        f"Fish Fillets NG data not found (looked for script/ and sound/ in: {looked}); install "
        "the Debian packages fillets-ng-data and fillets-ng-data-nl, or pass --corpus-dir "
        f"(or set {CORPUS_ENV})"
    )


def _script_files(corpus: Path, langs: set[str]) -> list[tuple[str, str, int, Path]]:
    """``(group, lang, priority, path)`` for every dialog script of a wanted language.

    The group is the sound directory relative to ``sound/``; reserved languages are filtered
    out by file name before the file is touched.
    """
    out: list[tuple[str, str, int, Path]] = []
    for level in sorted(os.scandir(corpus / "script"), key=lambda e: e.name):
        if level.name in RESERVED_LANGS or not level.is_dir():
            continue
        for name in sorted(os.listdir(level.path)):
            if level.name == "share":
                m = _SHARE_FILE.match(name)
                if not m:
                    continue
                prefix, lang = m.groups()
                group = "share/" + SHARE_SOUND_DIRS.get(prefix, prefix)
                priority = 0
            else:
                m = _LEVEL_FILE.match(name)
                if not m:
                    continue
                kind, lang = m.groups()
                group = level.name
                priority = {None: 0, "demo": 1, "brief": 2}[kind]
            if lang in RESERVED_LANGS or lang not in langs:
                continue
            out.append((group, lang, priority, Path(level.path) / name))
    return out


def read_corpus_scripts(
    corpus_dir: str | os.PathLike, langs: Iterable[str], report: PrepReport | None = None
) -> dict[str, dict[str, DialogEntry]]:
    """Read every dialog script of ``langs`` (English is always read).

    Returns:
        ``{group: {dialog_id: DialogEntry}}``, where ``group`` is the sound directory relative
        to ``sound/`` (``"airplane"``, ``"share/blackjokes"``).  The English line of an entry is
        the one of ``dialogs_en.lua`` when that file has the id, else the most common one.

    Raises:
        FilletsError: a script file is unreadable.
    """
    want = (set(langs) | {"en"}) - RESERVED_LANGS
    corpus = Path(corpus_dir)
    english_votes: dict[tuple[str, str], Counter] = {}
    english_en: dict[tuple[str, str], str] = {}
    trans: dict[tuple[str, str], dict[str, str]] = {}
    first_seen: dict[tuple[str, str], tuple[int, int]] = {}
    files = sorted(_script_files(corpus, want), key=lambda r: (r[0], r[2], r[1], str(r[3])))
    for order, (group, lang, priority, path) in enumerate(files):
        for dl in parse_dialog_file(path):
            key = (group, dl.dialog_id)
            first_seen.setdefault(key, (priority, order))
            english_votes.setdefault(key, Counter())[dl.english] += 1
            if lang == "en":
                english_en.setdefault(key, dl.english)
            elif dl.translation is not None:
                trans.setdefault(key, {}).setdefault(lang, dl.translation)
    groups: dict[str, dict[str, DialogEntry]] = {}
    mismatched = 0
    for key in sorted(english_votes, key=lambda k: (k[0], first_seen[k], k[1])):
        votes = english_votes[key]
        english = english_en.get(key) or votes.most_common(1)[0][0]
        if len(votes) > 1:
            mismatched += 1
        groups.setdefault(key[0], {})[key[1]] = DialogEntry(
            key[0], key[1], english, dict(sorted(trans.get(key, {}).items()))
        )
    if report is not None:
        report.extra["script_files"] = len(files)
        report.extra["dialog_ids"] = sum(len(g) for g in groups.values())
        report.extra["ids_with_differing_english_across_files"] = mismatched
    return groups


def sentence_table(
    groups: dict[str, dict[str, DialogEntry]], text_langs: Sequence[str]
) -> dict[str, dict[str, str]]:
    """One row per distinct non-empty English line: ``{sent_id: {lang: text}}``.

    When one sentence has several translations into a language (different levels), the most
    common one is kept, ties going to the first in (group, dialog id) order.
    """
    cands: dict[str, dict[str, Counter]] = {}
    order: dict[tuple[str, str], int] = {}
    for group in sorted(groups):
        for did in sorted(groups[group]):
            e = groups[group][did]
            en = e.text("en")
            if not en:
                continue
            sid = sentence_id(en)
            row = cands.setdefault(sid, {})
            for lang in text_langs:
                t = e.text(lang)
                if t:
                    row.setdefault(lang, Counter())[t] += 1
                    order.setdefault((lang, t), len(order))
    table: dict[str, dict[str, str]] = {}
    for sid in sorted(cands):
        table[sid] = {
            lang: max(c, key=lambda t, lang=lang: (c[t], -order[(lang, t)]))
            for lang, c in cands[sid].items()
        }
    return table


def write_sentences_tsv(
    path: str | os.PathLike,
    table: dict[str, dict[str, str]],
    assignment: dict[str, str],
    text_langs: Sequence[str],
) -> Path:
    """Write ``sent_id<TAB>split<TAB><lang>...`` (header row first, rows sorted by id).

    Tabs and newlines inside a line become spaces; a missing translation is an empty cell.
    """
    rows = ["\t".join(["sent_id", "split", *text_langs])]
    for sid in sorted(table):
        cells = [" ".join(table[sid].get(lang, "").split()) for lang in text_langs]
        rows.append("\t".join([sid, assignment[sid], *cells]))
    p = Path(path)
    atomic_write_text(p, "\n".join(rows) + "\n")
    return p


def _speech_langs_present(corpus: Path, groups: Iterable[str]) -> list[str]:
    found: set[str] = set()
    for group in groups:
        d = corpus / "sound" / group
        if not d.is_dir():
            continue
        with os.scandir(d) as it:
            for entry in it:
                # filter by name first: a reserved directory is never stat-ed or opened
                if entry.name in RESERVED_LANGS or not _LANG_DIR.match(entry.name):
                    continue
                if entry.is_dir():
                    found.add(entry.name)
    return sorted(found)


def _check_clip(path: Path, verify: bool) -> tuple[float | None, str | None]:
    """``(duration, None)`` for a usable clip, ``(None, reason)`` otherwise."""
    try:
        if path.stat().st_size == 0:
            return None, "empty_file"
        info = audio_info(path)
    except AudioError:
        return None, "unreadable"
    except OSError:
        return None, "unreadable"
    if info.num_samples == 0:
        return None, "empty_audio"
    if verify:
        try:
            data, _ = sf.read(str(path), dtype="float32", always_2d=True)
        except Exception:  # libsndfile raises several types for a broken stream
            return None, "undecodable"
        if data.shape[0] == 0:
            return None, "empty_audio"
        return data.shape[0] / info.sample_rate, None
    return info.duration, None


def speaker_of(lang: str, dialog_id: str) -> str:
    """``<lang>-<character>`` from a fillets id like ``zd1-m-tlac`` (``m``: small fish,
    ``v``: big fish, other letters other characters); ids without a middle part give ``x``."""
    parts = dialog_id.split("-")
    char = re.sub(r"[^a-z0-9]", "", parts[1].lower()) if len(parts) >= 3 else ""
    return f"{lang}-{char or 'x'}"


def prepare_fillets(
    corpus_dir: str | os.PathLike | None = None,
    out_dir: str | os.PathLike = "data",
    *,
    speech_langs: Sequence[str] | None = None,
    text_langs: Sequence[str] | None = None,
    ratios: Sequence[float] = (0.8, 0.1, 0.1),
    split_names: Sequence[str] = DEFAULT_SPLIT_NAMES,
    seed: int = 0,
    min_duration: float = 0.2,
    max_duration: float = 30.0,
    verify_audio: bool = True,
    verbose: bool = False,
) -> PrepReport:
    """Write Kaldi dirs ``<out_dir>/fillets_<lang>_<split>`` and the sentence table.

    Args:
        corpus_dir: the game data dir (default: discovered, see :func:`find_corpus_dir`).
        out_dir: where the dirs go; ``<out_dir>/local/`` gets ``fillets_sentences.tsv`` and
            ``fillets_prep.json`` (the report without its timing).
        speech_langs: spoken languages to prepare (default: every voice directory present).
        text_langs: translation languages written as ``text.<lang>`` and as table columns
            (default :data:`DEFAULT_TEXT_LANGS`).
        ratios, split_names, seed: the sentence split (see
            :func:`speechx.data.splits.split_sentences`); it is made over *all* script
            sentences, with or without audio.
        min_duration, max_duration: clips outside this range (seconds) are skipped.
        verify_audio: decode every clip fully (catches truncated streams; a few seconds).
        verbose: print the summary.

    Returns:
        A :class:`PrepReport`; clips left out are counted by reason (``no_script_line``,
        ``no_sentence`` for sound effects with an empty line, ``no_transcript``,
        ``empty_file``, ``unreadable``, ``undecodable``, ``too_short``, ``too_long``).

    Raises:
        FilletsError: the corpus is not found, a reserved language is requested, a script is
            unreadable, or a requested speech language has no audio at all.
    """
    t0 = time.perf_counter()
    corpus = find_corpus_dir(corpus_dir)
    out = Path(out_dir)
    text_langs = parse_list(text_langs) or list(DEFAULT_TEXT_LANGS)
    speech_langs = parse_list(speech_langs)
    reserved = (set(text_langs) | set(speech_langs or [])) & RESERVED_LANGS
    if reserved:
        raise FilletsError(
            f"language(s) {sorted(reserved)} are reserved for independent evaluation and are "
            "never prepared"
        )
    report = PrepReport(corpus="fillets", out_dir=str(out))
    groups = read_corpus_scripts(corpus, set(text_langs) | set(speech_langs or []), report)
    if speech_langs is None:
        speech_langs = _speech_langs_present(corpus, groups)
    if not speech_langs:
        raise FilletsError(f"{corpus / 'sound'}: no voice directories found")

    table = sentence_table(groups, text_langs)
    assignment = split_sentences(table, ratios=ratios, names=split_names, seed=seed)
    report.n_sentences = len(table)
    report.extra["sentences_per_split"] = dict(Counter(assignment[s] for s in sorted(table)))

    kdirs: dict[tuple[str, str], KaldiDir] = {}
    total_seconds = 0.0
    for lang in speech_langs:
        n_lang = 0
        for group in sorted(groups):
            adir = corpus / "sound" / group / lang
            if not adir.is_dir():
                continue
            for name in sorted(os.listdir(adir)):
                if not name.endswith(".ogg"):
                    continue
                path = adir / name
                entry = groups[group].get(name[: -len(".ogg")])
                if entry is None:
                    report.skip("no_script_line")
                    continue
                english = entry.text("en")
                if not english:
                    report.skip("no_sentence")
                    continue
                transcript = entry.text(lang)
                if not transcript:
                    report.skip("no_transcript")
                    continue
                dur, reason = _check_clip(path, verify_audio)
                if reason is None and dur is not None and dur < min_duration:
                    reason = "too_short"
                if reason is None and dur is not None and dur > max_duration:
                    reason = "too_long"
                if reason is not None or dur is None:
                    report.skip(reason or "unreadable")
                    continue
                sid = sentence_id(english)
                split = assignment[sid]
                spk = speaker_of(lang, entry.dialog_id)
                utt = safe_id(f"{spk}-{group.replace('/', '-')}-{entry.dialog_id}")
                kd = kdirs.setdefault((lang, split), KaldiDir())
                kd.wav_scp[utt] = str(path.resolve())
                kd.text[utt] = transcript
                kd.utt2spk[utt] = spk
                kd.utt2lang[utt] = lang
                kd.utt2dur[utt] = round(dur, 3)
                kd.utt2sent[utt] = sid
                for tl in text_langs:
                    t = entry.text(tl)
                    if t:
                        kd.translations.setdefault(tl, {})[utt] = t
                report.used += 1
                n_lang += 1
                total_seconds += dur
        if n_lang == 0 and speech_langs is not None:
            report.extra.setdefault("speech_langs_without_clips", []).append(lang)

    report.splits = {s: 0 for s in split_names}
    for (lang, split), kd in sorted(kdirs.items()):
        name = f"fillets_{lang}_{split}"
        kd.write(out / name)
        report.dirs[name] = len(kd)
        report.splits[split] += len(kd)
    for tl in text_langs:
        have = sum(len(kd.translations.get(tl, {})) for kd in kdirs.values())
        report.coverage[tl] = have / report.used if report.used else 0.0
    report.hours = total_seconds / 3600.0
    write_sentences_tsv(out / SENTENCES_TSV, table, assignment, text_langs)
    return report.finish(t0, json_path=out / REPORT_JSON, verbose=verbose)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m data_prep.fillets``: parse arguments, run :func:`prepare_fillets`, print."""
    ap = prep_parser(
        "fillets",
        "Prepare Fish Fillets NG dialogue as Kaldi dirs fillets_<lang>_<split> "
        "and local/fillets_sentences.tsv (the sentence split reused by data_prep.synth).",
    )
    ap.add_argument(
        "--corpus-dir",
        default=None,
        help=f"game data dir (default: ${CORPUS_ENV}, then {', '.join(DEFAULT_CORPUS_DIRS)})",
    )
    ap.add_argument(
        "--speech-langs",
        nargs="+",
        default=None,
        help="spoken languages, e.g. 'nl en' or 'nl,en' (default: every voice dir present)",
    )
    ap.add_argument(
        "--text-langs",
        nargs="+",
        default=None,
        help=f"translation languages (default: {' '.join(DEFAULT_TEXT_LANGS)})",
    )
    ap.add_argument(
        "--ratios",
        type=ratios_arg,
        default="0.8,0.1,0.1",
        help="train,dev,test fractions (default: 0.8,0.1,0.1)",
    )
    ap.add_argument("--seed", type=int, default=0, help="split seed (default: 0)")
    ap.add_argument("--min-duration", type=float, default=0.2, help="seconds (default: 0.2)")
    ap.add_argument("--max-duration", type=float, default=30.0, help="seconds (default: 30)")
    ap.add_argument(
        "--no-verify-audio",
        action="store_true",
        help="only read headers instead of decoding every clip",
    )
    args = ap.parse_args(argv)
    return run_preparer(
        lambda: prepare_fillets(
            args.corpus_dir,
            args.out_dir,
            speech_langs=args.speech_langs,
            text_langs=args.text_langs,
            ratios=args.ratios,
            seed=args.seed,
            min_duration=args.min_duration,
            max_duration=args.max_duration,
            verify_audio=not args.no_verify_audio,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
