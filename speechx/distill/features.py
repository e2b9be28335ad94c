"""Feature caching for a frozen backbone: encode the audio once, train the head for many epochs.

When the bottom of the student is frozen (the whole backbone, or the front end and the first
``k`` layers of a backbone that can resume a forward pass, see
:attr:`speechx.models.SpeechEncoder.cache_point`), its output never changes during training.
:func:`build_feature_store` runs it once over a :class:`~speechx.distill.data.DistillData` and
keeps the frames on disk; training then reads them instead of decoding and re-encoding audio::

    <root>/<key>/
        frames.npy      float16 [total_frames, H]   (memory-mapped when read)
        offsets.npy     int64 [N + 1]: item i owns frames[offsets[i]:offsets[i + 1]]
        ids.txt         the item ids, in order
        meta.json       what the features are (backbone, cache point, dtype, counts)
        .done           written last

``key`` is a fingerprint of everything the frames depend on: the frozen weights, the backbone
config, the cache point, the sample rate and the item ids with their audio sources.  A changed
model or data set gets a new directory, never stale features.  Encoding is done in blocks that
are written atomically, so an interrupted build resumes where it stopped.

Only items whose features equal what training on audio would see are cacheable, so audio
augmentation does not combine with a cache; :class:`FeatureData` can mask time spans of the
cached frames instead (SpecAugment-style, on the features).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from speechx.data.dataset import collate_audio
from speechx.distill.data import DistillData
from speechx.distill.errors import TrainingError

log = logging.getLogger("speechx.distill")

#: items per block written to disk while building (a block is the unit of resumption)
BLOCK_ITEMS = 256
FORMAT_VERSION = 1


def model_fingerprint(model: Any) -> str:
    """sha256 over the frozen part's identity: backbone config, cache point and frozen weights."""
    h = hashlib.sha256()
    cfg = model.config
    h.update(json.dumps(cfg.backbone_config, sort_keys=True, default=str).encode())
    h.update(json.dumps(cfg.preprocessing.__dict__, sort_keys=True, default=str).encode())
    h.update(f"point={model.cache_point} layer={cfg.layer} sr={model.sample_rate}".encode())
    for name, tensor in sorted(model.backbone.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def data_fingerprint(data: DistillData) -> str:
    """sha256 over the items: ids and the audio each one is read from (path, segment)."""
    h = hashlib.sha256()
    for (s, j), item_id in zip(data.index, data.ids, strict=True):
        kdir = data.datasets[s].kdir
        utt = data.datasets[s].ids[j]
        path = kdir.audio_path(utt)
        try:
            st = os.stat(path)
            stamp = f"{st.st_size}:{st.st_mtime_ns}"
        except OSError:
            stamp = "?"
        h.update(f"{item_id}\t{path}\t{kdir.segment(utt)}\t{stamp}\n".encode())
    return h.hexdigest()


@dataclass
class FeatureStore:
    """Cached frozen-part features of the items of one data set (read-only).

    Attributes:
        path: the store directory.
        frames: float16 ``[total_frames, H]`` (memory-mapped).
        offsets: int64 ``[N + 1]``.
        ids: item ids, in the order of the data set they were built from.
    """

    path: Path
    frames: np.ndarray
    offsets: np.ndarray
    ids: list[str]

    @classmethod
    def open(cls, path: str | os.PathLike) -> FeatureStore:
        """Open a finished store.

        Raises:
            TrainingError: the directory is not a finished store, or its files disagree.
        """
        p = Path(path)
        if not (p / ".done").is_file():
            raise TrainingError(f"{p}: not a finished feature store (no .done)")
        try:
            frames = np.load(p / "frames.npy", mmap_mode="r")
            offsets = np.load(p / "offsets.npy")
            ids = (p / "ids.txt").read_text("utf-8").splitlines()
        except (OSError, ValueError) as exc:
            raise TrainingError(f"{p}: unreadable feature store ({exc})") from None
        if len(offsets) != len(ids) + 1 or int(offsets[-1]) != frames.shape[0]:
            raise TrainingError(
                f"{p}: feature store is inconsistent ({len(ids)} ids, {len(offsets)} offsets, "
                f"{frames.shape[0]} frames); delete it to rebuild"
            )
        return cls(p, frames, offsets, ids)

    def __len__(self) -> int:
        return len(self.ids)

    def item(self, i: int) -> np.ndarray:
        """Frames of item ``i``, float16 ``[F_i, H]`` (a copy, safe to hand to torch)."""
        return np.array(self.frames[self.offsets[i] : self.offsets[i + 1]])

    @property
    def num_frames(self) -> np.ndarray:
        """Frames per item, int64 ``[N]``."""
        return np.diff(self.offsets)


def build_feature_store(
    model: Any,
    data: DistillData,
    root: str | os.PathLike,
    *,
    max_batch_seconds: float = 120.0,
    role: str = "train",
    show_progress: bool | None = None,
) -> FeatureStore:
    """The features of every item of ``data``, built once under ``root`` and reused after.

    Args:
        model: a :class:`~speechx.models.SpeechEncoder` whose ``cache_point`` is not None.
        data: the items (audio is read through ``data[i]``).
        root: directory holding stores; the store is ``root/<role>-<fingerprint[:16]>``.
        max_batch_seconds: padded audio per forward pass while building.
        role: a label for the directory name and log messages.
        show_progress: tqdm bar (None = on a terminal only).

    Returns:
        The opened :class:`FeatureStore`.

    Raises:
        TrainingError: the model has nothing to cache, or a finished store is inconsistent.
        speechx.errors.AudioError: an utterance cannot be read (named).
    """
    if model.cache_point is None:
        raise TrainingError("feature cache: this model has no frozen part to cache")
    key = hashlib.sha256((model_fingerprint(model) + data_fingerprint(data)).encode()).hexdigest()[
        :16
    ]
    path = Path(root) / f"{role}-{key}"
    if (path / ".done").is_file():
        store = FeatureStore.open(path)
        if store.ids == data.ids:
            log.info("%s features: reusing %s (%d items)", role, path, len(store))
            return store
        raise TrainingError(f"{path}: cached ids differ from the data set; delete it to rebuild")
    path.mkdir(parents=True, exist_ok=True)
    blocks_dir = path / "blocks"
    blocks_dir.mkdir(exist_ok=True)
    order = sorted(range(len(data)), key=lambda i: data.durations[i])
    blocks = [order[i : i + BLOCK_ITEMS] for i in range(0, len(order), BLOCK_ITEMS)]
    done = {int(p.stem.split("-")[1]) for p in blocks_dir.glob("block-*.npz")}
    todo = [b for b in range(len(blocks)) if b not in done]
    if done:
        log.info("%s features: resuming, %d of %d blocks done", role, len(done), len(blocks))
    seconds = sum(data.durations[i] for b in todo for i in blocks[b])
    log.info(
        "%s features: encoding %d items (%.1f min of audio) with the frozen part into %s",
        role,
        sum(len(blocks[b]) for b in todo),
        seconds / 60,
        path,
    )
    bar = tqdm(
        total=len(data),
        initial=len(data) - sum(len(blocks[b]) for b in todo),
        disable=None if show_progress is None else not show_progress,
        unit="utt",
        desc=f"features {role}",
        dynamic_ncols=True,
    )
    with bar:
        for b in todo:
            items, lengths = _encode_block(model, data, blocks[b], max_batch_seconds, bar)
            _save_block(blocks_dir / f"block-{b:05d}.npz", blocks[b], items, lengths)
    _merge_blocks(path, blocks_dir, data, len(blocks), model)
    return FeatureStore.open(path)


def _encode_block(
    model: Any,
    data: DistillData,
    idx: list[int],
    max_batch_seconds: float,
    bar: Any,
) -> tuple[list[np.ndarray], list[int]]:
    from speechx.distill.evaluate import duration_batches

    feats: dict[int, np.ndarray] = {}
    for sub in duration_batches([data.durations[i] for i in idx], max_batch_seconds):
        items = [idx[k] for k in sub]
        batch = collate_audio([data[i] for i in items])
        hidden, frame_lengths = model.frozen_features(batch["input_values"], batch["lengths"])
        for row, i in enumerate(items):
            n = int(frame_lengths[row])
            feats[i] = hidden[row, :n].to(torch.float16).cpu().numpy()
        bar.update(len(items))
    return [feats[i] for i in idx], [feats[i].shape[0] for i in idx]


def _save_block(path: Path, idx: list[int], items: list[np.ndarray], lengths: list[int]) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".block.", suffix=".npz")
    os.close(fd)
    try:
        with open(tmp, "wb") as fh:
            np.savez(
                fh,
                index=np.asarray(idx, dtype=np.int64),
                lengths=np.asarray(lengths, dtype=np.int64),
                frames=np.concatenate(items) if items else np.zeros((0, 0), np.float16),
            )
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _merge_blocks(
    path: Path, blocks_dir: Path, data: DistillData, num_blocks: int, model: Any
) -> None:
    """Concatenate the blocks in item order into frames.npy/offsets.npy, then mark done."""
    lengths = np.zeros(len(data), dtype=np.int64)
    loaded = []
    for b in range(num_blocks):
        with np.load(blocks_dir / f"block-{b:05d}.npz") as z:
            index, lens = z["index"], z["lengths"]
        lengths[index] = lens
        loaded.append(b)
    offsets = np.zeros(len(data) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    hidden = model.backbone.hidden_size
    tmp = path / ".frames.npy.tmp"
    frames = np.lib.format.open_memmap(
        tmp, mode="w+", dtype=np.float16, shape=(int(offsets[-1]), hidden)
    )
    for b in loaded:
        with np.load(blocks_dir / f"block-{b:05d}.npz") as z:
            index, lens, block = z["index"], z["lengths"], z["frames"]
        pos = 0
        for i, n in zip(index.tolist(), lens.tolist(), strict=True):
            frames[offsets[i] : offsets[i] + n] = block[pos : pos + n]
            pos += n
    frames.flush()
    del frames
    os.replace(tmp, path / "frames.npy")
    _write_text(path / "ids.txt", "".join(f"{i}\n" for i in data.ids))
    np.save(path / "offsets.npy", offsets)
    meta = {
        "format_version": FORMAT_VERSION,
        "items": len(data),
        "frames": int(offsets[-1]),
        "hidden_size": hidden,
        "dtype": "float16",
        "cache_point": model.cache_point,
        "backbone": model.config.backbone,
        "audio_seconds": float(sum(data.durations)),
    }
    _write_text(path / "meta.json", json.dumps(meta, indent=2) + "\n")
    _write_text(path / ".done", "")
    shutil.rmtree(blocks_dir, ignore_errors=True)
    log.info(
        "features: %d items, %d frames, %.1f MB at %s",
        len(data),
        int(offsets[-1]),
        int(offsets[-1]) * hidden * 2 / 1e6,
        path,
    )


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class FeatureData(Dataset):
    """:class:`DistillData` items with cached features instead of audio.

    Items are ``features`` (float16 ``[F, H]``), ``seconds``, ``target``, ``group`` and
    ``index``.  With ``time_mask > 0`` (training only), about that fraction of each
    utterance's frames is zeroed in spans of up to ``mask_span`` frames (SpecAugment-style
    time masking on the cached features).
    """

    def __init__(
        self,
        data: DistillData,
        store: FeatureStore,
        *,
        time_mask: float = 0.0,
        mask_span: int = 10,
    ) -> None:
        if store.ids != data.ids:
            raise TrainingError(f"{store.path}: feature store ids differ from the data set")
        self.data = data
        self.store = store
        self.time_mask = time_mask
        self.mask_span = mask_span
        self.durations = data.durations
        self.dim = data.dim

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict[str, Any]:
        feats = self.store.item(i)
        if self.time_mask > 0 and feats.shape[0] > 1:
            feats = _mask_time(feats, self.time_mask, self.mask_span)
        return {
            "features": feats,
            "seconds": float(self.data.durations[i]),
            "target": self.data.target(i),
            "group": int(self.data.groups[i]),
            "index": i,
        }


def _mask_time(feats: np.ndarray, fraction: float, span: int) -> np.ndarray:
    """Zero about ``fraction`` of the frames in spans of 1..``span`` frames.

    Draws from torch's global RNG, which the trainer seeds and checkpoints, so a resumed run
    masks exactly as an uninterrupted one (with ``num_workers=0``).
    """
    n = feats.shape[0]
    spans = max(1, int(round(n * fraction / max(1, (span + 1) / 2))))
    widths = torch.randint(1, span + 1, (spans,)).tolist()
    out = feats.copy()
    for width in widths:
        width = min(width, n - 1)
        start = int(torch.randint(0, n - width + 1, ()).item())
        out[start : start + width] = 0
    return out


def pad_features(items: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
    """``features`` padded into float16 ``[B, F, H]``, ``frame_lengths`` ``[B]`` and ``seconds``
    ``[B]`` of items with ``features`` (``[F_i, H]``) and ``seconds``."""
    lengths = [it["features"].shape[0] for it in items]
    hidden = items[0]["features"].shape[1]
    feats = torch.zeros(len(items), max(lengths), hidden, dtype=torch.float16)
    for row, it in enumerate(items):
        feats[row, : lengths[row]] = torch.from_numpy(it["features"])
    return {
        "features": feats,
        "frame_lengths": torch.tensor(lengths, dtype=torch.long),
        "seconds": torch.tensor([it["seconds"] for it in items], dtype=torch.float64),
    }


def collate_features(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """:func:`pad_features` plus the stacked ``targets``, ``groups`` and ``indices``."""
    return {
        **pad_features(items),
        "targets": torch.from_numpy(np.stack([it["target"] for it in items]).astype(np.float32)),
        "groups": torch.tensor([it["group"] for it in items], dtype=torch.long),
        "indices": torch.tensor([it["index"] for it in items], dtype=torch.long),
    }
