"""Sentence tables from plain text: many more distinct training sentences for ``data_prep.synth``.

espeak-ng speaks any text and the multilingual teacher embeds any text of its languages, so
monolingual text on disk (Debian's ``fortunes``, ``fortunes-de``, Dutch manuals, ...) can become
synthetic training speech.  :func:`prepare_textcorpus` reads it, cuts it into sentences, keeps
the clean ones and writes a *sentence table* (``sent_id<TAB>split<TAB><lang>...``, the format
:func:`data_prep.synth.read_sentence_table` reads) to ``<out_dir>/local/<name>_sentences.tsv``.
Every row is ``split=train`` and has text only in its own language's column; ``data_prep.synth``
speaks a row only in the languages where it has text.

Inputs (``--source LANG:PATH``, repeated): PATH is a file, a directory (every file below it,
recursively) or a glob (the files it matches; ``**`` matches any depth; directories it matches
are ignored).  Symbolic links inside a directory or glob are skipped (Debian links other
languages' fortunes into the English directory) and a file reached twice is read once.  Formats,
recognised by name and content: plain text (blank lines separate paragraphs), fortune files
(entries separated by lines holding only ``%``; their ``.dat`` index files are skipped), HTML and
XHTML (tags stripped with :mod:`html.parser`; ``head``, ``script``, ``style`` and ``pre`` are
left out, and a sentence holding inline ``code``/``kbd``/``samp``/``tt``/``var`` is dropped as
code), any of these gzip-compressed (``.gz``).  Text is decoded as UTF-8, or as latin-1 with a
counted warning.  Binary files, groff sources (man pages) and images, PDFs, scripts and style
sheets are skipped and counted.

Sentences are cut with pysbd (the ``textcorpus`` extra; a language pysbd does not know falls
back to a split after ``.``, ``!`` or ``?`` before an upper-case letter).  A sentence is dropped,
for the first reason that applies (:class:`SentenceFilter`; the report counts each reason per
language):

==================  ==============================================================================
``attribution``     a ``-- Author`` line (also removed from fortune entries before cutting)
``too_short/long``  fewer than 4 or more than 25 words
``url``             a URL, e-mail address, file path or file name (``x.conf``, ``www.``)
``code``            code-like characters or tokens: ``{}<>=_\\|`^~#$%*[]@``, ``--opt``, ``f()``,
                    menu paths (two or more `` - `` separators: ``Kies Extra - Opties - Afdrukken``)
``digits``          any digit (default; ``--digits`` keeps them, espeak reads them per language)
``letters``         under 70% letters among the non-space characters
``shouting``        more than half of the words of 2+ letters are in capitals only
``fragment``        does not start with a capital or does not end in ``. ! ? …`` (``--fragments``)
``wrong_lang``      none of the language's common function words, or more of another language's
                    (:func:`looks_like`; only languages of :data:`FUNCTION_WORDS` are checked;
                    ``--no-lang-check``)
``duplicate``       the same normalised key as an earlier sentence of the language
``leak``            equal, normalised, to a ``text`` / ``text.<lang>`` line of an ``--exclude-dirs``
                    Kaldi dir (the dev and test splits), in any language
==================  ==============================================================================

The normalised key (:func:`normalise_key`) is NFKC, case-folded, punctuation replaced by spaces
and whitespace collapsed.  The leak guard is an exact match of keys: a dev sentence with one
word changed is *not* caught (near-duplicates are not searched for).

``--max-per-lang N`` keeps, per language, the N sentences with the smallest
``blake2b(seed, lang, key)``: a seeded random sample that does not depend on file order.
Sentence ids are ``tc-<12 hex of blake2b(lang, key)>``, stable across runs.  A rerun whose
inputs (the options, the source files' sizes and modification times, the exclude dirs' texts)
are unchanged reuses the table (``extra["reused"]``); ``--force`` rebuilds it.

Run ``python -m data_prep.textcorpus --help``.
"""

from __future__ import annotations

