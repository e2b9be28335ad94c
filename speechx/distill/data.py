"""Training and dev data for distillation: several data dirs, each with its own targets.

:func:`build_distill_data` reads every data dir, loads its targets
(:func:`speechx.distill.targets.load_targets`), drops utterances without one, and concatenates
them into one :class:`DistillData` whose items are the :class:`speechx.data.dataset.SpeechDataset`
items plus ``target`` (float32 ``[D]``) and ``group`` (sentence group).  :func:`collate_distill`
batches them for the model.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from speechx.data.dataset import MultiDirDataset, SpeechDataset, collate_audio
from speechx.data.kaldi import KaldiDir
from speechx.distill.config import SPEECH_FIELD
from speechx.distill.errors import TrainingError
from speechx.distill.targets import TargetTable, load_targets, sentence_groups, sentence_keys

log = logging.getLogger("speechx.distill")


@dataclass
class SourceSpec:
    """A resolved data source: the dir, the teacher id and the fields of its targets."""

    dir: str
    teacher_id: str
    fields: list[str]


class DistillData(MultiDirDataset):
    """Utterances of several data dirs with their targets (a map-style torch Dataset).

    Attributes:
        sources: one :class:`SourceSpec` per data dir.
        datasets: one ``SpeechDataset`` per data dir (only utterances with a target).
        targets: one :class:`TargetTable` per data dir.
        index: ``(source, item)`` of every global item.
        ids: ``"<dir name>/<utt>"`` of every item (unique across dirs).
        utt_ids: the plain utterance id of every item.
        durations: seconds per item.
        langs: ``utt2lang`` per item (``"und"`` when unknown).
        groups: int64 sentence group per item (shared ``utt2sent`` id or target text).
    """

    def __init__(
        self,
        sources: Sequence[SourceSpec],
        datasets: Sequence[SpeechDataset],
        targets: Sequence[TargetTable],
        kdirs: Sequence[KaldiDir],
    ) -> None:
        super().__init__()
        self.sources = list(sources)
        self.targets = list(targets)
        self._rows: list[int] = []
        keys: list[list[str]] = []
        for src, ds, tab, kdir in zip(self.sources, datasets, self.targets, kdirs, strict=True):
            name = Path(src.dir).name
            self.add_dir(ds, kdir, name)
            for utt in ds.ids:
                self._rows.append(tab.row(utt))
                keys.append(sentence_keys(kdir, utt, src.fields) or [f"utt:{name}/{utt}"])
        self.groups = sentence_groups(keys)

    @property
    def dim(self) -> int:
        """Target dimension."""
        return self.targets[0].dim

    def target(self, i: int) -> np.ndarray:
        """Target vector (float32 ``[D]``) of item ``i``."""
        s, _ = self.index[i]
        return self.targets[s].vectors[self._rows[i]]

    def target_matrix(self) -> np.ndarray:
        """Targets of every item, float32 ``[N, D]``."""
        return (
            np.stack([self.target(i) for i in range(len(self))])
            if len(self)
            else np.zeros((0, self.dim), dtype=np.float32)
        )

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = super().__getitem__(i)
        item["target"] = self.target(i)
        item["group"] = int(self.groups[i])
        return item


def collate_distill(items: list[dict[str, Any]]) -> dict[str, Any]:
    """``collate_audio`` plus ``targets`` float32 ``[B, D]``, ``groups`` and ``indices`` long ``[B]``."""
    batch = collate_audio(items)
    batch["targets"] = torch.from_numpy(np.stack([it["target"] for it in items]).astype(np.float32))
    batch["groups"] = torch.tensor([it["group"] for it in items], dtype=torch.long)
    batch["indices"] = torch.tensor([it["index"] for it in items], dtype=torch.long)
    return batch


def build_distill_data(
    sources: Sequence[SourceSpec],
    *,
    sample_rate: int,
    max_duration: float | None = None,
    role: str = "train",
) -> DistillData:
    """Read the data dirs and their targets, dropping utterances without a target.

    Args:
        sources: data dirs with their teacher id and target fields.
        sample_rate: rate the audio is loaded at (the model's).
        max_duration: skip utterances longer than this (seconds); None keeps all.
        role: ``"train"`` or ``"dev"``, for log messages.

    Returns:
        The concatenated :class:`DistillData`.

    Raises:
        TrainingError: a data dir has no utterance with a target, or the teacher dimensions of
            the data dirs differ.
        speechx.errors.DataDirError, speechx.errors.TeacherError: unreadable data or embeddings.
    """
    datasets, tables, kdirs = [], [], []
    for src in sources:
        kdir = KaldiDir.read(src.dir)
        table = load_targets(src.dir, src.teacher_id, src.fields, utt_ids=kdir.utt_ids)
        if table.dropped:
            log.warning(
                "%s %s: dropped %d of %d utterances without a %s target (e.g. %s)",
                role,
                src.dir,
                len(table.dropped),
                len(kdir),
                "+".join(src.fields),
                table.dropped[0],
            )
        if not len(table):
            raise TrainingError(
                f"{src.dir}: no utterance has a teacher target for field(s) "
                f"{'+'.join(src.fields)} of teacher {src.teacher_id!r}"
            )
        if tables and table.dim != tables[0].dim:
            raise TrainingError(
                f"{src.dir}: teacher dimension {table.dim} differs from "
                f"{tables[0].data_dir} ({tables[0].dim})"
            )
        sub = kdir.subset(table.ids)
        ds = SpeechDataset(sub, sample_rate=sample_rate, max_duration=max_duration)
        skipped = len(table) - len(ds.ids)
        if skipped:
            log.warning(
                "%s %s: %d utterances longer than %.1f s skipped",
                role,
                src.dir,
                skipped,
                max_duration or 0.0,
            )
        log.info(
            "%s %s: %d utterances, %.1f min", role, src.dir, len(ds.ids), sum(ds.durations) / 60
        )
        datasets.append(ds)
        tables.append(table)
        kdirs.append(kdir)
    data = DistillData(sources, datasets, tables, kdirs)
    if not len(data):
        raise TrainingError(f"{role}: no utterances left in {[s.dir for s in sources]}")
    return data


def resolve_sources(
    sources: Sequence[Any],
    teacher_id: str,
    default_fields: Sequence[str],
    *,
    speech_teacher_id: str | None = None,
) -> list[SourceSpec]:
    """Fill in a config's per-source defaults (``DataSource`` -> :class:`SourceSpec`).

    A source whose fields are ``["speech"]`` takes ``speech_teacher_id`` (the id of
    ``data.speech_teacher``) unless it names its own ``teacher_id``.

    Raises:
        TrainingError: a ``speech`` source without a speech teacher id.
    """
    out = []
    for src in sources:
        fields = list(src.fields or default_fields)
        tid = src.teacher_id or teacher_id
        if fields == [SPEECH_FIELD] and not src.teacher_id:
            if speech_teacher_id is None:
                raise TrainingError(f"{src.dir}: fields [{SPEECH_FIELD}] need a speech teacher")
            tid = speech_teacher_id
        out.append(SourceSpec(dir=os.fspath(src.dir), teacher_id=tid, fields=fields))
    return out
