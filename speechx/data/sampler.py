"""Duration-bucketed dynamic batching with DDP sharding and exact resume.

A batch is a list of dataset indices whose padded length, ``max(duration) * len(batch)``, stays
within ``max_seconds``.  Utterances are put into ``num_buckets`` buckets of similar duration so
that little of a batch is padding.  Everything random is drawn from ``(seed, epoch)``, so every
DDP rank builds the same global list of batches and takes its own share of it.

>>> sampler = DynamicBucketSampler(ds.durations, max_seconds=60.0, seed=0)   # doctest: +SKIP
>>> loader = DataLoader(ds, batch_sampler=sampler, collate_fn=collate_audio)  # doctest: +SKIP
>>> for epoch in range(3):                                                    # doctest: +SKIP
...     sampler.set_epoch(epoch)
...     for batch in loader: ...
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Sampler

from speechx.errors import SpeechxError


class SamplerError(SpeechxError, ValueError):
    """Bad sampler arguments, or a state dict that does not fit this sampler."""


class DynamicBucketSampler(Sampler[list[int]]):
    """Yield lists of dataset indices, each of at most ``max_seconds`` padded audio.

    Args:
        durations: duration in seconds of every dataset item (e.g. ``SpeechDataset.durations``).
        max_seconds: bound on ``max(duration in batch) * batch size``.  An item longer than
            this on its own forms a batch by itself (a warning is given once, at construction).
        num_buckets: number of duration buckets (quantiles of the durations, equal counts).
        shuffle: shuffle within buckets and the order of batches; otherwise batches come from
            the shortest bucket to the longest, items in index order within equal durations.
        seed: base seed; the order of epoch ``e`` depends only on ``(seed, e)``.
        drop_last: with several replicas, drop the last batches so that every rank gets the same
            number without repeats; otherwise the first batches are repeated to fill up.
        num_replicas, rank: DDP world size and rank; by default from ``torch.distributed``
            when it is initialised, else 1 and 0.

    Raises:
        SamplerError: a duration is not a positive finite number, ``max_seconds`` or
            ``num_buckets`` is not positive, or ``rank`` is outside ``[0, num_replicas)``.
    """

    def __init__(
        self,
        durations: Sequence[float],
        max_seconds: float,
        *,
        num_buckets: int = 10,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        num_replicas: int | None = None,
        rank: int | None = None,
    ) -> None:
        durs = np.asarray(list(durations), dtype=np.float64)
        if durs.ndim != 1:
            raise SamplerError("durations must be a flat sequence of seconds")
        bad = np.flatnonzero(~np.isfinite(durs) | (durs <= 0))
        if bad.size:
            i = int(bad[0])
            raise SamplerError(
                f"duration of item {i} is {durs[i]!r}; every duration must be a positive number "
                f"({bad.size} bad in all)"
            )
        if not max_seconds > 0:
            raise SamplerError(f"max_seconds must be positive, got {max_seconds!r}")
        if num_buckets < 1:
            raise SamplerError(f"num_buckets must be >= 1, got {num_buckets}")
        if num_replicas is None or rank is None:
            dist = torch.distributed
            initialised = dist.is_available() and dist.is_initialized()
            if num_replicas is None:
                num_replicas = dist.get_world_size() if initialised else 1
            if rank is None:
                rank = dist.get_rank() if initialised else 0
        if num_replicas < 1 or not 0 <= rank < num_replicas:
            raise SamplerError(f"rank {rank} is not in [0, {num_replicas})")
        self.durations = durs
        self.max_seconds = float(max_seconds)
        self.num_buckets = int(num_buckets)
        self.shuffle = shuffle
        self.seed = int(seed)
        self.drop_last = drop_last
        self.num_replicas = int(num_replicas)
        self.rank = int(rank)
        self.epoch = 0
        self._consumed = 0  # batches yielded so far in the current pass
        self._resume_from = 0  # batches to skip at the start of the next pass
        self._cache: tuple[int, list[list[int]]] | None = None
        too_long = np.flatnonzero(durs > self.max_seconds)
        if too_long.size:
            warnings.warn(
                f"{too_long.size} item(s) are longer than max_seconds={self.max_seconds:g} "
                f"(e.g. item {int(too_long[0])}, {durs[too_long[0]]:.2f} s); each forms a batch "
                "of its own",
                UserWarning,
                stacklevel=2,
            )

    # --------------------------------------------------------------------- batches
    def _buckets(self, rng: np.random.Generator | None) -> list[np.ndarray]:
        order = np.argsort(self.durations, kind="stable")
        n_buckets = min(self.num_buckets, len(order)) or 1
        buckets = np.array_split(order, n_buckets)
        if rng is not None:
            buckets = [rng.permutation(b) for b in buckets]
        return buckets

    def _pack(self, bucket: np.ndarray) -> list[list[int]]:
        batches: list[list[int]] = []
        current: list[int] = []
        longest = 0.0
        for idx in bucket.tolist():
            d = float(self.durations[idx])
            if current and max(longest, d) * (len(current) + 1) > self.max_seconds:
                batches.append(current)
                current, longest = [], 0.0
            current.append(idx)
            longest = max(longest, d)
        if current:
            batches.append(current)
        return batches

    def global_batches(self, epoch: int | None = None) -> list[list[int]]:
        """All batches of ``epoch`` (default: the current one) across every rank, before sharding."""
        epoch = self.epoch if epoch is None else epoch
        rng = np.random.default_rng([self.seed, epoch]) if self.shuffle else None
        batches: list[list[int]] = []
        for bucket in self._buckets(rng):
            batches.extend(self._pack(bucket))
        if rng is not None:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def rank_batches(self, epoch: int | None = None) -> list[list[int]]:
        """The batches this rank yields in ``epoch`` (equal in number on every rank)."""
        epoch = self.epoch if epoch is None else epoch
        if self._cache is not None and self._cache[0] == epoch:
            return self._cache[1]
        batches = self.global_batches(epoch)
        world = self.num_replicas
        if world > 1:
            if self.drop_last:
                batches = batches[: (len(batches) // world) * world]
            else:
                total = math.ceil(len(batches) / world) * world
                batches = [batches[i % len(batches)] for i in range(total)]
        mine = batches[self.rank :: world]
        self._cache = (epoch, mine)
        return mine

    # --------------------------------------------------------------------- protocol
    def __iter__(self) -> Iterator[list[int]]:
        batches = self.rank_batches()
        start, self._resume_from = self._resume_from, 0
        self._consumed = start
        for batch in batches[start:]:
            self._consumed += 1
            yield list(batch)

    def __len__(self) -> int:
        """Number of batches this rank yields in the current epoch (a full pass)."""
        return len(self.rank_batches())

    def set_epoch(self, epoch: int) -> None:
        """Select the shuffling of ``epoch``; call it before each epoch, as with DDP samplers."""
        self.epoch = int(epoch)
        self._consumed = 0

    def state_dict(self, consumed: int | None = None) -> dict[str, Any]:
        """State for exact resume.

        Args:
            consumed: batches of this epoch already trained on.  Defaults to the number this
                sampler has yielded; pass the trainer's own count when a ``DataLoader`` with
                workers prefetches batches ahead of training.

        Returns:
            ``dict(epoch, consumed, seed, num_replicas, rank, num_items, max_seconds,
            num_buckets, shuffle)``.
        """
        return {
            "epoch": self.epoch,
            "consumed": self._consumed if consumed is None else int(consumed),
            "seed": self.seed,
            "num_replicas": self.num_replicas,
            "rank": self.rank,
            "num_items": int(self.durations.size),
            "max_seconds": self.max_seconds,
            "num_buckets": self.num_buckets,
            "shuffle": self.shuffle,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`; the next pass continues right after the consumed batches.

        Raises:
            SamplerError: the state was saved by a sampler with other settings (seed, world
                size, number of items, ``max_seconds``, buckets or shuffling), so the same
                batches cannot be rebuilt.
        """
        for key in ("seed", "num_replicas", "num_items", "max_seconds", "num_buckets", "shuffle"):
            mine = self.state_dict()[key]
            if key in state and state[key] != mine:
                raise SamplerError(
                    f"cannot resume: state has {key}={state[key]!r} but this sampler has {mine!r}"
                )
        self.epoch = int(state["epoch"])
        consumed = int(state.get("consumed", 0))
        if not 0 <= consumed <= len(self.rank_batches()):
            raise SamplerError(
                f"cannot resume: {consumed} batches consumed but epoch {self.epoch} has "
                f"{len(self.rank_batches())}"
            )
        self._resume_from = consumed
        self._consumed = consumed


__all__ = ["DynamicBucketSampler", "SamplerError"]
