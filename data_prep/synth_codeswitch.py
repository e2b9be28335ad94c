"""Synthetic code-switched speech from the parallel sentence table, spoken by espeak-ng.

For each language pair ``<matrix>-<embedded>`` (``nl-en``, ``de-en``, ``es-en`` ...) and each split
of the sentence table (``local/fillets_sentences.tsv`` from :mod:`data_prep.fillets`), three kinds
of utterance are built from the translations of the *same* sentence, so the mixed line means
what both monolingual lines mean:

``inter`` (inter-sentential)
    Two sentences of the same split, paired by a seeded shuffle: the first spoken in the matrix
    language, the second in the embedded language.  Every sentence is in at most one pair; an
    odd one out is skipped (``inter_unpaired``).
``clause`` (intra-sentential, clause level)
    Both translations are cut into clauses after words ending in ``, ; : ? ! .`` (or ``…``).
    When they have the same number of clauses (at least two) and the same kind of boundary at
    each cut (sentence-final ``.?!…`` vs clause-internal ``,;:``), one clause, chosen by a seeded
    hash, is replaced by the embedded language's corresponding clause.  Clauses are assumed to
    come in the same order in both languages; when word alignments exist, a clause whose words
    are mostly aligned outside its counterpart is rejected (``clause_misaligned``).
``phrase`` (intra-sentential, word/phrase level; needs the optional ``eflomal`` package)
    Words are aligned with eflomal (Bayesian HMM + fertility models, forward and reverse).
    A contiguous matrix span of 1-4 words that is *consistent* with the union of both
    directions (no link of either direction leaves the box, and every word inside both spans
    has a link that both directions agree on) and whose embedded counterpart is also
    contiguous and at most 4 words is replaced by that embedded span.  Neither span crosses a
    clause boundary, and the matrix keeps at least half of its words.  Using the union rather
    than a symmetrised alignment trades recall for precision: any stray link vetoes a span.

The aligner is trained on the fillets lines only (no other parallel text is available offline
outside the reserved sources).  So that no evaluation sentence influences training data, the
``train`` alignments are computed from train sentences alone, and each other split ``S`` is
aligned together with train (``train + S``) and only its own links are kept: dev never sees test.
eflomal's sampler takes no seed, so links are cached in ``<out_dir>/local/synthcs_align/`` and
reused; reruns then make the same utterances and reuse their audio.

Speech: every span is spoken by espeak-ng with its language's voice and the *same* variant, speed
and pitch (one synthetic speaker per utterance, as consistent as espeak's different base voices
allow), edge silences are trimmed, and spans are joined with 80-200 ms pauses (seeded).  16 kHz
WAVs go to ``<audio_dir>/synthcs/<pair>/`` (default ``<out_dir>/../wav``), named with a hash of
their content; files already there are reused, so an interrupted run resumes.

Output: Kaldi dirs ``<out_dir>/synthcs_<pair>_<split>`` with ``wav.scp``, ``text`` (the mixed line
exactly as spoken), ``utt2spk`` (``<pair>-<variant>-s<speed>-p<pitch>``), ``spk2utt``, ``utt2dur``,
``utt2lang`` (the pair), ``text.<lang>`` for every language of the table (the full monolingual
line(s): the retrieval targets), and

- ``text.langtags``: ``utt-id tag tag ...``, one ISO code per MER token of ``text``
  (:func:`speechx.metrics.asr.mixed_tokens`); :func:`data_prep.codeswitch.check_langtags`
  verifies it;
- ``utt2cstype``: ``inter`` or ``intra``; ``utt2csmethod``: ``inter``, ``clause`` or ``phrase``;
- ``utt2sent``: the sentence id (for ``inter``: the *first*, matrix-language sentence);
- ``utt2sents``: every sentence id spoken, in order (two for ``inter``).  Both ids of an
  ``inter`` utterance are in its split, so the split never leaks.  Sentence-level retrieval
  should use the ``intra`` utterances (``utt2cstype``); an ``inter`` utterance's ``text.<lang>``
  is the two sentences joined.

Limits: clause correspondence is positional, so reordered clauses that happen to have the same
punctuation are only caught when alignments are available; the aligner learns from ~2k short
game lines, so some phrase switches are wrong or ungrammatical (e.g. a verb without its
separable particle); casing is only fixed at the sentence start; espeak's voices differ across
languages even with the same variant, so the "same speaker" is approximate.

Run ``python -m data_prep.synth_codeswitch --help``.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from data_prep import PrepReport, existing_duration, parse_list, prep_parser, run_preparer
from data_prep.codeswitch import check_langtags
from data_prep.synth import (
    ESPEAK_VOICES,
    Sentence,
    SynthError,
    Voice,
    VoiceSpace,
    check_espeak,
    read_sentence_table,
    run_jobs,
    synthesize,
)
from speechx.audio import save_audio
from speechx.data.kaldi import KaldiDir, atomic_write_text, write_mapping
from speechx.data.splits import DEFAULT_SPLIT_NAMES
from speechx.metrics.asr import mixed_tokens

DEFAULT_PAIRS: tuple[str, ...] = ("nl-en", "de-en", "es-en")
DEFAULT_SENTENCES = "local/fillets_sentences.tsv"
METHODS: tuple[str, ...] = ("inter", "clause", "phrase")
ALIGNERS: tuple[str, ...] = ("auto", "eflomal", "none")

Links = frozenset[tuple[int, int]]

_CLAUSE_END = re.compile(r"[,;:?!.…]+[\"'’”»)\]]*$")
_STRONG = re.compile(r"[?!.…]")
_PUNCT_EDGES = re.compile(r"^[\W_]+|[\W_]+$")
_WORD = re.compile(r"\w")
_PAIR = re.compile(r"^([a-z]{2,3})-([a-z]{2,3})$")


@dataclass(frozen=True)
class SwitchConfig:
    """How code-switched utterances are built and joined.

    Attributes:
        methods: which kinds to build (subset of :data:`METHODS`).
        max_phrase_words: longest matrix or embedded span of a ``phrase`` switch.
        max_phrase_share: the matrix span covers at most this share of the matrix words
            (at least one word).
        clause_agreement: for ``clause`` switches with alignments, the minimum share of a
            clause's links that must land in its counterpart clause (both directions).
        pause_ms: (min, max) pause between two spans, drawn per boundary.
        edge_ms: silence kept before the first and after the last span.
    """

    methods: tuple[str, ...] = METHODS
    max_phrase_words: int = 4
    max_phrase_share: float = 0.5
    clause_agreement: float = 0.5
    pause_ms: tuple[int, int] = (80, 200)
    edge_ms: int = 50


@dataclass(frozen=True)
class Span:
    """A stretch of an utterance spoken in one language."""

    lang: str
    words: tuple[str, ...]

    @property
    def text(self) -> str:
        """The words joined by single spaces."""
        return " ".join(self.words)


@dataclass(frozen=True)
class CodeSwitch:
    """One code-switched utterance before synthesis.

    Attributes:
        pair: ``<matrix>-<embedded>``.
        method: ``inter``, ``clause`` or ``phrase``.
        sent_ids: the sentence ids spoken, in order (two for ``inter``).
        split: the split of every sentence in ``sent_ids``.
        spans: consecutive language spans (adjacent spans differ in language).
    """

    pair: str
    method: str
    sent_ids: tuple[str, ...]
    split: str
    spans: tuple[Span, ...]

    @property
    def cstype(self) -> str:
        """``inter`` or ``intra``."""
        return "inter" if self.method == "inter" else "intra"

    @property
    def text(self) -> str:
        """The mixed transcript exactly as spoken."""
        return " ".join(s.text for s in self.spans)

    @property
    def tags(self) -> list[str]:
        """One language tag per MER token of :attr:`text`."""
        return [s.lang for s in self.spans for w in s.words for _ in mixed_tokens(w)]


@dataclass(frozen=True)
class Alignment:
    """The two directional word alignments of one sentence pair (matrix word i, embedded j).

    Attributes:
        fwd: matrix->embedded links.
        rev: embedded->matrix links, also as ``(i, j)``.
    """

    fwd: Links
    rev: Links

    @property
    def union(self) -> Links:
        """Every link of either direction (used for strict phrase consistency)."""
        return self.fwd | self.rev

    @property
    def sym(self) -> Links:
        """The grow-diag symmetrisation (used to check clause correspondence)."""
        return grow_diag(set(self.fwd), set(self.rev))


# --------------------------------------------------------------------------- small helpers


def _hash(*parts: object) -> int:
    data = "\x00".join(str(p) for p in parts).encode("utf-8")
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


def parse_pair(pair: str) -> tuple[str, str]:
    """Split ``"nl-en"`` into ``("nl", "en")`` (matrix, embedded).

    Raises:
        SynthError: not two different lowercase ISO codes joined by ``-``.
    """
    m = _PAIR.match(pair)
    if not m or m.group(1) == m.group(2):
        raise SynthError(f"language pair {pair!r}: expected <matrix>-<embedded>, e.g. nl-en")
    return m.group(1), m.group(2)


def _norm(words: Sequence[str]) -> str:
    return " ".join(w for w in (_PUNCT_EDGES.sub("", x).lower() for x in words) if w)


def align_token(word: str) -> str:
    """The form of ``word`` the aligner sees: edge punctuation removed, lowercased.

    Returns:
        The bare word, or ``word`` itself lowercased when it is all punctuation.
    """
    bare = _PUNCT_EDGES.sub("", word).lower()
    return bare or word.lower()


def clause_cuts(words: Sequence[str]) -> list[tuple[int, int, str]]:
    """Cut a sentence into clauses after words that end in ``, ; : ? ! .`` or ``…``.

    Returns:
        ``(start, end, boundary)`` word ranges covering ``words``; ``boundary`` is ``"strong"``
        (``.?!…``), ``"weak"`` (``,;:``) or ``""`` for the last clause.
    """
    out: list[tuple[int, int, str]] = []
    start = 0
    for i, w in enumerate(words[:-1]):
        m = _CLAUSE_END.search(w)
        if m and len(m.group(0)) < len(w):  # a word, not a lone punctuation token
            out.append((start, i + 1, "strong" if _STRONG.search(m.group(0)) else "weak"))
            start = i + 1
    out.append((start, len(words), ""))
    return out


def grow_diag(fwd: set[tuple[int, int]], rev: set[tuple[int, int]]) -> Links:
    """Symmetrise two directional alignments (Koehn's grow-diag, without final).

    Starts from the intersection and repeatedly adds union links that neighbour (also
    diagonally) an accepted link and align a so far unaligned source or target word.

    Returns:
        The symmetrised links ``(i, j)`` (source word i, target word j).
    """
    union = fwd | rev
    links = set(fwd & rev)
    neighbours = [(-1, 0), (0, -1), (1, 0), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1)]
    added = True
    while added:
        added = False
        src = {i for i, _ in links}
        trg = {j for _, j in links}
        for i, j in sorted(links):
            for di, dj in neighbours:
                cand = (i + di, j + dj)
                if (
                    cand in union
                    and cand not in links
                    and (cand[0] not in src or cand[1] not in trg)
                ):
                    links.add(cand)
                    src.add(cand[0])
                    trg.add(cand[1])
                    added = True
    return frozenset(links)


def consistent_phrases(
    links: Links, n_src: int, max_words: int = 4
) -> list[tuple[int, int, int, int]]:
    """Phrase pairs consistent with an alignment (phrase-based MT extraction, tight edges).

    Returns:
        ``(i1, i2, j1, j2)`` half-open ranges: source words ``[i1, i2)`` are aligned only
        inside target words ``[j1, j2)`` and vice versa, both at most ``max_words`` long, and
        the first and last word of both ranges are aligned.
    """
    by_src: dict[int, list[int]] = {}
    by_trg: dict[int, list[int]] = {}
    for i, j in links:
        by_src.setdefault(i, []).append(j)
        by_trg.setdefault(j, []).append(i)
    out: list[tuple[int, int, int, int]] = []
    for i1 in range(n_src):
        if i1 not in by_src:
            continue
        for i2 in range(i1 + 1, min(n_src, i1 + max_words) + 1):
            if i2 - 1 not in by_src:
                continue
            js = [j for i in range(i1, i2) for j in by_src.get(i, ())]
            j1, j2 = min(js), max(js) + 1
            if j2 - j1 > max_words:
                continue
            if all(i1 <= i < i2 for j in range(j1, j2) for i in by_trg.get(j, ())):
                out.append((i1, i2, j1, j2))
    return out


def _recase(words: list[str], lang: str, at_start: bool, was_start: bool) -> list[str]:
    """Fix the first letter of an inserted span when its position in the sentence changed."""
    if not words:
        return words
    w = words[0]
    if at_start and not was_start:
        words[0] = w[:1].upper() + w[1:]
    elif was_start and not at_start and lang != "de" and w != "I" and w[1:2].islower():
        words[0] = w[:1].lower() + w[1:]
    return words


def join_spans(spans: Sequence[Span]) -> tuple[Span, ...]:
    """Drop empty spans, attach spans with no letter or digit (``...``, ``.``) to a neighbour,
    and merge neighbours of the same language.

    espeak-ng says nothing for a lone punctuation span, so it rides with the span before it
    (or, at the start, the one after it) and takes that span's language tag.

    Returns:
        Spans where every span has a word character and adjacent spans differ in language.
    """
    out: list[Span] = []
    pending: tuple[str, ...] = ()
    for sp in spans:
        if not sp.words:
            continue
        if not any(_WORD.search(w) for w in sp.words):
            if out:
                out[-1] = Span(out[-1].lang, out[-1].words + sp.words)
            else:
                pending += sp.words
            continue
        sp = Span(sp.lang, pending + sp.words)
        pending = ()
        if out and out[-1].lang == sp.lang:
            out[-1] = Span(sp.lang, out[-1].words + sp.words)
        else:
            out.append(sp)
    if pending and out:
        out[-1] = Span(out[-1].lang, out[-1].words + pending)
    return tuple(out)


# --------------------------------------------------------------------------- switching


def make_inter(pair: str, first: Sentence, second: Sentence) -> CodeSwitch:
    """``first`` in the matrix language, then ``second`` in the embedded language.

    Raises:
        SynthError: the sentences are in different splits or lack the pair's text.
    """
    a, b = parse_pair(pair)
    if first.split != second.split:
        raise SynthError(
            f"sentences {first.sent_id} ({first.split}) and {second.sent_id} ({second.split}) "
            "are in different splits; an inter-sentential pair never crosses splits"
        )
    ta, tb = first.texts.get(a, "").split(), second.texts.get(b, "").split()
    if not ta or not tb:
        raise SynthError(f"{first.sent_id}/{second.sent_id}: no {a}/{b} text for {pair}")
    return CodeSwitch(
        pair,
        "inter",
        (first.sent_id, second.sent_id),
        first.split,
        (Span(a, tuple(ta)), Span(b, tuple(tb))),
    )


def make_clause_switch(
    pair: str,
    sent: Sentence,
    links: Links | None = None,
    seed: int = 0,
    config: SwitchConfig | None = None,
) -> CodeSwitch | str:
    """Replace one clause of the matrix sentence by the embedded language's matching clause.

    Args:
        links: word alignments matrix->embedded of this sentence, used to reject clauses that
            do not correspond; ``None`` trusts the clause order.

    Returns:
        The utterance, or a skip reason: ``clause_single`` (one clause), ``clause_mismatch``
        (different clause counts or boundary kinds), ``clause_misaligned``, ``clause_same``
        (the chosen clause reads the same in both languages).
    """
    cfg = config or SwitchConfig()
    a, b = parse_pair(pair)
    wa, wb = sent.texts[a].split(), sent.texts[b].split()
    ca, cb = clause_cuts(wa), clause_cuts(wb)
    if len(ca) < 2 or len(cb) < 2:
        return "clause_single"
    if len(ca) != len(cb) or [c[2] for c in ca] != [c[2] for c in cb]:
        return "clause_mismatch"
    k = _hash(seed, pair, "clause", sent.sent_id) % len(ca)
    (a1, a2, _), (b1, b2, _) = ca[k], cb[k]
    if links:
        out_a = [j for i, j in links if a1 <= i < a2]
        out_b = [i for i, j in links if b1 <= j < b2]
        if (out_a and sum(b1 <= j < b2 for j in out_a) < cfg.clause_agreement * len(out_a)) or (
            out_b and sum(a1 <= i < a2 for i in out_b) < cfg.clause_agreement * len(out_b)
        ):
            return "clause_misaligned"
    if _norm(wa[a1:a2]) == _norm(wb[b1:b2]):
        return "clause_same"
    spans = [Span(a, tuple(wa[:a1])), Span(b, tuple(wb[b1:b2])), Span(a, tuple(wa[a2:]))]
    return CodeSwitch(pair, "clause", (sent.sent_id,), sent.split, join_spans(spans))


def make_phrase_switch(
    pair: str,
    sent: Sentence,
    alignment: Alignment,
    seed: int = 0,
    config: SwitchConfig | None = None,
) -> CodeSwitch | str:
    """Replace one aligned matrix phrase by its contiguous embedded counterpart.

    Args:
        alignment: word alignments ``(i, j)``: matrix word i (of ``texts[matrix].split()``)
            with embedded word j.  Phrases must be consistent with the union of both
            directions, and every word of both spans needs a link in both directions.

    Returns:
        The utterance, or ``phrase_none`` when no consistent phrase pair fits
        :class:`SwitchConfig` (or every candidate reads the same in both languages).
    """
    cfg = config or SwitchConfig()
    a, b = parse_pair(pair)
    wa, wb = sent.texts[a].split(), sent.texts[b].split()
    limit = max(1, int(cfg.max_phrase_share * len(wa)))
    union = alignment.union
    both = alignment.fwd & alignment.rev
    src_ok, trg_ok = {i for i, _ in both}, {j for _, j in both}
    inner_a = {e - 1 for _, e, _ in clause_cuts(wa)[:-1]}  # last words of non-final clauses
    inner_b = {e - 1 for _, e, _ in clause_cuts(wb)[:-1]}
    cands = [
        (i1, i2, j1, j2)
        for i1, i2, j1, j2 in consistent_phrases(union, len(wa), cfg.max_phrase_words)
        if i2 - i1 <= limit
        and i2 - i1 < len(wa)
        and not any(i1 <= k < i2 - 1 for k in inner_a)
        and not any(j1 <= k < j2 - 1 for k in inner_b)
        and j2 <= len(wb)
        and _norm(wa[i1:i2]) != _norm(wb[j1:j2])
        and _norm(wb[j1:j2])
        and all(i in src_ok for i in range(i1, i2))
        and all(j in trg_ok for j in range(j1, j2))
    ]
    if not cands:
        return "phrase_none"
    i1, i2, j1, j2 = cands[_hash(seed, pair, "phrase", sent.sent_id) % len(cands)]
    emb = _recase(list(wb[j1:j2]), b, at_start=i1 == 0, was_start=j1 == 0)
    spans = [Span(a, tuple(wa[:i1])), Span(b, tuple(emb)), Span(a, tuple(wa[i2:]))]
    return CodeSwitch(pair, "phrase", (sent.sent_id,), sent.split, join_spans(spans))


def inter_pairs(
    sentences: Sequence[Sentence], pair: str, seed: int = 0
) -> tuple[list[tuple[Sentence, Sentence]], list[Sentence]]:
    """Pair sentences of the same split after a seeded shuffle within each split.

    Returns:
        ``(pairs, unpaired)``: consecutive sentences of the shuffled order of each split, and
        the odd ones out.  The order is a pure function of ``(seed, pair, sentence id)``.
    """
    by_split: dict[str, list[Sentence]] = {}
    for s in sentences:
        by_split.setdefault(s.split, []).append(s)
    pairs: list[tuple[Sentence, Sentence]] = []
    unpaired: list[Sentence] = []
    for split in sorted(by_split):
        order = sorted(
            by_split[split], key=lambda s: (_hash(seed, pair, "inter", s.sent_id), s.sent_id)
        )
        pairs.extend(zip(order[0::2], order[1::2], strict=False))
        if len(order) % 2:
            unpaired.append(order[-1])
    return pairs, unpaired


# --------------------------------------------------------------------------- alignment


def eflomal_available() -> bool:
    """True when the optional ``eflomal`` package imports."""
    try:
        import eflomal  # noqa: F401
    except ImportError:
        return False
    return True


def _read_links(path: Path, n: int) -> list[set[tuple[int, int]]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    lines += [""] * (n - len(lines))
    return [{(int(x), int(y)) for x, y in (t.split("-") for t in ln.split())} for ln in lines[:n]]


def align_words(
    pairs: Sequence[tuple[Sequence[str], Sequence[str]]], seed: int = 0
) -> list[Alignment]:
    """Align the words of sentence pairs with eflomal (both directions).

    Args:
        pairs: ``(source_words, target_words)``, each non-empty; words are passed through
            :func:`align_token`.

    Returns:
        One :class:`Alignment` per pair, indices into the given word lists.

    Raises:
        SynthError: eflomal is not installed, a sentence is empty, or eflomal fails.
    """
    if not pairs:
        return []
    try:
        import eflomal
    except ImportError:
        raise SynthError(
            "word alignment needs the optional package eflomal (pip install eflomal)"
        ) from None
    src, trg = [], []
    for n, (s, t) in enumerate(pairs):
        if not s or not t:
            raise SynthError(f"align_words: sentence pair {n} has an empty side")
        src.append(" ".join(align_token(w) for w in s))
        trg.append(" ".join(align_token(w) for w in t))
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        with tempfile.TemporaryDirectory(prefix="synthcs-align-") as tmp:
            fwd, rev = Path(tmp) / "fwd", Path(tmp) / "rev"
            try:
                eflomal.Aligner().align(
                    src, trg, links_filename_fwd=str(fwd), links_filename_rev=str(rev), quiet=True
                )
            except Exception as exc:  # the binary's failures surface as several types
                raise SynthError(f"eflomal failed on {len(pairs)} sentence pairs: {exc}") from None
            f_links, r_links = _read_links(fwd, len(pairs)), _read_links(rev, len(pairs))
    finally:
        np.random.set_state(state)
    out = []
    for (s, t), f, r in zip(pairs, f_links, r_links, strict=True):
        ok = {(i, j) for i, j in f | r if i < len(s) and j < len(t)}
        out.append(Alignment(frozenset(f & ok), frozenset(r & ok)))
    return out


def _format_links(links: Links) -> str:
    return " ".join(f"{i}-{j}" for i, j in sorted(links))


def split_alignments(
    sentences: Sequence[Sentence],
    pair: str,
    seed: int = 0,
    cache_dir: str | os.PathLike | None = None,
) -> dict[str, Alignment]:
    """Word alignments matrix->embedded for every sentence, without crossing evaluation splits.

    ``train`` sentences are aligned among themselves; every other split ``S`` is aligned
    together with ``train`` and only its own links are kept.  eflomal's sampler is not seeded,
    so two runs give different links; with ``cache_dir`` each group's links are saved to
    ``<cache_dir>/<pair>_<split>.links`` (keyed by a hash of the group's sentences) and reused,
    which keeps reruns (and their audio) identical.

    Returns:
        ``{sent_id: alignment}`` for every given sentence.

    Raises:
        SynthError: as :func:`align_words`.
    """
    a, b = parse_pair(pair)
    by_split: dict[str, list[Sentence]] = {}
    for s in sentences:
        by_split.setdefault(s.split, []).append(s)
    train = by_split.get("train", [])
    out: dict[str, Alignment] = {}
    for split in sorted(by_split):
        group = train if split == "train" else train + by_split[split]
        key = f"{_hash(pair, *((s.sent_id, s.texts[a], s.texts[b]) for s in group)):016x}"
        cache = Path(cache_dir) / f"{pair}_{split}.links" if cache_dir is not None else None
        cached = _read_link_cache(cache, key) if cache is not None else None
        if cached is None or any(s.sent_id not in cached for s in by_split[split]):
            links = align_words([(s.texts[a].split(), s.texts[b].split()) for s in group], seed)
            cached = {s.sent_id: ln for s, ln in zip(group, links, strict=True) if s.split == split}
            if cache is not None:
                rows = [f"# {key}\n"] + [
                    f"{sid}\t{_format_links(al.fwd)}\t{_format_links(al.rev)}\n"
                    for sid, al in sorted(cached.items())
                ]
                atomic_write_text(cache, "".join(rows))
        out.update({s.sent_id: cached[s.sent_id] for s in by_split[split]})
    return out


def _parse_links(field: str) -> Links:
    return frozenset((int(x), int(y)) for x, y in (t.split("-") for t in field.split()))


def _read_link_cache(path: Path, key: str) -> dict[str, Alignment] | None:
    if not path.is_file():
        return None
    lines = path.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0] != f"# {key}":
        return None
    out: dict[str, Alignment] = {}
    try:
        for line in lines[1:]:
            sid, fwd, rev = line.split("\t")
            out[sid] = Alignment(_parse_links(fwd), _parse_links(rev))
    except ValueError:
        return None  # a damaged cache is recomputed
    return out


# --------------------------------------------------------------------------- synthesis


def speaker_voice(
    pair: str, key: str, seed: int = 0, space: VoiceSpace | None = None
) -> tuple[str, str, int, int]:
    """The one speaker of an utterance: ``(variant, speaker_id, speed, pitch)``.

    Returns:
        A pure function of ``(seed, pair, key)``; the speaker id is
        ``<pair>-<variant>-s<speed>-p<pitch>``.
    """
    sp = space or VoiceSpace()
    x = _hash(seed, pair, "voice", key)
    variant = sp.variants[x % len(sp.variants)]
    x //= len(sp.variants)
    speed = sp.speeds[x % len(sp.speeds)]
    x //= len(sp.speeds)
    pitch = sp.pitches[x % len(sp.pitches)]
    return variant, f"{pair}-{variant}-s{speed}-p{pitch}", speed, pitch


def trim_silence(wav: np.ndarray, sample_rate: int, margin_ms: int = 10) -> np.ndarray:
    """Cut leading and trailing near-silence (below 1% of the peak), keeping a small margin.

    Returns:
        A view of ``wav``; ``wav`` itself when it is all silence.
    """
    if not wav.size:
        return wav
    loud = np.flatnonzero(np.abs(wav) > 0.01 * float(np.abs(wav).max()))
    if not loud.size:
        return wav
    m = int(margin_ms * sample_rate / 1000)
    return wav[max(0, loud[0] - m) : min(wav.size, loud[-1] + 1 + m)]


@dataclass(frozen=True)
class _Job:
    cs: CodeSwitch
    utt: str
    speaker: str
    voices: tuple[Voice, ...]
    pauses: tuple[int, ...]  # samples between span k and k+1
    path: Path


def _run_job(job: _Job, sample_rate: int, edge: int, exe: str) -> tuple[str, float | None]:
    """Returns ``(status, duration)``: status is reused, synthesised or a skip reason."""
    dur = existing_duration(job.path)
    if dur is not None:
        return "reused", dur
    parts: list[np.ndarray] = [np.zeros(edge, np.float32)]
    for k, (span, voice) in enumerate(zip(job.cs.spans, job.voices, strict=True)):
        try:
            wav = synthesize(span.text, voice, sample_rate, exe)
        except SynthError:
            return "espeak_failed", None
        wav = trim_silence(wav, sample_rate)
        if wav.size < int(0.03 * sample_rate) or not np.any(wav):
            return "empty_audio", None
        if k:
            parts.append(np.zeros(job.pauses[k - 1], np.float32))
        parts.append(wav)
    parts.append(np.zeros(edge, np.float32))
    out = np.concatenate(parts)
    save_audio(job.path, out, sample_rate)
    return "synthesised", out.size / sample_rate


def _make_job(
    cs: CodeSwitch,
    seed: int,
    audio_root: Path,
    sample_rate: int,
    config: SwitchConfig,
    space: VoiceSpace | None,
    espeak_voices: dict[str, str],
) -> _Job:
    key = "+".join(cs.sent_ids)
    variant, speaker, speed, pitch = speaker_voice(cs.pair, f"{cs.method}:{key}", seed, space)
    utt = f"{speaker}-{cs.method}-{'-'.join(cs.sent_ids)}"
    voices = tuple(
        Voice(s.lang, espeak_voices.get(s.lang, s.lang), variant, speed, pitch) for s in cs.spans
    )
    lo, hi = config.pause_ms
    pauses = tuple(
        int((lo + _hash(seed, utt, "pause", k) % (hi - lo + 1)) * sample_rate / 1000)
        for k in range(len(cs.spans) - 1)
    )
    content = _hash(
        sample_rate,
        config.edge_ms,
        pauses,
        [(v.espeak_voice, s.text) for v, s in zip(voices, cs.spans, strict=True)],
    )
    path = (audio_root / "synthcs" / cs.pair / f"{utt}-{content:016x}.wav").resolve()
    return _Job(cs, utt, speaker, voices, pauses, path)


# --------------------------------------------------------------------------- data dir files


def _write_dir(out: Path, jobs: Sequence[tuple[_Job, float]], table: dict[str, Sentence]) -> int:
    kd = KaldiDir()
    extra: dict[str, dict[str, str]] = {
        "utt2cstype": {},
        "utt2csmethod": {},
        "utt2sents": {},
    }
    for job, dur in jobs:
        cs, utt = job.cs, job.utt
        kd.wav_scp[utt] = str(job.path)
        kd.text[utt] = cs.text
        kd.utt2spk[utt] = job.speaker
        kd.utt2lang[utt] = cs.pair
        kd.utt2dur[utt] = round(dur, 3)
        kd.utt2sent[utt] = cs.sent_ids[0]
        sents = [table[s] for s in cs.sent_ids]
        for lang in sents[0].texts:
            if all(s.texts.get(lang) for s in sents):
                line = " ".join(" ".join(s.texts[lang].split()) for s in sents)
                kd.translations.setdefault(lang, {})[utt] = line
        kd.langtags[utt] = " ".join(cs.tags)
        extra["utt2cstype"][utt] = cs.cstype
        extra["utt2csmethod"][utt] = cs.method
        extra["utt2sents"][utt] = " ".join(cs.sent_ids)
    kd.write(out)
    for name, rows in extra.items():
        write_mapping(out / name, sorted(rows.items(), key=lambda kv: kv[0].encode()))
    check_langtags(out)
    return len(kd)


# --------------------------------------------------------------------------- the preparer


def _table_langs(path: Path) -> list[str]:
    with open(path, encoding="utf-8") as fh:
        header = fh.readline().rstrip("\r\n").split("\t")
    return header[2:]


def build_codeswitches(
    table: dict[str, Sentence],
    pair: str,
    *,
    splits: Sequence[str] = DEFAULT_SPLIT_NAMES,
    seed: int = 0,
    use_alignment: bool = True,
    config: SwitchConfig | None = None,
    report: PrepReport | None = None,
    align_cache: str | os.PathLike | None = None,
) -> list[CodeSwitch]:
    """Every code-switched utterance of one pair (no audio yet).

    Args:
        table: ``{sent_id: Sentence}`` (:func:`data_prep.synth.read_sentence_table`).
        use_alignment: align words with eflomal (``phrase`` switches and the clause check);
            without it no ``phrase`` switch is made.
        report: skip reasons are counted into it (see :func:`prepare_synthcs`).
        align_cache: where alignments are kept between runs (see :func:`split_alignments`).

    Returns:
        Utterances sorted by split, method and sentence ids.

    Raises:
        SynthError: a bad pair, or alignment fails.
    """
    cfg = config or SwitchConfig()
    a, b = parse_pair(pair)
    rep = report or PrepReport(corpus="synthcs", out_dir="")
    usable: list[Sentence] = []
    for sid in sorted(table):
        s = table[sid]
        if s.split not in splits:
            continue
        if not s.texts.get(a, "").split() or not s.texts.get(b, "").split():
            rep.skip("no_translation")
        elif _norm(s.texts[a].split()) == _norm(s.texts[b].split()):
            rep.skip("identical_text")
        else:
            usable.append(s)
    links: dict[str, Alignment] = {}
    if use_alignment and ("phrase" in cfg.methods or "clause" in cfg.methods):
        links = split_alignments(usable, pair, seed, align_cache)
    out: list[CodeSwitch] = []
    if "inter" in cfg.methods:
        pairs, unpaired = inter_pairs(usable, pair, seed)
        out.extend(make_inter(pair, x, y) for x, y in pairs)
        rep.skip("inter_unpaired", len(unpaired))
    for s in usable:
        if "clause" in cfg.methods:
            r = make_clause_switch(
                pair, s, links[s.sent_id].sym if s.sent_id in links else None, seed, cfg
            )
            if isinstance(r, str):
                rep.skip(r)
            else:
                out.append(r)
        if "phrase" in cfg.methods:
            if not use_alignment:
                rep.skip("phrase_no_aligner")
                continue
            r = make_phrase_switch(
                pair, s, links.get(s.sent_id, Alignment(frozenset(), frozenset())), seed, cfg
            )
            if isinstance(r, str):
                rep.skip(r)
            else:
                out.append(r)
    return sorted(out, key=lambda c: (c.split, c.method, c.sent_ids))


def prepare_synthcs(
    sentences: str | os.PathLike,
    out_dir: str | os.PathLike = "data",
    *,
    pairs: Sequence[str] = DEFAULT_PAIRS,
    splits: Sequence[str] = DEFAULT_SPLIT_NAMES,
    nj: int = 2,
    seed: int = 0,
    aligner: str = "auto",
    max_sentences: int | None = None,
    audio_dir: str | os.PathLike | None = None,
    sample_rate: int = 16000,
    config: SwitchConfig | None = None,
    voices: VoiceSpace | None = None,
    espeak_voices: dict[str, str] | None = None,
    executable: str = "espeak-ng",
    progress: bool | None = None,
    verbose: bool = False,
) -> PrepReport:
    """Build, speak and write code-switched Kaldi dirs ``synthcs_<pair>_<split>``.

    Args:
        sentences: the sentence table (``sent_id<TAB>split<TAB><lang>...``); its split is used
            unchanged, and an ``inter`` pair never joins two splits.
        out_dir: where the Kaldi dirs go.
        pairs: ``<matrix>-<embedded>`` pairs; both languages must be columns of the table.
        splits: which splits to build.
        nj: parallel espeak-ng jobs.
        seed: pairing, switch points, speakers and pauses are pure functions of it.
        aligner: ``auto`` (eflomal when installed), ``eflomal`` (required) or ``none``
            (clause-level and inter only).
        max_sentences: keep only the first N sentences (by id) of the chosen splits.
        audio_dir: WAV root; files go to ``<audio_dir>/synthcs/<pair>/`` (default
            ``<out_dir>/../wav``); existing valid files are reused.
        sample_rate: of the saved audio.
        config: switching and joining options (:class:`SwitchConfig`).
        voices: the speaker grid (default :class:`data_prep.synth.VoiceSpace`).
        espeak_voices: language -> espeak-ng voice (default ``ESPEAK_VOICES``).
        executable: the espeak-ng program.
        progress: show a tqdm bar (default: when stderr is a terminal).
        verbose: print the summary.

    Returns:
        A :class:`PrepReport` (corpus ``synthcs``): ``skipped`` counts candidates by reason
        (``no_translation``, ``identical_text``, ``inter_unpaired``, ``clause_single``,
        ``clause_mismatch``, ``clause_misaligned``, ``clause_same``, ``phrase_none``,
        ``phrase_no_aligner``, ``espeak_failed``, ``empty_audio``); ``extra["counts"]`` has
        utterances per pair, split and method, ``extra["skipped_by_pair"]`` the skips per pair.

    Raises:
        SynthError: a pair language is not a column of the table (the column is named), a bad
            pair or option, espeak-ng or a voice is missing, ``aligner="eflomal"`` without
            eflomal, or no utterance at all could be made.
    """
    t0 = time.perf_counter()
    cfg = config or SwitchConfig()
    out = Path(out_dir)
    pair_list = parse_list(pairs) or list(DEFAULT_PAIRS)
    split_list = parse_list(splits) or list(DEFAULT_SPLIT_NAMES)
    if nj < 1:
        raise SynthError(f"nj must be at least 1, got {nj}")
    if aligner not in ALIGNERS:
        raise SynthError(f"aligner must be one of {', '.join(ALIGNERS)}, got {aligner!r}")
    bad = [m for m in cfg.methods if m not in METHODS]
    if bad or not cfg.methods:
        raise SynthError(f"methods must be a non-empty subset of {METHODS}, got {cfg.methods}")
    lo, hi = cfg.pause_ms
    if not 0 <= lo <= hi:
        raise SynthError(f"pause_ms must be (min, max) with 0 <= min <= max, got {cfg.pause_ms}")
    if aligner == "eflomal" and not eflomal_available():
        raise SynthError("aligner='eflomal' but eflomal is not installed (pip install eflomal)")
    use_alignment = aligner != "none" and eflomal_available()
    langs = sorted({x for p in pair_list for x in parse_pair(p)})

    path = Path(sentences)
    table = read_sentence_table(path)
    columns = _table_langs(path)
    for p in pair_list:
        for lang in parse_pair(p):
            if lang not in columns:
                raise SynthError(
                    f"{path}: no column {lang!r} for pair {p} (columns: {', '.join(columns)}); "
                    f"prepare the table with it, e.g. speechx prepare fillets --text-langs "
                    f"{' '.join(dict.fromkeys([*columns, lang]))}"
                )
    exe = check_espeak(langs, executable, espeak_voices)
    ev = ESPEAK_VOICES if espeak_voices is None else espeak_voices
    chosen = [sid for sid in sorted(table) if table[sid].split in split_list]
    if max_sentences is not None:
        chosen = chosen[:max_sentences]
    table = {sid: table[sid] for sid in chosen}
    audio_root = Path(audio_dir) if audio_dir is not None else out.resolve().parent / "wav"
    report = PrepReport(corpus="synthcs", out_dir=str(out), n_sentences=len(table))

    jobs: list[_Job] = []
    by_pair: dict[str, dict[str, int]] = {}
    for p in pair_list:
        sub = PrepReport(corpus="synthcs", out_dir=str(out))
        css = build_codeswitches(
            table,
            p,
            splits=split_list,
            seed=seed,
            use_alignment=use_alignment,
            config=cfg,
            report=sub,
            align_cache=out / "local" / "synthcs_align",
        )
        for reason, n in sub.skipped.items():
            report.skip(reason, n)
        by_pair[p] = dict(sub.skipped)
        jobs.extend(_make_job(c, seed, audio_root, sample_rate, cfg, voices, ev) for c in css)

    edge = int(cfg.edge_ms * sample_rate / 1000)
    ran = run_jobs(
        lambda j: _run_job(j, sample_rate, edge, exe),
        jobs,
        report,
        nj=nj,
        progress=progress,
        desc="synthcs",
        unit="utt",
    )
    for job, status in ran.failed:
        by_pair[job.cs.pair][status] = by_pair[job.cs.pair].get(status, 0) + 1
    done: dict[tuple[str, str], list[tuple[_Job, float]]] = {}
    for job, dur in ran.done:
        done.setdefault((job.cs.pair, job.cs.split), []).append((job, dur))
    statuses = ran.statuses
    if not done:
        raise SynthError(f"no code-switched utterance could be made ({dict(report.skipped)})")

    counts: dict[str, dict[str, dict[str, int]]] = {}
    report.splits = {s: 0 for s in split_list}
    total = 0.0
    for (p, split), rows in sorted(done.items()):
        name = f"synthcs_{p}_{split}"
        report.dirs[name] = _write_dir(out / name, rows, table)
        report.splits[split] += len(rows)
        c = Counter(j.cs.method for j, _ in rows)
        counts.setdefault(p, {})[split] = {m: c[m] for m in cfg.methods}
        total += sum(d for _, d in rows)
    report.used = sum(report.dirs.values())
    report.hours = total / 3600.0
    report.extra = {
        "counts": counts,
        "skipped_by_pair": by_pair,
        "aligner": "eflomal" if use_alignment else "none",
        "synthesised": statuses["synthesised"],
        "reused": statuses["reused"],
        "audio_dir": str(audio_root / "synthcs"),
    }
    return report.finish(t0, verbose=verbose)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m data_prep.synth_codeswitch``: parse arguments, run :func:`prepare_synthcs`."""
    ap = prep_parser(
        "synth_codeswitch",
        "Build code-switched utterances (inter-sentential, clause- and "
        "phrase-level intra-sentential) from a parallel sentence table, speak them with "
        "espeak-ng and write Kaldi dirs synthcs_<pair>_<split> that reuse its split.",
    )
    ap.add_argument(
        "--sentences", default=None, help=f"sentence table (default: <out-dir>/{DEFAULT_SENTENCES})"
    )
    ap.add_argument(
        "--audio-dir",
        default=None,
        help="WAV root; files go to <audio-dir>/synthcs/<pair>/ (default: <out-dir>/../wav)",
    )
    ap.add_argument(
        "--pairs",
        nargs="+",
        default=None,
        help=f"matrix-embedded (default: {' '.join(DEFAULT_PAIRS)})",
    )
    ap.add_argument("--splits", nargs="+", default=None, help="default: train dev test")
    ap.add_argument("--methods", nargs="+", default=None, help=f"default: {' '.join(METHODS)}")
    ap.add_argument(
        "--aligner",
        choices=ALIGNERS,
        default="auto",
        help="word aligner for phrase switches (auto: eflomal when installed)",
    )
    ap.add_argument("--nj", type=int, default=2, help="parallel espeak-ng jobs (default: 2)")
    ap.add_argument("--seed", type=int, default=0, help="switching/speaker seed (default: 0)")
    ap.add_argument("--max-sentences", type=int, default=None, help="first N sentences only")
    ap.add_argument("--report-json", default=None, help="also write the report as JSON here")
    ap.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = ap.parse_args(argv)
    source = args.sentences or str(Path(args.out_dir) / DEFAULT_SENTENCES)
    cfg = SwitchConfig(methods=tuple(parse_list(args.methods) or METHODS))
    return run_preparer(
        lambda: prepare_synthcs(
            source,
            args.out_dir,
            pairs=args.pairs or DEFAULT_PAIRS,
            splits=args.splits or DEFAULT_SPLIT_NAMES,
            nj=args.nj,
            seed=args.seed,
            aligner=args.aligner,
            max_sentences=args.max_sentences,
            audio_dir=args.audio_dir,
            config=cfg,
            progress=not args.no_progress,
        ),
        report_json=args.report_json,
    )


if __name__ == "__main__":
    sys.exit(main())
