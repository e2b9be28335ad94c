"""Unlabelled pretraining data: the utterances of several Kaldi dirs (no transcript needed).

:class:`PretrainData` has what the shared training loop and its batch sampler read (``ids``,
``index``, ``datasets``, ``durations``, ``langs``); items are
:class:`~speechx.data.dataset.SpeechDataset` items plus ``index``.  Utterances too short to give
the frames one masked span needs are left out with a warning (the mask sampler needs at least
``masking.length`` real frames, and two masked frames, per utterance).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from speechx.data.dataset import MultiDirDataset, SpeechDataset, collate_audio
from speechx.data.kaldi import KaldiDir
from speechx.distill.errors import TrainingError

log = logging.getLogger("speechx.distill.pretrain")  # into the run's train.log

#: Seconds added to the shortest usable duration: ``utt2dur`` is rounded.
_DURATION_MARGIN = 0.01


class PretrainData(MultiDirDataset):
    """Utterances of one or more data dirs (a map-style torch Dataset; items and attributes as
    in :class:`~speechx.data.dataset.MultiDirDataset`).

    Args:
        dirs: Kaldi data dirs.
        sample_rate: rate the audio is loaded at.
        max_duration: skip longer utterances (seconds); None keeps all.
        min_samples: skip utterances with fewer samples than this (at ``sample_rate``).
        role: ``"train"`` / ``"dev"``, for messages.

    Raises:
        TrainingError: a dir has no usable utterance.
        speechx.errors.DataDirError, speechx.errors.AudioError: unreadable data.
    """

    def __init__(
        self,
        dirs: Sequence[str],
        *,
        sample_rate: int,
        max_duration: float | None = None,
        min_samples: int = 1,
        role: str = "train",
    ) -> None:
        super().__init__()
        self.dirs = [str(d) for d in dirs]
        self.sample_rate = int(sample_rate)
        min_seconds = min_samples / self.sample_rate + _DURATION_MARGIN
        for d in self.dirs:
            kdir = KaldiDir.read(d)
            ds = SpeechDataset(kdir, sample_rate=self.sample_rate, max_duration=max_duration)
            short = [u for u, dur in zip(ds.ids, ds.durations, strict=True) if dur < min_seconds]
            if short:
                log.warning(
                    "%s %s: %d utterances shorter than %.3f s (too few frames to mask) left "
                    "out (e.g. %s)",
                    role,
                    d,
                    len(short),
                    min_seconds,
                    short[0],
                )
                dropped = set(short)
                keep = [u for u in ds.ids if u not in dropped]
                ds = SpeechDataset(kdir.subset(keep), sample_rate=self.sample_rate)
            if len(ds) == 0:
                raise TrainingError(
                    f"{d}: no usable utterance for {role} (all shorter than {min_seconds:.3f} s"
                    + (f" or longer than {max_duration} s)" if max_duration else ")")
                )
            self.add_dir(ds, kdir, Path(d).name)
            log.info("%s %s: %d utterances, %.1f min", role, d, len(ds), sum(ds.durations) / 60)


def collate_pretrain(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``collate_audio`` (``input_values``, ``lengths``, ...) plus ``indices`` long ``[B]``."""
    batch = collate_audio(items)
    batch["indices"] = torch.tensor([it["index"] for it in items], dtype=torch.long)
    return batch
