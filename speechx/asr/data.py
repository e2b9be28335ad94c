"""ASR training data: utterances of several Kaldi dirs with their CTC label sequences.

:class:`AsrData` has the attributes the training loop, the batch sampler and the feature cache
read (``ids``, ``index``, ``datasets``, ``durations``, ``langs``); items are the
:class:`~speechx.data.dataset.SpeechDataset` items plus ``labels`` (int64 token ids of the
normalised transcript) and ``index``.  Utterances whose transcript is empty after normalisation
are left out, with a warning.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from speechx.asr.vocab import Vocabulary
from speechx.data.dataset import MultiDirDataset, SpeechDataset, collate_audio
from speechx.data.kaldi import KaldiDir
from speechx.distill.errors import TrainingError

log = logging.getLogger("speechx.asr")


def read_transcripts(dirs: Sequence[str]) -> list[str]:
    """Every transcript of the data dirs (for building a vocabulary).

    Raises:
        speechx.errors.DataDirError: a dir cannot be read.
    """
    texts: list[str] = []
    for d in dirs:
        texts.extend(KaldiDir.read(d).text.values())
    return texts


class AsrData(MultiDirDataset):
    """Utterances with CTC labels, from one or more data dirs (a map-style torch Dataset).

    Args:
        dirs: Kaldi data dirs with a ``text`` file.
        vocab: turns transcripts into labels (after its normalisation).
        sample_rate: rate the audio is loaded at.
        max_duration: skip longer utterances (seconds); None keeps all.
        role: ``"train"`` / ``"dev"`` / ``"test"``, for messages.

    Raises:
        TrainingError: a dir has no utterance with a non-empty transcript.
        speechx.errors.DataDirError, speechx.errors.AudioError: unreadable data.
    """

    def __init__(
        self,
        dirs: Sequence[str],
        vocab: Vocabulary,
        *,
        sample_rate: int,
        max_duration: float | None = None,
        role: str = "train",
    ) -> None:
        super().__init__()
        self.dirs = [str(d) for d in dirs]
        self.vocab = vocab
        self.texts: list[str] = []
        self.labels: list[np.ndarray] = []
        for d in self.dirs:
            kdir = KaldiDir.read(d)
            keep, empty = [], []
            for utt in kdir.utt_ids:
                (keep if vocab.normalize(kdir.text.get(utt, "")) else empty).append(utt)
            if empty:
                log.warning(
                    "%s %s: %d utterances without a transcript left out (e.g. %s)",
                    role,
                    d,
                    len(empty),
                    empty[0],
                )
            if not keep:
                raise TrainingError(f"{d}: no utterance with a non-empty transcript ({role})")
            ds = SpeechDataset(
                kdir.subset(keep), sample_rate=sample_rate, max_duration=max_duration
            )
            self.add_dir(ds, kdir, Path(d).name)
            for utt in ds.ids:
                text = kdir.text[utt]
                self.texts.append(vocab.normalize(text))
                self.labels.append(np.asarray(vocab.encode(text), dtype=np.int64))
            log.info("%s %s: %d utterances, %.1f min", role, d, len(ds), sum(ds.durations) / 60)
        n_unk = sum(int((lab == vocab.unk_id).sum()) for lab in self.labels)
        if n_unk:
            log.warning("%s: %d characters outside the vocabulary map to <unk>", role, n_unk)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = super().__getitem__(i)
        item["labels"] = self.labels[i]
        return item


def _labels(items: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
    lens = [len(it["labels"]) for it in items]
    labels = torch.zeros(len(items), max(lens), dtype=torch.long)
    for row, it in enumerate(items):
        labels[row, : lens[row]] = torch.from_numpy(it["labels"])
    return {
        "labels": labels,
        "label_lengths": torch.tensor(lens, dtype=torch.long),
        "indices": torch.tensor([it["index"] for it in items], dtype=torch.long),
    }


def collate_asr(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``collate_audio`` plus ``labels`` (0-padded ``[B, L]``), ``label_lengths``, ``indices``."""
    return {**collate_audio(items), **_labels(items)}


class AsrFeatureData(Dataset):
    """:class:`AsrData` items with cached frozen-part features instead of audio.

    Items are ``features`` (float16 ``[F, H]``), ``seconds``, ``labels`` and ``index``.
    """

    def __init__(self, data: AsrData, store: Any) -> None:
        if store.ids != data.ids:
            raise TrainingError(f"{store.path}: feature store ids differ from the data set")
        self.data = data
        self.store = store
        self.durations = data.durations

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {
            "features": self.store.item(i),
            "seconds": float(self.data.durations[i]),
            "labels": self.data.labels[i],
            "index": i,
        }


def collate_asr_features(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Pad ``features`` into float16 ``[B, F, H]`` with ``frame_lengths``; labels as above."""
    from speechx.distill.features import pad_features

    return {**pad_features(items), **_labels(items)}