import argparse
import glob
import gzip
import hashlib
import html.parser
import json
import os
import re
import sys
import time
import unicodedata
import warnings
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from data_prep import CorpusWarning, PrepReport, prep_parser, run_preparer
from speechx.data.kaldi import KaldiDir, atomic_write_text
from speechx.errors import SpeechxError

DEFAULT_NAME = "textcorpus"
EXTRA = "textcorpus"  # the pyproject extra that installs pysbd


def _wordset(words: str) -> frozenset[str]:
    return frozenset(words.split())


#: Files never read (index files of fortune, images, documents in other formats, code).
SKIP_SUFFIXES: frozenset[str] = _wordset(
    ".dat .png .gif .jpg .jpeg .svg .ico .bmp .pdf .epub .ods .odt .odg .doc .docx .js .css "
    ".json .map .zip .bz2 .xz .zst .tar .deb .so .pyc .mo .woff .woff2 .ttf"
)
_HTML_SUFFIXES = frozenset({".html", ".htm", ".xhtml", ".xht"})

#: Frequent function words per language: a sentence must hold at least one of its language's
#: and no more of another language's (the ``wrong_lang`` filter; other languages are not checked).
FUNCTION_WORDS: dict[str, frozenset[str]] = {
    lang: frozenset(words.split())
    for lang, words in {
        "en": "the and of to a in is it you that he was for on are with as his they at be this "
        "have from or by not but what all were we when your can there an which their if do will "
        "my one would me has so no i she her him them about who been than then its our should "
        "could how why does did don doesn didn isn aren wasn won",
        "de": "der die und in den von zu das mit sich des auf für ist im dem nicht ein eine als "
        "auch es an werden aus er hat dass daß sie nach wird bei einer um am sind noch wie einem "
        "über einen so zum war haben nur oder aber vor zur bis mehr durch man wenn ich du wir "
        "ihr kann mich dich mir dir nichts doch schon was wer warum weil immer denn ja nein kein "
        "keine sein mein dein",
        "nl": "de het een en van in is dat op te zijn voor met die niet aan er om ook als dan "
        "maar bij of uit nog wordt door naar hij ze zij je jij ik wij we u wat kan worden deze "
        "dit geen heeft hebben meer moet zal zou al wel waar hoe wie omdat mijn jouw uw hun ons "
        "onze waren heb hier daar nu zo tot over kunt wilt werd werden niets iets alle veel "
        "wanneer waarom welke welk dus toch nooit altijd zeer",
        "fr": "le la les de des du un une et est en que qui dans pour pas ne il elle ce cette sur "
        "au aux avec se son sa ses sont par plus on nous vous je tu mais ou comme été être avoir "
        "y leur très tout bien",
        "es": "el la los las de del y que en un una es por con no para se lo su sus al como más "
        "pero este esta son muy yo tú él ella también hay ser está sí qué cuando todo",
        "it": "il lo la i gli le di del della e che è un una per non in con si da al alla come "
        "ma sono ho ha anche più questo questa io tu lui lei noi voi loro perché quando cosa se "
        "mi ti ci uno ne nel nella sul sulla dei delle degli",
        "pt": "o a os as de do da dos das e que em um uma é não para com por se na no mais como "
        "mas foi ao ele ela eu você isso está são muito também",
        "pl": "i w nie na się z do to że jest a o jak co ale po tak za od jego już tylko mnie go "
        "ja ty on ona my wy oni czy był była może jeszcze bardzo przez dla tym ten ta te",
        "ru": "и в не на я что он с как а то это все она так его но да ты к у же вы за бы по "
        "только ее мне было вот от меня еще нет о из ему",
    }.items()
}

