"""Distillation targets: the teacher embedding each utterance is pulled toward.

A target is built from one or more teacher *fields* of a data dir, as written by
:func:`speechx.teachers.embed.embed_data_dir` under ``<data_dir>/teacher/<teacher_id>/``:

* ``"text"``: the transcript, in the spoken language (SAMU-XLSR);
* ``"text.en"``: a translation;
* ``["text", "text.en"]``: the L2-normalised mean of several;
* ``"speech"``: a speech teacher's embedding of the utterance itself, written under
  ``teacher/speech-<hash>/`` by :mod:`speechx.distill.speech_teacher` (no transcript needed).

An utterance lacking any of its fields (a NaN row, or absent from ``ids.txt``) has no target and is
dropped; the caller logs the count.

Sentence groups say which utterances must not be treated as negatives of each other in InfoNCE
(and which text candidates count as correct in dev retrieval): two utterances share a group when
they have the same ``utt2sent`` sentence id or the same target text.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from speechx.data.kaldi import KaldiDir
from speechx.distill.errors import TrainingError
from speechx.teachers.embed import load_teacher_embeddings


@dataclass
class TargetTable:
    """Targets of one data dir.

    Attributes:
        data_dir: the data dir.
        fields: teacher fields the targets were built from.
        ids: sorted utterance ids that have a target.
        vectors: float32 ``[len(ids), D]``, L2-normalised, row ``i`` for ``ids[i]``.
        dropped: utterance ids of the data dir without a target (missing field, NaN row).
    """

    data_dir: Path
    fields: list[str]
    ids: list[str]
    vectors: np.ndarray
    dropped: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._row = {u: i for i, u in enumerate(self.ids)}

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        """Embedding dimension."""
        return int(self.vectors.shape[1])

    def row(self, utt: str) -> int:
        """Row of ``utt`` in :attr:`vectors`; raises KeyError when it has no target."""
        return self._row[utt]

    def __contains__(self, utt: object) -> bool:
        return utt in self._row


def field_text(kdir: KaldiDir, utt: str, field_name: str) -> str | None:
    """The text behind a teacher field for ``utt`` (transcript or translation), or None (also
    for the ``speech`` field of a speech teacher, which has no text)."""
    if field_name == "text":
        return kdir.text.get(utt)
    if not field_name.startswith("text."):
        return None
    lang = field_name.split(".", 1)[1]
    return kdir.translations.get(lang, {}).get(utt)


def load_targets(
    data_dir: str | os.PathLike,
    teacher_id: str,
    fields: str | Sequence[str],
    *,
    utt_ids: Sequence[str] | None = None,
) -> TargetTable:
    """Load the targets of every utterance of ``data_dir`` (or of ``utt_ids``).

    Args:
        data_dir: a Kaldi data dir with ``teacher/<teacher_id>/`` embeddings.
        teacher_id: the teacher's id (its subdirectory name).
        fields: one field or several; several are averaged and re-normalised.
        utt_ids: utterances wanted (default: every utterance of the data dir).

    Returns:
        A :class:`TargetTable`; utterances without every field are listed in ``dropped``.

    Raises:
        TrainingError: ``fields`` is empty or the fields disagree in dimension.
        speechx.errors.TeacherError: (from the teacher layer) the embeddings are missing.
    """
    names = [fields] if isinstance(fields, str) else list(fields)
    if not names:
        raise TrainingError(f"{data_dir}: no target fields given")
    d = Path(data_dir)
    if utt_ids is None:
        utt_ids = KaldiDir.read(d).utt_ids
    wanted = sorted(set(utt_ids))
    acc: np.ndarray | None = None
    ok = np.ones(len(wanted), dtype=bool)
    for name in names:
        ids, arr = load_teacher_embeddings(d, teacher_id, name)
        arr = np.asarray(arr, dtype=np.float32)
        if acc is not None and arr.shape[1] != acc.shape[1]:
            raise TrainingError(
                f"{d}: teacher field {name!r} has dimension {arr.shape[1]}, "
                f"but {names[0]!r} has {acc.shape[1]}"
            )
        pos = {u: i for i, u in enumerate(ids)}
        rows = np.zeros((len(wanted), arr.shape[1]), dtype=np.float32)
        for j, u in enumerate(wanted):
            i = pos.get(u)
            if i is None or not np.all(np.isfinite(arr[i])):
                ok[j] = False
            else:
                rows[j] = arr[i] / max(float(np.linalg.norm(arr[i])), 1e-12)
        acc = rows if acc is None else acc + rows
    assert acc is not None
    norms = np.linalg.norm(acc, axis=1)
    ok &= norms > 1e-6  # e.g. two fields pointing in exactly opposite directions
    vectors = acc[ok] / norms[ok, None]
    return TargetTable(
        data_dir=d,
        fields=names,
        ids=[u for u, k in zip(wanted, ok, strict=True) if k],
        vectors=vectors.astype(np.float32),
        dropped=[u for u, k in zip(wanted, ok, strict=True) if not k],
    )


def sentence_groups(keys: Sequence[Sequence[str]]) -> np.ndarray:
    """Group items that share any key (union-find); returns int64 ``[N]`` group ids.

    Group ids are numbered 0.. in order of first appearance.

    >>> sentence_groups([["sent:1", "text:a"], ["sent:2", "text:b"], ["sent:3", "text:a"]]).tolist()
    [0, 1, 0]
    """
    parent = list(range(len(keys)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    owner: dict[str, int] = {}
    for i, ks in enumerate(keys):
        for k in ks:
            j = owner.setdefault(k, i)
            if j != i:
                ri, rj = find(i), find(j)
                if ri != rj:
                    parent[max(ri, rj)] = min(ri, rj)
    out = np.empty(len(keys), dtype=np.int64)
    number: dict[int, int] = {}
    for i in range(len(keys)):
        out[i] = number.setdefault(find(i), len(number))
    return out


def sentence_keys(kdir: KaldiDir, utt: str, fields: Sequence[str]) -> list[str]:
    """Keys that identify the sentence of ``utt``: its ``utt2sent`` id and its target text
    (none for the ``speech`` field, whose target is the utterance's own)."""
    keys = []
    if utt in kdir.utt2sent:
        keys.append(f"sent:{kdir.utt2sent[utt]}")
    texts = [field_text(kdir, utt, f) for f in fields]
    if all(t is not None for t in texts):
        keys.append("text:" + "\x1f".join(" ".join(t.split()) for t in texts))  # type: ignore[union-attr]
    return keys
