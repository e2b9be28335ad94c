"""Torch dataset over a Kaldi data dir, and the collate function that pads its items.

>>> ds = SpeechDataset("data/fillets_nl_train", sample_rate=16000)       # doctest: +SKIP
>>> ds[0]["audio"].shape, ds[0]["text"], ds.durations[0]                 # doctest: +SKIP
(torch.Size([57344]), 'waar is de uitgang', 3.584)
>>> loader = DataLoader(ds, batch_sampler=DynamicBucketSampler(ds.durations, 60.0),
...                     collate_fn=collate_audio)                          # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from speechx.audio import DEFAULT_SAMPLE_RATE, audio_info, load_audio
from speechx.data.kaldi import KaldiDir, is_pipe
from speechx.errors import AudioError, DataDirError

logger = logging.getLogger(__name__)

#: The language of an utterance that ``utt2lang`` does not name.
UNKNOWN_LANG = "und"
#: Seconds of slack given to ``max_duration`` when loading, since ``utt2dur`` is rounded.
_DURATION_SLACK = 0.05


class SpeechDataset(Dataset):
    """Utterances of a Kaldi data dir as dicts of a float32 waveform and its metadata.

    Item ``i`` is ``dict(id=str, audio=torch.float32 [T], text=str, lang=str | None,
    sentence=str | None, translations=dict[str, str])``: mono audio at ``sample_rate``, cut to
    the utterance's segment when the dir has ``segments``.  ``text`` is ``""`` when the dir has
    no transcript for the utterance.

    Args:
        kdir_or_path: a :class:`KaldiDir` or the path of a data dir.  Relative audio paths are
            resolved against the current directory, as in Kaldi.
        sample_rate: rate of the returned audio (resampled with soxr when needed).
        max_duration: utterances longer than this (by :attr:`durations`) are left out of the
            dataset with a logged warning; their ids are in :attr:`skipped`.

    Raises:
        DataDirError: the dir cannot be read, an utterance has no audio entry, or ``wav.scp``
            holds a shell pipe (pipes are not run here).
        AudioError: with ``max_duration``, a header that cannot be read (the utterance is named).
    """

    def __init__(
        self,
        kdir_or_path: KaldiDir | str | os.PathLike,
        sample_rate: int = DEFAULT_SAMPLE_RATE,
        max_duration: float | None = None,
    ) -> None:
        if isinstance(kdir_or_path, KaldiDir):
            self.kdir = kdir_or_path
            self.source = "<KaldiDir>"
        else:
            self.kdir = KaldiDir.read(kdir_or_path)
            self.source = str(kdir_or_path)
        self.sample_rate = int(sample_rate)
        self.max_duration = max_duration
        ids = self.kdir.utt_ids
        for utt in ids:
            if self.kdir.segments and utt not in self.kdir.segments:
                raise DataDirError(f"{self.source}: utterance {utt!r} has no line in segments")
            rec = self.kdir.recording_id(utt)
            entry = self.kdir.wav_scp.get(rec)
            if entry is None:
                raise DataDirError(
                    f"{self.source}: utterance {utt!r}: recording {rec!r} is not in wav.scp"
                )
            if is_pipe(entry):
                raise DataDirError(
                    f"{self.source}: utterance {utt!r} reads audio through a shell pipe "
                    f"({entry!r}); SpeechDataset only reads files"
                )
        self._ids = ids
        self._durations: list[float] | None = None
        self.skipped: list[str] = []
        if max_duration is not None:
            durs = self.durations
            keep = [i for i, d in enumerate(durs) if d <= max_duration]
            self.skipped = [ids[i] for i in range(len(ids)) if durs[i] > max_duration]
            if self.skipped:
                logger.warning(
                    "%s: left out %d of %d utterances longer than %g s (e.g. %s)",
                    self.source,
                    len(self.skipped),
                    len(ids),
                    max_duration,
                    ", ".join(self.skipped[:3]),
                )
            self._ids = [ids[i] for i in keep]
            self._durations = [durs[i] for i in keep]

    @property
    def ids(self) -> list[str]:
        """Utterance ids, in dataset order (C byte order of ids)."""
        return self._ids

    def __len__(self) -> int:
        return len(self._ids)

    @property
    def durations(self) -> list[float]:
        """Duration in seconds of each item, without decoding any audio.

        Taken from ``utt2dur`` when it has the utterance, else from ``segments``, else from the
        audio header (read once per recording and cached).

        Raises:
            AudioError: a header is needed and cannot be read (the utterance is named).
        """
        if self._durations is None:
            self._durations = [self._duration(utt) for utt in self._ids]
        return self._durations

    def _duration(self, utt: str) -> float:
        if utt in self.kdir.utt2dur:
            return float(self.kdir.utt2dur[utt])
        start, end = self.kdir.segment(utt)
        if start is not None and end is not None:
            return float(end - start)
        try:
            return audio_info(self.kdir.audio_path(utt)).duration
        except AudioError as exc:
            raise AudioError(f"utterance {utt!r}: {exc}") from None

    def __getitem__(self, index: int) -> dict[str, Any]:
        """The item at ``index``.

        Raises:
            IndexError: ``index`` is out of range.
            AudioError: the audio cannot be loaded; the message starts with the utterance id.
        """
        utt = self._ids[index]
        start, end = self.kdir.segment(utt)
        limit = None if self.max_duration is None else self.max_duration + _DURATION_SLACK
        try:
            wav = load_audio(
                self.kdir.audio_path(utt),
                self.sample_rate,
                start=start,
                end=end,
                max_duration=limit,
            )
        except AudioError as exc:
            raise AudioError(f"utterance {utt!r}: {exc}") from None
        return {
            "id": utt,
            "audio": torch.from_numpy(wav),
            "text": self.kdir.text.get(utt, ""),
            "lang": self.kdir.utt2lang.get(utt),
            "sentence": self.kdir.utt2sent.get(utt),
            "translations": {
                lang: t[utt] for lang, t in sorted(self.kdir.translations.items()) if utt in t
            },
        }

    def __repr__(self) -> str:
        return f"SpeechDataset({self.source!r}, n={len(self)}, sample_rate={self.sample_rate})"


class MultiDirDataset(Dataset):
    """The utterances of several data dirs as one map-style dataset: the bookkeeping that the
    training datasets (distillation, CTC, pretraining) share, and that the shared training loop
    and its batch sampler read.  Subclasses fill it with :meth:`add_dir` and add their own
    per-item fields.

    Item ``i`` is item ``index[i]`` of its dir's :class:`SpeechDataset` plus ``index=i``.

    Attributes:
        datasets: one :class:`SpeechDataset` per dir.
        index: ``(dir, item)`` of every global item.
        ids: ``"<dir name>/<utt>"`` of every item (unique across dirs).
        utt_ids: the plain utterance id of every item.
        durations: seconds per item.
        langs: ``utt2lang`` per item (:data:`UNKNOWN_LANG` when unknown).
    """

    def __init__(self) -> None:
        self.datasets: list[SpeechDataset] = []
        self.index: list[tuple[int, int]] = []
        self.ids: list[str] = []
        self.utt_ids: list[str] = []
        self.durations: list[float] = []
        self.langs: list[str] = []

    def add_dir(self, ds: SpeechDataset, kdir: KaldiDir, name: str) -> None:
        """Append the utterances of ``ds``, read from data dir ``kdir`` named ``name``."""
        s = len(self.datasets)
        for j, utt in enumerate(ds.ids):
            self.index.append((s, j))
            self.ids.append(f"{name}/{utt}")
            self.utt_ids.append(utt)
            self.durations.append(float(ds.durations[j]))
            self.langs.append(kdir.utt2lang.get(utt, UNKNOWN_LANG))
        self.datasets.append(ds)

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, Any]:
        s, j = self.index[i]
        item = dict(self.datasets[s][j])
        item["index"] = i
        return item


def collate_audio(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Pad a list of :class:`SpeechDataset` items into a batch.

    Returns:
        ``dict(input_values=float32 [B, T_max]`` zero-padded, ``attention_mask=long [B, T_max]``
        (1 on real samples), ``lengths=long [B]`` (absolute sample counts, never relative),
        ``ids``, ``texts``, ``langs``, ``sentences``, ``translations`` (lists of length B)).
        Items need only ``id`` and ``audio``; missing metadata becomes ``""`` / ``None`` / ``{}``.

    Raises:
        DataDirError: ``items`` is empty or an audio entry is not 1-D.
    """
    if len(items) == 0:
        raise DataDirError("collate_audio: cannot collate an empty batch")
    waves: list[torch.Tensor] = []
    for it in items:
        a = it["audio"]
        t = torch.from_numpy(np.asarray(a)) if not isinstance(a, torch.Tensor) else a
        if t.dim() != 1:
            raise DataDirError(
                f"collate_audio: audio of {it.get('id')!r} has shape {tuple(t.shape)}, "
                "expected 1-D [T]"
            )
        waves.append(t.to(torch.float32))
    lengths = torch.tensor([w.shape[0] for w in waves], dtype=torch.long)
    t_max = int(lengths.max())
    input_values = torch.zeros(len(waves), t_max, dtype=torch.float32)
    for i, w in enumerate(waves):
        input_values[i, : w.shape[0]] = w
    attention_mask = (torch.arange(t_max)[None, :] < lengths[:, None]).long()
    return {
        "input_values": input_values,
        "attention_mask": attention_mask,
        "lengths": lengths,
        "ids": [it["id"] for it in items],
        "texts": [it.get("text", "") for it in items],
        "langs": [it.get("lang") for it in items],
        "sentences": [it.get("sentence") for it in items],
        "translations": [it.get("translations", {}) for it in items],
    }


__all__ = ["SpeechDataset", "collate_audio"]
