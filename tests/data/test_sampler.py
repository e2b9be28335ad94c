"""DynamicBucketSampler: budget, determinism, DDP sharding, exact resume."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from speechx.data.sampler import DynamicBucketSampler, SamplerError

DURS = np.random.default_rng(0).uniform(0.5, 8.0, size=200).tolist()


def _flat(batches: list[list[int]]) -> list[int]:
    return [i for b in batches for i in b]


def test_budget_and_coverage() -> None:
    s = DynamicBucketSampler(DURS, max_seconds=30.0, seed=1)
    batches = list(s)
    assert len(batches) == len(s)
    assert sorted(_flat(batches)) == list(range(len(DURS)))
    for b in batches:
        assert max(DURS[i] for i in b) * len(b) <= 30.0


def test_bucketing_reduces_padding() -> None:
    def padding(batches: list[list[int]]) -> float:
        return sum(max(DURS[i] for i in b) * len(b) - sum(DURS[i] for i in b) for b in batches)

    bucketed = padding(list(DynamicBucketSampler(DURS, 30.0, num_buckets=10)))
    flat = padding(list(DynamicBucketSampler(DURS, 30.0, num_buckets=1)))
    assert bucketed < 0.5 * flat


def test_deterministic_per_seed_and_epoch() -> None:
    a = DynamicBucketSampler(DURS, 30.0, seed=3)
    b = DynamicBucketSampler(DURS, 30.0, seed=3)
    assert list(a) == list(b)
    e0 = list(a)
    a.set_epoch(1)
    assert list(a) != e0
    b.set_epoch(1)
    assert list(a) == list(b)
    assert list(DynamicBucketSampler(DURS, 30.0, seed=4)) != e0


def test_no_shuffle_is_sorted_by_duration() -> None:
    batches = list(DynamicBucketSampler(DURS, 30.0, shuffle=False))
    flat = [DURS[i] for i in _flat(batches)]
    assert flat == sorted(flat)


def test_overlong_item_gets_its_own_batch() -> None:
    with pytest.warns(UserWarning, match="1 item"):
        s = DynamicBucketSampler([1.0, 50.0, 1.0, 2.0], max_seconds=10.0, num_buckets=1)
    batches = list(s)
    assert [1] in batches
    assert sorted(_flat(batches)) == [0, 1, 2, 3]


@pytest.mark.parametrize("drop_last", [False, True])
def test_ddp_shards_equal_and_disjoint(drop_last: bool) -> None:
    world = 3
    ranks = [
        DynamicBucketSampler(DURS, 20.0, seed=5, num_replicas=world, rank=r, drop_last=drop_last)
        for r in range(world)
    ]
    for s in ranks:
        s.set_epoch(2)
    per_rank = [list(s) for s in ranks]
    n_global = len(ranks[0].global_batches())
    assert len({len(b) for b in per_rank}) == 1  # same number of batches on every rank
    assert all(len(b) == len(s) for b, s in zip(per_rank, ranks, strict=True))
    all_idx = _flat([b for r in per_rank for b in r])
    if drop_last:
        assert len(per_rank[0]) == n_global // world
        assert len(all_idx) == len(set(all_idx))  # no repeats
    else:
        assert len(per_rank[0]) == -(-n_global // world)
        assert set(all_idx) == set(range(len(DURS)))  # nothing lost


def test_resume_exactly() -> None:
    s = DynamicBucketSampler(DURS, 25.0, seed=7)
    s.set_epoch(4)
    full = list(s)
    it = iter(s)
    seen = [next(it) for _ in range(5)]
    state = s.state_dict()
    assert state["epoch"] == 4 and state["consumed"] == 5
    t = DynamicBucketSampler(DURS, 25.0, seed=7)
    t.load_state_dict(state)
    rest = list(t)
    assert seen + rest == full
    assert list(t) == full  # the following pass starts from the beginning again
    t.set_epoch(5)
    assert t.state_dict()["consumed"] == 0
    assert s.state_dict(consumed=2)["consumed"] == 2


def test_resume_refuses_other_settings() -> None:
    state = DynamicBucketSampler(DURS, 25.0, seed=7).state_dict()
    with pytest.raises(SamplerError, match="seed=7"):
        DynamicBucketSampler(DURS, 25.0, seed=8).load_state_dict(state)
    with pytest.raises(SamplerError, match="num_items"):
        DynamicBucketSampler(DURS[:10], 25.0, seed=7).load_state_dict(state)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"durations": [1.0, float("nan")], "max_seconds": 5}, "item 1"),
        ({"durations": [1.0, 0.0], "max_seconds": 5}, "item 1"),
        ({"durations": [1.0], "max_seconds": 0}, "max_seconds"),
        ({"durations": [1.0], "max_seconds": 5, "num_replicas": 2, "rank": 2}, "rank 2"),
    ],
)
def test_bad_arguments(kwargs: dict, pattern: str) -> None:
    with pytest.raises(SamplerError, match=pattern):
        DynamicBucketSampler(**kwargs)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(st.floats(0.1, 20.0), min_size=1, max_size=60),
    st.floats(1.0, 60.0),
    st.integers(1, 12),
    st.integers(1, 4),
    st.integers(0, 3),
)
def test_properties(durs: list[float], max_s: float, buckets: int, world: int, epoch: int) -> None:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        samplers = [
            DynamicBucketSampler(durs, max_s, num_buckets=buckets, num_replicas=world, rank=r)
            for r in range(world)
        ]
    for s in samplers:
        s.set_epoch(epoch)
    got = [list(s) for s in samplers]
    assert len({len(g) for g in got}) == 1
    covered = {i for g in got for b in g for i in b}
    assert covered == set(range(len(durs)))
    for g in got:
        for b in g:
            assert len(b) == 1 or max(durs[i] for i in b) * len(b) <= max_s