_WORD = re.compile(r"\w+")
_PUNCT = re.compile(r"[^\w\s]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
_OVERSTRIKE = re.compile(r".\x08")
_ATTRIBUTION = re.compile(r"^(?:\s*--|\s+[\u2014\u2015])\s*\S")
_DIALOGUE_DASH = re.compile(r"^[-\u2013\u2014]\s+")
_URL = re.compile(
    r"(?i)(?:\b(?:https?|ftp|file)://|\bwww\.|\S@\S+\.\w|(?:^|\s)(?:~|\.{1,2})?/\w|\w/\w+/|"
    r"\b[a-z]:\\|\b[\w-]+\.(?:com|org|net|edu|gov|html?|php|txt|conf|cfg|ini|sh|py|deb|tar|gz"
    r"|zip|exe|xml|pdf)\b)"
)
_CODE = re.compile(
    r"[{}<>=_\\|`^~#$%*\[\]@\ue000]|(?:^|\s)--?[A-Za-z]|\w\(\)|::|\s[-\u2013]\s.*\s[-\u2013]\s"
)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'„“«(¿¡]*[^\W\d_])")
_OPENERS = "\"'„“‘«‹(¿¡[-–—"
_CLOSERS = "\"'”’»›)]"
_ENDINGS = ".!?…"
_CODE_MARK = "\ue000"  # put where inline <code> was; the code filter drops the sentence


class TextCorpusError(SpeechxError, ValueError):
    """A source is malformed or matches no file, pysbd is missing, or nothing was kept."""


# ------------------------------------------------------------------------------ sources


@dataclass(frozen=True)
class TextSource:
    """Monolingual text in ``lang`` at ``path`` (a file, a directory or a glob)."""

    lang: str
    path: str

    @classmethod
    def parse(cls, spec: str) -> TextSource:
        """Parse ``LANG:PATH`` (``en:/usr/share/games/fortunes/*``).

        Raises:
            TextCorpusError: no ``:``, an empty path, or a language code that is not 2-3
                letters (optionally with a ``-`` suffix), naming the spec.
        """
        lang, sep, path = spec.partition(":")
        if not sep or not path or not re.fullmatch(r"[a-z]{2,3}(?:-[A-Za-z0-9]+)?", lang):
            raise TextCorpusError(
                f"--source {spec!r}: expected LANG:PATH with a language code such as 'en'"
            )
        return cls(lang, path)

    def files(self) -> list[Path]:
        """The files of this source, sorted, each once (by real path).

        Symbolic links are not followed unless the path names the link itself: Debian links
        other packages' files into a language's directory (Italian fortunes into the English
        ``/usr/share/games/fortunes``, and ``<name>.u8`` to ``<name>``).

        Raises:
            TextCorpusError: the path matches no file.
        """
        p = Path(self.path)
        if p.is_file():
            found = [p]
        elif p.is_dir():
            found = [f for f in p.rglob("*") if f.is_file() and not f.is_symlink()]
        else:
            found = [Path(f) for f in glob.glob(self.path, recursive=True)]
            found = [f for f in found if f.is_file() and not f.is_symlink()]
        out: dict[Path, Path] = {}
        for f in sorted(found):
            out.setdefault(f.resolve(), f)
        if not out:
            raise TextCorpusError(f"--source {self.lang}:{self.path}: no file found")
        return list(out.values())


def _as_source(src: str | TextSource) -> TextSource:
    return src if isinstance(src, TextSource) else TextSource.parse(src)


# ------------------------------------------------------------------------------ reading


def decode(data: bytes) -> tuple[str, bool]:
    """Decode bytes as UTF-8 (a BOM is dropped), or as latin-1 when that fails.

    Returns:
        ``(text, fell_back)``: ``fell_back`` is true when latin-1 was used.
    """
    try:
        return data.decode("utf-8-sig"), False
    except UnicodeDecodeError:
        return data.decode("latin-1"), True


def file_kind(path: Path, text: str) -> str:
    """``"html"``, ``"fortune"``, ``"groff"`` or ``"text"``: by suffix (without ``.gz``), then
    by content (a doctype/``<html>`` start, a line holding only ``%``, ``.TH``/many ``.``
    request lines)."""
    name = path.name[:-3] if path.name.endswith(".gz") else path.name
    head = text[:2048].lstrip().lower()
    if Path(name).suffix.lower() in _HTML_SUFFIXES or head.startswith(("<!doctype html", "<html")):
        return "html"
    if head.startswith("<?xml") and "<html" in head:
        return "html"
    lines = text.splitlines()
    requests = sum(1 for line in lines[:400] if line.startswith((".", "'\\\"")))
    if text.startswith((".TH", "'\\\"", '.\\"')) or (
        lines and requests > 0.3 * min(len(lines), 400)
    ):
        return "groff"
    if any(line.rstrip() == "%" for line in lines):
        return "fortune"
    return "text"


class _HtmlText(html.parser.HTMLParser):
    """Collects the text of an HTML page as paragraphs (block elements break them)."""

    BLOCK = _wordset(
        "p div br li ul ol dl dt dd h1 h2 h3 h4 h5 h6 table tr td th caption title section "
        "article header footer nav aside main blockquote hr form figure figcaption body html "
        "option label button summary details"
    )
    SKIP = _wordset("head script style pre noscript svg math textarea select")
    CODE = _wordset("code kbd samp tt var")

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.paragraphs: list[str] = []
        self._buf: list[str] = []
        self._skip = 0
        self._code = 0

    def _flush(self) -> None:
        text = " ".join("".join(self._buf).split())
        if text:
            self.paragraphs.append(text)
        self._buf = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        if tag in self.SKIP:
            self._skip += 1
        elif tag in self.CODE:
            self._code += 1
            self._buf.append(_CODE_MARK)
        if tag in self.BLOCK:
            self._flush()

    def handle_startendtag(self, tag: str, attrs: list) -> None:
        if tag in self.BLOCK:
            self._flush()

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in self.CODE:
            self._code = max(0, self._code - 1)
        if tag in self.BLOCK:
            self._flush()

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self._buf.append(data)

    def close(self) -> None:
        super().close()
        self._flush()


def _clean_line(line: str) -> str:
    return _CONTROL.sub(" ", _OVERSTRIKE.sub("", line))


def _blank_line_paragraphs(lines: Iterable[str]) -> Iterator[str]:
    buf: list[str] = []
    for line in lines:
        if line.strip():
            buf.append(line)
        elif buf:
            yield " ".join(" ".join(buf).split())
            buf = []
    if buf:
        yield " ".join(" ".join(buf).split())


def paragraphs(text: str, kind: str) -> tuple[list[str], int]:
    """Cut decoded text into paragraphs (whitespace collapsed).

    Args:
        kind: from :func:`file_kind`; ``"groff"`` gives nothing.

    Returns:
        ``(paragraphs, attributions)``: attribution lines (``-- Author``) are removed from
        fortunes and plain text and counted.
    """
    if kind == "html":
        parser = _HtmlText()
        parser.feed(text)
        parser.close()
        return parser.paragraphs, 0
    if kind == "groff":
        return [], 0
    lines = [_clean_line(line) for line in text.splitlines()]
    kept = [line for line in lines if not _ATTRIBUTION.match(line)]
    n_attr = len(lines) - len(kept)
    if kind == "fortune":
        out: list[str] = []
        entry: list[str] = []
        for line in [*kept, "%"]:
            if line.rstrip() == "%":
                out.extend(_blank_line_paragraphs(entry))
                entry = []
            else:
                entry.append(line)
        return out, n_attr
    return list(_blank_line_paragraphs(kept)), n_attr


# ---------------------------------------------------------------------------- sentences

_SEGMENTERS: dict[str, Any] = {}


def _pysbd() -> Any:
    try:
        import pysbd
    except ImportError:
        raise TextCorpusError(
            f"data_prep.textcorpus needs pysbd for sentence segmentation: "
            f"pip install 'speechx[{EXTRA}]' (or pip install pysbd)"
        ) from None
    return pysbd


def segment(paragraph: str, lang: str) -> list[str]:
    """Cut a paragraph into sentences with pysbd (a regex split for languages it lacks).

    Returns:
        The sentences, whitespace collapsed, empty ones left out.

    Raises:
        TextCorpusError: pysbd is not installed (naming the ``textcorpus`` extra).
    """
    if lang not in _SEGMENTERS:
        pysbd = _pysbd()
        from pysbd.languages import LANGUAGE_CODES

        base = lang.split("-")[0]
        _SEGMENTERS[lang] = (
            pysbd.Segmenter(language=base, clean=False) if base in LANGUAGE_CODES else None
        )
    seg = _SEGMENTERS[lang]
    parts = seg.segment(paragraph) if seg is not None else _SENTENCE_END.split(paragraph)
    return [s for s in (" ".join(p.split()) for p in parts) if s]


def _chunks(paragraph: str, limit: int = 3000) -> list[str]:
    """A long paragraph (a file without blank lines) in pieces of about ``limit`` characters
    cut after ``.``, ``!`` or ``?`` (pysbd is slow on very long inputs)."""
    if len(paragraph) <= limit:
        return [paragraph]
    out: list[str] = []
    buf = ""
    for piece in re.split(r"(?<=[.!?])\s+", paragraph):
        if buf and len(buf) + len(piece) > limit:
            out.append(buf)
            buf = ""
        buf = f"{buf} {piece}" if buf else piece
    if buf:
        out.append(buf)
    return out


def _fix_quotes(s: str) -> str:
    """Old-style ``\\`quote'`` to ``'quote'``, ``\\`\\`q''`` to ``"q"``; an unbalanced straight
    double quote at either end is dropped (pysbd leaves it on the first or last sentence)."""
    s = _DIALOGUE_DASH.sub("", s)
    s = re.sub(r"``(.*?)''", r'"\1"', s)
    s = re.sub(r"`([^`']*)'", r"'\1'", s)
    if s.count('"') % 2:
        if s.startswith('"'):
            s = s[1:].lstrip()
        elif s.endswith('"'):
            s = s[:-1].rstrip()
    return s


def normalise_key(text: str) -> str:
    """The dedupe and leak-guard key: NFKC, case-folded, punctuation to spaces, whitespace
    collapsed (``"Don’t  PANIC!"`` -> ``"don t panic"``)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_PUNCT.sub(" ", text).split())


def sentence_id(lang: str, key: str) -> str:
    """``tc-<12 hex digits>``: a hash of the language and the normalised key."""
    return "tc-" + hashlib.blake2b(f"{lang}\x00{key}".encode(), digest_size=6).hexdigest()


@dataclass(frozen=True)
class SentenceFilter:
    """Which sentences are clean enough to speak and embed (see the module docstring)."""

    min_words: int = 4
    max_words: int = 25
    min_letters: float = 0.7
    allow_digits: bool = False
    allow_fragments: bool = False
    lang_check: bool = True

    def reason(self, sentence: str, lang: str) -> str | None:
        """Why ``sentence`` (in ``lang``) is dropped, or ``None`` when it is kept."""
        s = sentence
        if _ATTRIBUTION.match(s):
            return "attribution"
        words = [w for w in s.split() if any(c.isalnum() for c in w)]
        if len(words) < self.min_words:
            return "too_short"
        if len(words) > self.max_words:
            return "too_long"
        if _URL.search(s):
            return "url"
        if _CODE.search(s):
            return "code"
        if not self.allow_digits and any(c.isdigit() for c in s):
            return "digits"
        chars = [c for c in s if not c.isspace()]
        if sum(c.isalpha() for c in chars) < self.min_letters * len(chars):
            return "letters"
        long_words = [w for w in (_WORD.findall(s)) if sum(c.isalpha() for c in w) >= 2]
        caps = sum(w.isupper() for w in long_words)
        if long_words and caps > len(long_words) / 2:
            return "shouting"
        if not self.allow_fragments:
            core = s.lstrip(_OPENERS + " ").rstrip(_CLOSERS + " ")
            if not core or not core[0].isupper() or core[-1] not in _ENDINGS:
                return "fragment"
        if self.lang_check and not looks_like(s, lang):
            return "wrong_lang"
        return None


def looks_like(sentence: str, lang: str) -> bool:
    """Whether ``sentence`` reads as ``lang`` by its function words (:data:`FUNCTION_WORDS`).

    It must hold at least one word of ``lang``'s list, and no other language may have more
    words of its own list that are not on ``lang``'s than ``lang`` has that are not on its
    (words both lists share count for neither).  Always true for a language without a list.
    """
    own = FUNCTION_WORDS.get(lang.split("-")[0])
    if own is None:
        return True
    tokens = _WORD.findall(sentence.casefold())
    if not any(t in own for t in tokens):
        return False
    for other in FUNCTION_WORDS.values():
        if other is own:
            continue
        mine = sum(t in own and t not in other for t in tokens)
        theirs = sum(t in other and t not in own for t in tokens)
        if theirs > mine:
            return False
    return True


# ---------------------------------------------------------------------------- leak guard


def leak_keys(dirs: Sequence[str | os.PathLike]) -> set[str]:
    """The normalised keys (:func:`normalise_key`) of every ``text`` and ``text.<lang>`` line
    of these Kaldi dirs.

    Raises:
        DataDirError: a dir is missing or malformed (from :meth:`KaldiDir.read`).
    """
    keys: set[str] = set()
    for d in dirs:
        kd = KaldiDir.read(d)
        for texts in [kd.text, *kd.translations.values()]:
            keys.update(k for k in map(normalise_key, texts.values()) if k)
    return keys


# ------------------------------------------------------------------------------ preparer


@dataclass
class LangCounts:
    """What happened to one language's text (``extra[<lang>]`` of the report)."""

    files: int = 0
    paragraphs: int = 0
    read: int = 0
    kept: int = 0
    eligible: int = 0
    dropped: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        """``files paragraphs read eligible kept`` then the drop counts by reason, sorted."""
        d = {k: v for k, v in asdict(self).items() if k != "dropped"}
        return {**d, **{f"drop_{k}": v for k, v in sorted(self.dropped.items())}}


def _fingerprint(
    sources: Sequence[TextSource],
    files: dict[TextSource, list[Path]],
    leak: set[str],
    options: dict[str, Any],
) -> str:
    h = hashlib.sha256(json.dumps(options, sort_keys=True).encode())
    for src in sources:
        h.update(f"{src.lang}:{src.path}\n".encode())
        for f in files[src]:
            st = f.stat()
            h.update(f"{f}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    for k in sorted(leak):
        h.update(k.encode() + b"\n")
    return h.hexdigest()


def _reuse(json_path: Path, table: Path, fingerprint: str) -> PrepReport | None:
    if not table.is_file():
        return None
    try:
        d = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if d.get("extra", {}).get("fingerprint") != fingerprint:
        return None
    d["extra"]["reused"] = True
    return PrepReport(**d)


def _rank(seed: int, lang: str, key: str) -> bytes:
    return hashlib.blake2b(f"{seed}\x00{lang}\x00{key}".encode(), digest_size=8).digest()


def prepare_textcorpus(
    sources: Sequence[str | TextSource],
    out_dir: str | os.PathLike = "data",
    *,
    name: str = DEFAULT_NAME,
    exclude_dirs: Sequence[str | os.PathLike] = (),
    max_per_lang: int | None = None,
    seed: int = 0,
    filters: SentenceFilter | None = None,
    force: bool = False,
    progress: bool | None = None,
    max_warnings: int = 20,
    verbose: bool = False,
) -> PrepReport:
    """Build the sentence table ``<out_dir>/local/<name>_sentences.tsv`` from plain text.

    Args:
        sources: ``LANG:PATH`` specs or :class:`TextSource` s (several per language are fine).
        out_dir: the data dir; the table and ``<name>_prep.json`` go to its ``local/``.
        name: the table's name.
        exclude_dirs: Kaldi dirs (the dev and test splits) whose sentences, in any language,
            must not be kept (exact match of :func:`normalise_key`).
        max_per_lang: keep at most this many sentences per language (seeded sample).
        seed: of the sample.
        filters: the sentence filters (default :class:`SentenceFilter`).
        force: rebuild even when the inputs are unchanged since the last run.
        progress: a tqdm bar over the files (default: when stderr is a terminal).
        max_warnings: latin-1 fallbacks warned about (all are counted).
        verbose: print the summary.

    Returns:
        A :class:`PrepReport`: ``used`` = rows written, ``skipped`` = drops by reason over all
        languages, ``extra[<lang>]`` = that language's counts (:meth:`LangCounts.as_dict`),
        ``extra["files"]`` = files by kind, ``extra["table"]`` = the table's path.

    Raises:
        TextCorpusError: a bad source spec or name, a source without files, pysbd missing, or
            no sentence kept at all.
        DataDirError: an exclude dir is missing or malformed.
    """
    t0 = time.perf_counter()
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
        raise TextCorpusError(f"name {name!r}: use letters, digits, '.', '_' and '-'")
    if max_per_lang is not None and max_per_lang < 1:
        raise TextCorpusError(f"max_per_lang must be at least 1, got {max_per_lang}")
    filt = filters or SentenceFilter()
    srcs = list(dict.fromkeys(_as_source(s) for s in sources))
    if not srcs:
        raise TextCorpusError("give at least one --source LANG:PATH")
    _pysbd()  # fail before reading anything
    out = Path(out_dir)
    table = out / "local" / f"{name}_sentences.tsv"
    json_path = out / "local" / f"{name}_prep.json"
    files = {src: src.files() for src in srcs}
    leak = leak_keys(exclude_dirs)
    options = {
        "name": name,
        "max_per_lang": max_per_lang,
        "seed": seed,
        "filters": asdict(filt),
        "exclude_dirs": sorted(str(d) for d in exclude_dirs),
    }
    fingerprint = _fingerprint(srcs, files, leak, options)
    if not force and (prev := _reuse(json_path, table, fingerprint)) is not None:
        prev.elapsed = time.perf_counter() - t0
        if verbose:
            print(prev.summary())
        return prev

    langs = list(dict.fromkeys(s.lang for s in srcs))
    counts = {lang: LangCounts() for lang in langs}
    kinds: Counter = Counter()
    kept: dict[str, dict[str, str]] = {lang: {} for lang in langs}  # lang -> key -> text
    seen_files: set[tuple[str, Path]] = set()
    n_latin1 = 0
    jobs = [(src, f) for src in srcs for f in files[src]]
    show = sys.stderr.isatty() if progress is None else progress
    for src, f in tqdm(jobs, desc="textcorpus", unit="file", disable=not show):
        if (src.lang, f.resolve()) in seen_files:
            continue
        seen_files.add((src.lang, f.resolve()))
        gz = f.name.lower().endswith(".gz")
        inner = Path(f.name[:-3] if gz else f.name).suffix.lower()
        if f.name.startswith(".") or inner in SKIP_SUFFIXES:
            kinds["skipped_suffix"] += 1
            continue
        try:
            data = f.read_bytes()
            if gz:
                data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
            kinds["unreadable"] += 1
            warnings.warn(f"textcorpus: skipping {f}: {exc}", CorpusWarning, stacklevel=2)
            continue
        if b"\x00" in data[:8192]:
            kinds["skipped_binary"] += 1
            continue
        text, fell_back = decode(data)
        if fell_back:
            n_latin1 += 1
            if n_latin1 <= max_warnings:
                warnings.warn(
                    f"textcorpus: {f} is not UTF-8; read as latin-1", CorpusWarning, stacklevel=2
                )
        kind = file_kind(f, text)
        if kind == "groff":
            kinds["skipped_groff"] += 1
            continue
        kinds[kind] += 1
        c = counts[src.lang]
        c.files += 1
        paras, n_attr = paragraphs(text, kind)
        c.dropped["attribution"] += n_attr
        c.paragraphs += len(paras)
        for para in paras:
            if len(para.split()) < filt.min_words:  # no sentence of it can be long enough
                c.read += 1
                c.dropped["too_short"] += 1
                continue
            for sent in (s for chunk in _chunks(para) for s in segment(chunk, src.lang)):
                c.read += 1
                sent = _fix_quotes(sent)
                why = filt.reason(sent, src.lang)
                key = normalise_key(sent)
                if why is None and key in kept[src.lang]:
                    why = "duplicate"
                if why is None and key in leak:
                    why = "leak"
                if why is not None:
                    c.dropped[why] += 1
                    continue
                kept[src.lang][key] = sent

    rows: list[tuple[str, str, str]] = []  # (sent_id, lang, text)
    for lang in langs:
        keys = list(kept[lang])
        counts[lang].eligible = len(keys)
        if max_per_lang is not None and len(keys) > max_per_lang:
            keys = sorted(keys, key=lambda k, lg=lang: _rank(seed, lg, k))[:max_per_lang]
        counts[lang].kept = len(keys)
        rows.extend((sentence_id(lang, k), lang, kept[lang][k]) for k in keys)
    if not rows:
        per = ", ".join(f"{lg}: {dict(c.dropped)}" for lg, c in counts.items())
        raise TextCorpusError(f"no sentence kept from the sources ({per})")
    rows.sort()
    col = {lang: i for i, lang in enumerate(langs)}
    lines = ["\t".join(["sent_id", "split", *langs]) + "\n"]
    for sid, lang, text in rows:
        cells = [""] * len(langs)
        cells[col[lang]] = text
        lines.append("\t".join([sid, "train", *cells]) + "\n")
    atomic_write_text(table, "".join(lines))

    report = PrepReport(corpus="textcorpus", out_dir=str(out), n_sentences=len(rows))
    report.used = len(rows)
    report.splits = {"train": len(rows)}
    for c in counts.values():
        for why, n in c.dropped.items():
            if n:
                report.skip(why, n)
    report.extra = {
        "table": str(table),
        **{lang: c.as_dict() for lang, c in counts.items()},
        "files": dict(sorted(kinds.items())),
        "latin1_files": n_latin1,
        "leak_keys": len(leak),
        "fingerprint": fingerprint,
        "reused": False,
    }
    return report.finish(t0, json_path=json_path, verbose=verbose)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m data_prep.textcorpus``: parse arguments, run :func:`prepare_textcorpus`."""
    ap = prep_parser(
        "textcorpus",
        "Cut plain text, fortune files and HTML into clean monolingual sentences and write a "
        "sentence table <out-dir>/local/<name>_sentences.tsv (split=train) for data_prep.synth.",
    )
    ap.add_argument(
        "--source",
        action="append",
        required=True,
        metavar="LANG:PATH",
        help="text in LANG: a file, a directory (recursive) or a glob ('**' for any depth); "
        "repeat for more",
    )
    ap.add_argument("--name", default=DEFAULT_NAME, help=f"table name (default: {DEFAULT_NAME})")
    ap.add_argument(
        "--exclude-dirs",
        nargs="+",
        default=[],
        metavar="DIR",
        help="Kaldi dirs (dev, test) whose text and text.<lang> sentences are never kept",
    )
    ap.add_argument(
        "--max-per-lang", type=int, default=None, help="seeded sample of N per language"
    )
    ap.add_argument("--seed", type=int, default=0, help="sample seed (default: 0)")
    d = SentenceFilter()
    ap.add_argument("--min-words", type=int, default=d.min_words, help="default: %(default)s")
    ap.add_argument("--max-words", type=int, default=d.max_words, help="default: %(default)s")
    ap.add_argument(
        "--min-letters",
        type=float,
        default=d.min_letters,
        help="least fraction of letters among non-space characters (default: %(default)s)",
    )
    ap.add_argument(
        "--digits",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="keep sentences with digits (default: --no-digits, they are dropped)",
    )
    ap.add_argument(
        "--fragments",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="keep sentences without a capital start or a final . ! ? (default: drop them)",
    )
    ap.add_argument(
        "--lang-check",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="drop sentences that lack their language's function words (default: on)",
    )
    ap.add_argument("--force", action="store_true", help="rebuild even if the inputs are unchanged")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    filters = SentenceFilter(
        min_words=args.min_words,
        max_words=args.max_words,
        min_letters=args.min_letters,
        allow_digits=args.digits,
        allow_fragments=args.fragments,
        lang_check=args.lang_check,
    )
    return run_preparer(
        lambda: prepare_textcorpus(
            args.source,
            args.out_dir,
            name=args.name,
            exclude_dirs=args.exclude_dirs,
            max_per_lang=args.max_per_lang,
            seed=args.seed,
            filters=filters,
            force=args.force,
            progress=not args.no_progress,
        )
    )


if __name__ == "__main__":
    sys.exit(main())
