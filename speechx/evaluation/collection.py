"""Collections to mine (``speechx mine --src SPEC --tgt SPEC``): what a SPEC names and how it is
embedded.

A SPEC is ``KIND:PATH`` or a bare ``PATH``:

==================  =====================================================================
``speech:DIR``      the utterances of Kaldi data dir DIR, embedded by the speech encoder
                    (``--model``); the transcripts are shown beside them when DIR has a
                    ``text`` file
``text:DIR``        DIR's transcripts (its ``text`` file), embedded by the text teacher
``text.LANG:DIR``   DIR's ``text.LANG`` translations, embedded by the text teacher
``emb:PATH``        precomputed embeddings: a ``speechx encode`` dir (``embeddings.npy`` +
                    ``ids.txt``), or one field of ``speechx teacher-embed``
                    (``DIR/teacher/<id>/<field>.npy`` with ``ids.txt`` beside it; the texts
                    come from DIR when it is there, and rows of utterances without the field
                    are left out)
``file:PATH``       a UTF-8 text file, one sentence per line, embedded by the text teacher;
                    ids are the line numbers (from 1), or, when every non-blank line has a
                    tab, ``id<TAB>sentence``. Blank lines are skipped
``PATH``            a ``.npy`` file or a dir with ``embeddings.npy`` is ``emb:PATH``; another
                    file is ``file:PATH``; a Kaldi dir must say which view it means
==================  =====================================================================

Ids are unique within a collection. With ``unify`` a text collection keeps one row per distinct
text (blanks collapsed): the first id that has it (LASER's ``--unify``).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from speechx.data.kaldi import KaldiDir
from speechx.errors import MiningError, SpeechxError
from speechx.evaluation.speech_retrieval import audio_inputs
from speechx.teachers.embed import field_texts

logger = logging.getLogger(__name__)

KINDS = ("speech", "text", "emb", "file")
_TEXT_FIELD = re.compile(r"^text(\.[A-Za-z][A-Za-z0-9_-]*)?$")


class _Encoder(Protocol):
    def encode(self, inputs: Sequence[Any], batch_size: int = 16) -> np.ndarray: ...


class _Teacher(Protocol):
    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray: ...


@dataclass(frozen=True)
class CollectionSpec:
    """A parsed SPEC.

    Attributes:
        spec: the SPEC as given (used in messages and results).
        kind: ``speech``, ``text`` (a field of a Kaldi dir), ``emb`` or ``file``.
        path: the dir or file.
        field: ``text`` or ``text.<lang>`` for ``text`` (and the transcript field of
            ``speech``); ``None`` otherwise.
    """

    spec: str
    kind: str
    path: Path
    field: str | None = None

    @property
    def needs_encoder(self) -> bool:
        """Whether embedding it needs the speech encoder."""
        return self.kind == "speech"

    @property
    def needs_teacher(self) -> bool:
        """Whether embedding it needs the text teacher."""
        return self.kind in ("text", "file")


@dataclass
class Collection:
    """One side of a mining job.

    Attributes:
        name: the SPEC it came from.
        ids: one unique id per row.
        embeddings: float32 ``[N, D]``.
        texts: the text of each row when known (``None`` for a row without one), else ``None``.
    """

    name: str
    ids: list[str]
    embeddings: np.ndarray
    texts: list[str | None] | None = None

    def __len__(self) -> int:
        return len(self.ids)


def parse_spec(spec: str) -> CollectionSpec:
    """Parse a SPEC (see the module docstring).

    Returns:
        The :class:`CollectionSpec`.

    Raises:
        MiningError: an empty SPEC, a bare path that does not exist, or a Kaldi dir given
            without saying whether its speech or which of its texts is meant.
    """
    if not spec:
        raise MiningError("empty collection spec; expected KIND:PATH or PATH")
    kind, sep, rest = spec.partition(":")
    if sep and rest:
        if kind == "speech":
            return CollectionSpec(spec, "speech", Path(rest), "text")
        if _TEXT_FIELD.match(kind):
            return CollectionSpec(spec, "text", Path(rest), kind)
        if kind in ("emb", "file"):
            return CollectionSpec(spec, kind, Path(rest))
    path = Path(spec)
    if path.is_dir():
        if (path / "embeddings.npy").is_file():
            return CollectionSpec(spec, "emb", path)
        if (path / "wav.scp").is_file() or (path / "text").is_file():
            raise MiningError(
                f"{spec}: a Kaldi data dir; say which view to mine: speech:{spec}, text:{spec} "
                f"or text.<lang>:{spec}"
            )
        raise MiningError(f"{spec}: a dir without embeddings.npy and not a Kaldi data dir")
    if path.is_file():
        return CollectionSpec(spec, "emb" if path.suffix == ".npy" else "file", path)
    if sep and kind and not kind.startswith(("/", ".")):
        raise MiningError(
            f"{spec}: unknown collection kind {kind!r}; expected speech:, text:, text.<lang>:, "
            "emb: or file:"
        )
    raise MiningError(f"{spec}: no such file or directory")


def load_collection(
    spec: CollectionSpec | str,
    *,
    encoder: _Encoder | None = None,
    teacher: _Teacher | None = None,
    sample_rate: int = 16000,
    batch_size: int = 16,
    text_batch_size: int = 64,
    unify: bool = False,
) -> Collection:
    """Read and embed the collection that ``spec`` names.

    Args:
        spec: a SPEC string or a parsed one.
        encoder: a speech encoder (``.encode(inputs, batch_size=...)``), for ``speech:``.
        teacher: a text teacher (``.encode(texts, batch_size=...)``), for ``text:`` and files.
        sample_rate: the encoder's sample rate (segments are cut at it).
        batch_size, text_batch_size: encoder and teacher batch sizes.
        unify: text collections keep one row per distinct text.

    Returns:
        The :class:`Collection`, with float32 embeddings.

    Raises:
        MiningError: a missing path or file, no encoder for speech or no teacher for text, a
            collection with no rows, duplicate ids, or embeddings that do not match their ids.
        DataDirError: a Kaldi dir that cannot be read.
    """
    s = parse_spec(spec) if isinstance(spec, str) else spec
    if s.kind == "emb":
        coll = _load_embeddings(s)
    elif s.kind == "speech":
        coll = _load_speech(s, encoder, sample_rate, batch_size)
    else:
        ids, texts = _read_kaldi_texts(s) if s.kind == "text" else read_sentences(s.path)
        if unify:
            ids, texts = unify_texts(ids, texts, s.spec)
        if teacher is None:
            raise MiningError(f"{s.spec}: texts need a text teacher (--teacher) to embed them")
        _check_nonempty(ids, s.spec)
        logger.info("%s: embedding %d texts", s.spec, len(texts))
        emb = np.asarray(teacher.encode(texts, batch_size=text_batch_size), dtype=np.float32)
        coll = Collection(s.spec, ids, emb, list(texts))
    _check_nonempty(coll.ids, s.spec)
    dup = _first_duplicate(coll.ids)
    if dup is not None:
        raise MiningError(f"{s.spec}: the id {dup!r} occurs more than once")
    if coll.embeddings.ndim != 2 or coll.embeddings.shape[0] != len(coll.ids):
        raise MiningError(
            f"{s.spec}: {len(coll.ids)} ids but embeddings of shape {coll.embeddings.shape}"
        )
    return coll


def read_sentences(path: str | os.PathLike) -> tuple[list[str], list[str]]:
    """The sentences of a text file (see ``file:`` in the module docstring).

    Returns:
        ``(ids, sentences)`` with blanks collapsed.

    Raises:
        MiningError: the file is missing or not UTF-8, or an id repeats (naming its line).
    """
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise MiningError(f"{p}: no such file") from None
    except UnicodeDecodeError as exc:
        raise MiningError(f"{p}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    numbered = [(n, line) for n, line in enumerate(lines, 1) if line.strip()]
    tabbed = bool(numbered) and all("\t" in line for _, line in numbered)
    ids: list[str] = []
    texts: list[str] = []
    seen: dict[str, int] = {}
    for n, line in numbered:
        if tabbed:
            uid, text = (x.strip() for x in line.split("\t", 1))
            if not uid:
                raise MiningError(f"{p}:{n}: an empty id before the tab")
            if uid in seen:
                raise MiningError(f"{p}:{n}: the id {uid!r} was already used on line {seen[uid]}")
            seen[uid] = n
        else:
            uid, text = str(n), line
        ids.append(uid)
        texts.append(" ".join(text.split()))
    return ids, texts


def unify_texts(
    ids: Sequence[str], texts: Sequence[str], name: str = "texts"
) -> tuple[list[str], list[str]]:
    """One row per distinct text (blanks collapsed): the first id that has it.

    Returns:
        ``(ids, texts)`` in the order of first occurrence.
    """
    first: dict[str, str] = {}
    for uid, t in zip(ids, texts, strict=True):
        first.setdefault(" ".join(t.split()), uid)
    if len(first) < len(ids):
        logger.info(
            "%s: %d repeated texts unified (%d left)", name, len(ids) - len(first), len(first)
        )
    return list(first.values()), list(first)


def write_pairs_tsv(
    path: str | os.PathLike | None,
    pairs: Sequence[Any],
    src: Collection,
    tgt: Collection,
) -> str:
    """Render mined pairs as TSV and write it atomically to ``path`` (``None``: do not write).

    The header is ``src_id tgt_id score``, then ``src_text tgt_text`` when either side has
    texts (an unknown text is left empty; tabs and line breaks in texts become spaces). Scores
    have 6 decimals.

    Args:
        pairs: :class:`speechx.mining.MinedPair` objects (``src_index``, ``tgt_index``,
            ``src_id``, ``tgt_id``, ``score``).

    Returns:
        The TSV text.
    """
    with_text = src.texts is not None or tgt.texts is not None
    cols = ["src_id", "tgt_id", "score"] + (["src_text", "tgt_text"] if with_text else [])
    lines = ["\t".join(cols)]
    for p in pairs:
        row = [p.src_id, p.tgt_id, f"{p.score:.6f}"]
        if with_text:
            row += [_cell(src.texts, p.src_index), _cell(tgt.texts, p.tgt_index)]
        lines.append("\t".join(row))
    text = "\n".join(lines) + "\n"
    if path is not None:
        from speechx.data.kaldi import atomic_write_text

        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out, text)
    return text


# ------------------------------------------------------------------------- helpers
def _cell(texts: list[str | None] | None, i: int) -> str:
    if texts is None or texts[i] is None:
        return ""
    return " ".join(str(texts[i]).split())


def _check_nonempty(ids: Sequence[str], name: str) -> None:
    if not ids:
        raise MiningError(f"{name}: the collection is empty (nothing to mine)")


def _first_duplicate(ids: Sequence[str]) -> str | None:
    seen: set[str] = set()
    for i in ids:
        if i in seen:
            return i
        seen.add(i)
    return None


def _read_dir(s: CollectionSpec) -> KaldiDir:
    if not s.path.is_dir():
        raise MiningError(f"{s.spec}: {s.path} is not a directory")
    return KaldiDir.read(s.path)


def _read_kaldi_texts(s: CollectionSpec) -> tuple[list[str], list[str]]:
    kdir = _read_dir(s)
    assert s.field is not None
    mapping = field_texts(kdir, s.field)
    if not mapping:
        have = ["text"] * bool(kdir.text) + [f"text.{lang}" for lang in kdir.languages]
        raise MiningError(
            f"{s.spec}: {s.path} has no {s.field} lines (its texts: {', '.join(have) or 'none'})"
        )
    ids = [u for u in kdir.utt_ids if mapping.get(u, "").strip()]
    return ids, [" ".join(mapping[u].split()) for u in ids]


def _load_speech(
    s: CollectionSpec, encoder: _Encoder | None, sample_rate: int, batch_size: int
) -> Collection:
    if encoder is None:
        raise MiningError(f"{s.spec}: speech needs a speech encoder (--model MODEL_DIR)")
    kdir = _read_dir(s)
    ids = kdir.utt_ids
    _check_nonempty(ids, s.spec)
    logger.info("%s: encoding %d utterances", s.spec, len(ids))
    emb = np.asarray(
        encoder.encode(audio_inputs(kdir, ids, sample_rate), batch_size=batch_size),
        dtype=np.float32,
    )
    texts = [kdir.text.get(u) for u in ids] if kdir.text else None
    return Collection(s.spec, ids, emb, texts)


def _load_embeddings(s: CollectionSpec) -> Collection:
    p = s.path
    if p.is_dir():
        arr_path, ids_path = p / "embeddings.npy", p / "ids.txt"
    else:
        arr_path, ids_path = p, p.parent / "ids.txt"
    for f in (arr_path, ids_path):
        if not f.is_file():
            raise MiningError(
                f"{s.spec}: {f} not found (expected a `speechx encode` dir or a "
                "`speechx teacher-embed` <field>.npy with ids.txt beside it)"
            )
    ids = ids_path.read_text(encoding="utf-8").split()
    try:
        emb = np.load(arr_path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise MiningError(f"{s.spec}: cannot read {arr_path}: {exc}") from None
    if emb.ndim != 2 or emb.shape[0] != len(ids):
        raise MiningError(f"{s.spec}: {len(ids)} ids in {ids_path} but {arr_path} is {emb.shape}")
    texts = _teacher_field_texts(arr_path, ids) if p.suffix == ".npy" else None
    keep = np.flatnonzero(np.isfinite(emb).all(axis=1))
    if keep.size < len(ids):
        # teacher-embed writes NaN rows for utterances without the field
        logger.info("%s: %d rows without an embedding left out", s.spec, len(ids) - keep.size)
        ids = [ids[i] for i in keep]
        texts = [texts[i] for i in keep] if texts is not None else None
        emb = emb[keep]
    return Collection(s.spec, ids, np.asarray(emb, dtype=np.float32), texts)


def _teacher_field_texts(arr_path: Path, ids: list[str]) -> list[str | None] | None:
    """The texts of a ``<data_dir>/teacher/<id>/<field>.npy``, when the data dir is there."""
    field = arr_path.stem
    data_dir = arr_path.parent.parent.parent
    if arr_path.parent.parent.name != "teacher" or not _TEXT_FIELD.match(field):
        return None
    try:
        mapping = field_texts(KaldiDir.read(data_dir), field)
    except (SpeechxError, OSError):  # the texts are a courtesy: an unreadable dir has none
        logger.info("%s: no readable data dir for its texts", arr_path)
        return None
    return [mapping.get(u) for u in ids]
