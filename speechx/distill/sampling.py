"""Language-balanced, duration-bucketed batches for distillation.

SAMU-XLSR samples language ``l`` with probability ``p_l ∝ (n_l / N) ** alpha``: ``alpha = 1``
keeps the natural proportions, ``alpha = 0`` makes every language equally likely, values in
between up-sample the rare languages.  Here each epoch draws a multiset of ``N`` utterances with
those language proportions (quota per language, so the proportions are exact up to rounding, not
only in expectation): a language whose quota exceeds its size repeats all of its utterances and
adds a random subset; one whose quota is smaller gets a random subset.  The multiset is then cut
into batches of at most ``max_seconds`` of audio by
:class:`speechx.data.sampler.DynamicBucketSampler`, which also shards the batches over DDP ranks.

With ``alpha = 1`` every utterance appears exactly once per epoch.

>>> sampler = LanguageBalancedBatchSampler(durations, langs, max_seconds=60, alpha=0.5)  # doctest: +SKIP
>>> for epoch in range(3):                                                              # doctest: +SKIP
...     for batch in sampler.epoch_batches(epoch): ...
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from speechx.data.sampler import DynamicBucketSampler


def language_probabilities(langs: Sequence[str], alpha: float) -> dict[str, float]:
    """The α-smoothed sampling probability of each language, ``p_l ∝ (n_l / N) ** alpha``.

    Args:
        langs: the language of every utterance.
        alpha: smoothing exponent in ``[0, 1]`` (1 = natural proportions, 0 = uniform).

    Returns:
        language -> probability, summing to 1.

    Raises:
        ValueError: ``langs`` is empty or ``alpha`` is outside ``[0, 1]``.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"language sampling alpha must be in [0, 1], got {alpha}")
    counts = Counter(langs)
    if not counts:
        raise ValueError("language_probabilities: no utterances")
    total = sum(counts.values())
    raw = {lang: (n / total) ** alpha for lang, n in sorted(counts.items())}
    z = sum(raw.values())
    return {lang: v / z for lang, v in raw.items()}


def language_weights(langs: Sequence[str], alpha: float) -> np.ndarray:
    """Per-utterance sampling weights ``p_l / n_l`` (float64 ``[N]``, summing to 1).

    Drawing utterances with these weights gives language ``l`` the probability ``p_l`` of
    :func:`language_probabilities`; every utterance of one language is equally likely.
    """
    probs = language_probabilities(langs, alpha)
    counts = Counter(langs)
    return np.array([probs[lang] / counts[lang] for lang in langs], dtype=np.float64)


def language_quotas(langs: Sequence[str], alpha: float, total: int | None = None) -> dict[str, int]:
    """How many draws each language gets in an epoch of ``total`` utterances (default ``N``).

    Quotas are ``total * p_l`` rounded by the largest-remainder method, so they sum to ``total``
    exactly; every language gets at least one draw.
    """
    probs = language_probabilities(langs, alpha)
    total = len(langs) if total is None else total
    exact = {lang: total * p for lang, p in probs.items()}
    quota = {lang: max(1, int(np.floor(v))) for lang, v in exact.items()}
    by_remainder = sorted(exact, key=lambda lang: (-(exact[lang] - np.floor(exact[lang])), lang))
    i = 0
    while sum(quota.values()) < total:
        quota[by_remainder[i % len(by_remainder)]] += 1
        i += 1
    return quota


def draw_epoch_pool(
    langs: Sequence[str], alpha: float, rng: np.random.Generator, total: int | None = None
) -> np.ndarray:
    """Indices (int64, sorted) of the utterances drawn for one epoch.

    Each language gets its :func:`language_quotas` share: ``q // n`` full copies of all its
    utterances plus ``q % n`` distinct ones picked at random.
    """
    by_lang: dict[str, list[int]] = {}
    for i, lang in enumerate(langs):
        by_lang.setdefault(lang, []).append(i)
    pool: list[np.ndarray] = []
    for lang, q in language_quotas(langs, alpha, total).items():
        members = np.asarray(by_lang[lang], dtype=np.int64)
        reps, extra = divmod(q, len(members))
        pool.extend([members] * reps)
        if extra:
            pool.append(np.sort(rng.choice(members, size=extra, replace=False)))
    return np.sort(np.concatenate(pool)) if pool else np.zeros(0, dtype=np.int64)


