"""Tests of α-smoothed language sampling and the balanced batch sampler."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from speechx.distill.sampling import (
    LanguageBalancedBatchSampler,
    draw_epoch_pool,
    language_probabilities,
    language_quotas,
    language_weights,
)

LANGS = ["nl"] * 80 + ["de"] * 15 + ["fr"] * 5


def test_probabilities_follow_alpha() -> None:
    natural = language_probabilities(LANGS, 1.0)
    assert natural == pytest.approx({"nl": 0.8, "de": 0.15, "fr": 0.05})
    uniform = language_probabilities(LANGS, 0.0)
    assert uniform == pytest.approx({"nl": 1 / 3, "de": 1 / 3, "fr": 1 / 3})
    half = language_probabilities(LANGS, 0.5)
    z = 0.8**0.5 + 0.15**0.5 + 0.05**0.5
    assert half["fr"] == pytest.approx(0.05**0.5 / z)
    assert half["nl"] < natural["nl"] and half["fr"] > natural["fr"]


def test_weights_sum_to_language_probabilities() -> None:
    w = language_weights(LANGS, 0.5)
    probs = language_probabilities(LANGS, 0.5)
    assert w.sum() == pytest.approx(1.0)
    for lang, p in probs.items():
        assert w[[i for i, x in enumerate(LANGS) if x == lang]].sum() == pytest.approx(p)


def test_quotas_sum_to_total() -> None:
    q = language_quotas(LANGS, 0.3)
    assert sum(q.values()) == len(LANGS)
    assert q["fr"] > 5  # up-sampled


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.7, 1.0])
def test_epoch_pool_has_smoothed_proportions(alpha: float) -> None:
    pool = draw_epoch_pool(LANGS, alpha, np.random.default_rng(0))
    got = Counter(LANGS[i] for i in pool)
    probs = language_probabilities(LANGS, alpha)
    assert len(pool) == len(LANGS)
    for lang, p in probs.items():
        assert got[lang] / len(pool) == pytest.approx(p, abs=1.0 / len(LANGS))
    # a down-sampled language never repeats an utterance
    for lang in got:
        members = [i for i in pool if LANGS[i] == lang]
        if got[lang] <= LANGS.count(lang):
            assert len(set(members)) == len(members)


def _sampler(alpha: float, **kw: object) -> LanguageBalancedBatchSampler:
    durs = [1.0 + (i % 7) * 0.1 for i in range(len(LANGS))]
    return LanguageBalancedBatchSampler(durs, LANGS, max_seconds=6.0, alpha=alpha, seed=3, **kw)


def test_alpha_one_visits_every_utterance_once() -> None:
    batches = _sampler(1.0).epoch_batches(0)
    flat = sorted(i for b in batches for i in b)
    assert flat == list(range(len(LANGS)))


def test_batches_respect_duration_and_proportions() -> None:
    s = _sampler(0.0)
    durs = s.durations
    counts: Counter[str] = Counter()
    for epoch in range(3):
        for b in s.epoch_batches(epoch):
            assert max(durs[i] for i in b) * len(b) <= 6.0 + 1e-9
            counts.update(LANGS[i] for i in b)
    total = sum(counts.values())
    for lang in ("nl", "de", "fr"):
        assert counts[lang] / total == pytest.approx(1 / 3, abs=0.02)


def test_deterministic_per_epoch_and_differs_across_epochs() -> None:
    a, b = _sampler(0.5), _sampler(0.5)
    assert a.epoch_batches(2) == b.epoch_batches(2)
    assert a.epoch_batches(0) != a.epoch_batches(1)
    a.set_epoch(2)
    assert list(a) == b.epoch_batches(2) and len(a) == len(b.epoch_batches(2))


def test_ddp_shards_are_disjoint_and_equal_length() -> None:
    r0 = _sampler(1.0, num_replicas=2, rank=0).epoch_batches(0)
    r1 = _sampler(1.0, num_replicas=2, rank=1).epoch_batches(0)
    assert len(r0) == len(r1)
    full = _sampler(1.0).epoch_batches(0)
    assert sorted(map(tuple, r0 + r1)) == sorted(map(tuple, full)) or len(full) % 2


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="alpha"):
        language_probabilities(LANGS, 1.5)
    with pytest.raises(ValueError, match="durations"):
        LanguageBalancedBatchSampler([1.0], ["nl", "de"], 5.0)
