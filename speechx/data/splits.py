"""Sentence-level splits: every rendition of one sentence lands in the same split.

A test sentence must never be trained on, in any language or modality, so speechx splits by
*sentence id* (the ``utt2sent`` file of a Kaldi dir), never by utterance.  The assignment is a
pure function of ``(seed, sentence id)``: ids are ordered by a keyed hash and cut exactly at the
requested ratios, so it does not depend on input order and is the same on every machine.

>>> assignment = split_sentences(["s1", "s2", "s3", "s4"], ratios=(0.5, 0.25, 0.25))
>>> sorted(assignment.values())
['dev', 'test', 'train', 'train']
>>> train = subset_by_split(kdir, assignment, "train")          # doctest: +SKIP
>>> check_no_leak(["data/a_train"], ["data/a_test"])            # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from speechx.data.kaldi import KaldiDir
from speechx.errors import SpeechxError

DEFAULT_RATIOS: tuple[float, ...] = (0.8, 0.1, 0.1)
DEFAULT_SPLIT_NAMES: tuple[str, ...] = ("train", "dev", "test")

KaldiDirLike = KaldiDir | str | os.PathLike


class SplitError(SpeechxError, ValueError):
    """A split request that cannot be met (bad ratios, a dir without ``utt2sent``, ...)."""


class SentenceLeakError(SplitError):
    """A sentence id occurs both in a training dir and in an evaluation dir."""


def sentence_key(sentence_id: str, seed: int = 0) -> bytes:
    """The keyed hash that orders sentences for splitting (blake2b, keyed by ``seed``).

    Returns:
        16 bytes; sorting by them gives a seed-dependent pseudo-random order of ids.
    """
    key = str(int(seed)).encode("ascii")
    return hashlib.blake2b(sentence_id.encode("utf-8"), digest_size=16, key=key).digest()


def split_sentences(
    sentence_ids: Iterable[str],
    ratios: Sequence[float] = DEFAULT_RATIOS,
    names: Sequence[str] = DEFAULT_SPLIT_NAMES,
    seed: int = 0,
) -> dict[str, str]:
    """Assign every sentence id to one split.

    Ids are deduplicated, ordered by :func:`sentence_key` and cut so that split ``i`` gets
    ``round(cum_i * n) - round(cum_{i-1} * n)`` ids, where ``cum_i`` is the sum of the first
    ``i + 1`` ratios.  The result is independent of the order (and repetitions) of the input.

    Args:
        sentence_ids: the ids to split (any iterable of strings, duplicates allowed).
        ratios: one non-negative fraction per split name, summing to 1.
        names: split names, unique.
        seed: changes the order, hence the assignment.

    Returns:
        ``{sentence_id: split_name}`` for every distinct id.

    Raises:
        SplitError: ratios and names differ in length, a ratio is negative or not finite,
            the ratios do not sum to 1 (within 1e-6), or names repeat.
    """
    ratios = [float(r) for r in ratios]
    names = list(names)
    if len(ratios) != len(names):
        raise SplitError(f"split ratios {ratios} and names {names} differ in length")
    if len(set(names)) != len(names):
        raise SplitError(f"split names repeat: {names}")
    if any(not math.isfinite(r) or r < 0 for r in ratios):
        raise SplitError(f"split ratios must be finite and non-negative, got {ratios}")
    if abs(sum(ratios) - 1.0) > 1e-6:
        raise SplitError(f"split ratios must sum to 1, got {ratios} (sum {sum(ratios):g})")
    ids = sorted(set(sentence_ids), key=lambda s: (sentence_key(s, seed), s))
    n = len(ids)
    out: dict[str, str] = {}
    start, cum = 0, 0.0
    for i, (name, ratio) in enumerate(zip(names, ratios, strict=True)):
        cum += ratio
        stop = n if i == len(names) - 1 else min(n, int(math.floor(cum * n + 0.5)))
        for sid in ids[start:stop]:
            out[sid] = name
        start = max(start, stop)
    return out


def _as_kdir(kdir: KaldiDirLike) -> KaldiDir:
    return kdir if isinstance(kdir, KaldiDir) else KaldiDir.read(kdir)


def _name(kdir: KaldiDirLike) -> str:
    return "<in-memory KaldiDir>" if isinstance(kdir, KaldiDir) else str(kdir)


def _require_utt2sent(kdir: KaldiDir, name: str) -> None:
    if len(kdir) and not kdir.utt2sent:
        raise SplitError(
            f"{name}: no utt2sent (utterance -> sentence id); cannot split by sentence"
        )
    missing = [u for u in kdir.utt_ids if u not in kdir.utt2sent]
    if missing:
        raise SplitError(
            f"{name}: {len(missing)} utterance(s) have no utt2sent entry, e.g. {missing[0]!r}"
        )


def subset_by_split(kdir: KaldiDirLike, assignment: Mapping[str, str], split: str) -> KaldiDir:
    """The utterances of ``kdir`` whose sentence is assigned to ``split``.

    Args:
        kdir: a :class:`KaldiDir` or the path of one; it must have ``utt2sent``.
        assignment: ``{sentence_id: split}``, e.g. from :func:`split_sentences`.
        split: the split to keep.

    Returns:
        A new :class:`KaldiDir` (possibly empty).

    Raises:
        SplitError: an utterance has no sentence id, or its sentence id is not in
            ``assignment`` (the utterance and sentence are named).
    """
    name = _name(kdir)
    kd = _as_kdir(kdir)
    _require_utt2sent(kd, name)
    keep = []
    for utt in kd.utt_ids:
        sid = kd.utt2sent[utt]
        if sid not in assignment:
            raise SplitError(
                f"{name}: sentence {sid!r} of utterance {utt!r} has no split in the assignment"
            )
        if assignment[sid] == split:
            keep.append(utt)
    return kd.subset(keep)


def subset_by_language(kdir: KaldiDirLike, langs: str | Iterable[str]) -> KaldiDir:
    """The utterances of ``kdir`` whose speech language (``utt2lang``) is in ``langs``.

    Returns:
        A new :class:`KaldiDir` (possibly empty).

    Raises:
        SplitError: ``kdir`` has utterances but no ``utt2lang``, or some utterance lacks one.
    """
    name = _name(kdir)
    kd = _as_kdir(kdir)
    wanted = {langs} if isinstance(langs, str) else set(langs)
    missing = [u for u in kd.utt_ids if u not in kd.utt2lang]
    if missing:
        raise SplitError(
            f"{name}: {len(missing)} utterance(s) have no utt2lang entry, e.g. {missing[0]!r}"
        )
    return kd.subset(u for u in kd.utt_ids if kd.utt2lang[u] in wanted)


def first_n(kdir: KaldiDirLike, n: int) -> KaldiDir:
    """The first ``n`` utterances of ``kdir`` in sorted id order (all of them if fewer).

    Raises:
        SplitError: ``n`` is negative.
    """
    if n < 0:
        raise SplitError(f"first_n needs n >= 0, got {n}")
    kd = _as_kdir(kdir)
    return kd.subset(kd.utt_ids[:n])


def sentence_ids(kdir: KaldiDirLike) -> set[str]:
    """The set of sentence ids (``utt2sent`` values) of the utterances of ``kdir``.

    Raises:
        SplitError: ``kdir`` has utterances without a sentence id.
    """
    name = _name(kdir)
    kd = _as_kdir(kdir)
    _require_utt2sent(kd, name)
    return {kd.utt2sent[u] for u in kd.utt_ids}


def check_no_leak(
    train_dirs: Iterable[KaldiDirLike], test_dirs: Iterable[KaldiDirLike]
) -> dict[str, int]:
    """Check that no sentence id of any training dir occurs in any evaluation dir.

    Args:
        train_dirs: dirs (paths or :class:`KaldiDir`) that will be trained on.
        test_dirs: dirs that will be evaluated on (dev and test).

    Returns:
        ``{"train_sentences": n, "test_sentences": m}``: distinct sentence ids on each side.

    Raises:
        SentenceLeakError: a sentence id is on both sides; the message names how many, a few
            of them, and the dirs they come from.
        SplitError: a dir has utterances without ``utt2sent``.
    """
    train_owner: dict[str, str] = {}
    for d in train_dirs:
        for sid in sentence_ids(d):
            train_owner.setdefault(sid, _name(d))
    leaks: dict[str, tuple[str, str]] = {}
    test_all: set[str] = set()
    for d in test_dirs:
        ids = sentence_ids(d)
        test_all |= ids
        for sid in ids & train_owner.keys():
            leaks.setdefault(sid, (train_owner[sid], _name(d)))
    if leaks:
        examples = "; ".join(
            f"{sid!r} in {tr} and {te}" for sid, (tr, te) in sorted(leaks.items())[:3]
        )
        raise SentenceLeakError(
            f"{len(leaks)} sentence id(s) occur in both training and evaluation dirs: {examples}"
        )
    return {"train_sentences": len(train_owner), "test_sentences": len(test_all)}


def read_assignment(path: str | os.PathLike) -> dict[str, str]:
    """Read a ``sent_id<TAB>split[<TAB>...]`` table with a header row (as data_prep writes).

    Returns:
        ``{sentence_id: split}``.

    Raises:
        SplitError: the file is missing, has no ``sent_id``/``split`` header, or repeats an id.
    """
    p = Path(path)
    if not p.is_file():
        raise SplitError(f"{p}: sentence table not found")
    lines = p.read_text(encoding="utf-8").splitlines()
    header = lines[0].split("\t") if lines else []
    if header[:2] != ["sent_id", "split"]:
        raise SplitError(f"{p}: expected a header starting with 'sent_id<TAB>split'")
    out: dict[str, str] = {}
    for no, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) < 2 or not cols[0] or not cols[1]:
            raise SplitError(f"{p}:{no}: expected 'sent_id<TAB>split', got {line[:80]!r}")
        if cols[0] in out:
            raise SplitError(f"{p}:{no}: duplicate sentence id {cols[0]!r}")
        out[cols[0]] = cols[1]
    return out