class LanguageBalancedBatchSampler:
    """Batches of utterance indices with α-smoothed language proportions and bounded duration.

    Args:
        durations: seconds of every utterance.
        langs: language of every utterance (same length).
        max_seconds: most audio (sum of durations) in one batch.
        alpha: language smoothing exponent (1 = natural proportions: each utterance once).
        num_buckets, shuffle, drop_last: passed to ``DynamicBucketSampler``.
        seed: base seed; epoch ``e`` is fully determined by ``(seed, e)``.
        num_replicas, rank: DDP sharding, passed to ``DynamicBucketSampler``.
        epoch_size: utterances drawn per epoch (default: the number of utterances).

    Iterating yields the batches of the current epoch (see :meth:`set_epoch`);
    :meth:`epoch_batches` gives them as a list without touching any state, which is what a
    resumable training loop wants.

    Raises:
        ValueError: ``durations`` and ``langs`` differ in length or are empty.
    """

    def __init__(
        self,
        durations: Sequence[float],
        langs: Sequence[str],
        max_seconds: float,
        *,
        alpha: float = 1.0,
        num_buckets: int = 10,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
        num_replicas: int | None = None,
        rank: int | None = None,
        epoch_size: int | None = None,
    ) -> None:
        if len(durations) != len(langs):
            raise ValueError(f"{len(durations)} durations but {len(langs)} languages")
        if not durations:
            raise ValueError("LanguageBalancedBatchSampler: no utterances")
        language_probabilities(langs, alpha)  # validates alpha
        self.durations = [float(d) for d in durations]
        self.langs = list(langs)
        self.max_seconds = float(max_seconds)
        self.alpha = float(alpha)
        self.num_buckets = num_buckets
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch_size = epoch_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch that :meth:`__iter__` yields."""
        self.epoch = int(epoch)

    def epoch_pool(self, epoch: int) -> np.ndarray:
        """The utterance indices drawn for ``epoch`` (with repeats when ``alpha < 1``)."""
        if self.alpha == 1.0 and self.epoch_size in (None, len(self.langs)):
            return np.arange(len(self.langs), dtype=np.int64)
        rng = np.random.default_rng([self.seed, epoch, 0x5A4D])
        return draw_epoch_pool(self.langs, self.alpha, rng, self.epoch_size)

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """Every batch this rank sees in ``epoch``, as lists of utterance indices."""
        pool = self.epoch_pool(epoch)
        inner = DynamicBucketSampler(
            [self.durations[i] for i in pool],
            self.max_seconds,
            num_buckets=self.num_buckets,
            shuffle=self.shuffle,
            seed=self.seed,
            drop_last=self.drop_last,
            num_replicas=self.num_replicas,
            rank=self.rank,
        )
        return [[int(pool[j]) for j in batch] for batch in inner.rank_batches(epoch)]

    def __iter__(self) -> Iterator[list[int]]:
        yield from self.epoch_batches(self.epoch)

    def __len__(self) -> int:
        return len(self.epoch_batches(self.epoch))

    def state_dict(self) -> dict[str, Any]:
        """What determines the batches: a checkpoint stores it to check it on resume."""
        return {
            "epoch": self.epoch,
            "seed": self.seed,
            "alpha": self.alpha,
            "max_seconds": self.max_seconds,
            "num_utterances": len(self.langs),
            "num_replicas": self.num_replicas,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the epoch (the other fields are configuration and are only compared)."""
        self.epoch = int(state["epoch"])
