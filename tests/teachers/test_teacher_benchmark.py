"""The counters behind benchmarks/teacher.py, and its helpers.

A second :class:`CachedTeacher` over the same cache dir must serve every text without one
forward pass of the teacher (counted at three levels: the cache's ``teacher_calls``, a wrapper
around the real tiny-BERT teacher, and a torch hook on the BERT model's forward) and return
bit-identical embeddings.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import ModuleType, SimpleNamespace

import numpy as np
import pytest
import torch

from speechx.teachers import CachedTeacher, HFTextTeacher, USETeacher

REPO = Path(__file__).resolve().parents[2]
TEXTS = ["the fish swims", "de vis zwemt", "der fisch schwimmt im wasser", "a big blue sea"]


class Counted:
    """Wraps a teacher; records every text its ``encode`` is asked for and each call."""

    def __init__(self, teacher: HFTextTeacher) -> None:
        self.inner = teacher
        self.name, self.teacher_id = teacher.name, teacher.teacher_id
        self.dim, self.languages = teacher.dim, teacher.languages
        self.calls: list[list[str]] = []

    def encode(
        self, texts: Sequence[str], batch_size: int = 64, show_progress: bool | None = None
    ) -> np.ndarray:
        self.calls.append(list(texts))
        return self.inner.encode(texts, batch_size=batch_size, show_progress=show_progress)


@pytest.fixture
def bert_forwards() -> Iterator[list[int]]:
    """Counts forward passes of any BertModel while the test runs (one entry per batch)."""
    from transformers import BertModel

    seen: list[int] = []

    def hook(module: torch.nn.Module, args: object, output: object) -> None:
        if isinstance(module, BertModel):
            seen.append(1)

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


def test_second_cached_teacher_does_zero_forward_passes(
    tiny_bert_dir: Path, tmp_path: Path, bert_forwards: list[int]
) -> None:
    first = Counted(HFTextTeacher(tiny_bert_dir))
    cold = CachedTeacher(first, tmp_path).encode(TEXTS, batch_size=2)
    assert len(bert_forwards) == 2  # 4 texts in batches of 2: the hook sees real forwards
    assert len(first.calls) == 1

    bert_forwards.clear()
    second = Counted(HFTextTeacher(tiny_bert_dir))  # fresh objects: only the disk is shared
    rerun = CachedTeacher(second, tmp_path)
    warm = rerun.encode(TEXTS, batch_size=2)
    assert rerun.teacher_calls == 0 and rerun.misses == 0 and rerun.hits == len(TEXTS)
    assert second.calls == [] and bert_forwards == []
    assert warm.dtype == np.float32 and np.array_equal(warm, cold)


def test_counters_on_a_mix_of_cached_and_new_texts(
    tiny_bert_dir: Path, tmp_path: Path, bert_forwards: list[int]
) -> None:
    inner = Counted(HFTextTeacher(tiny_bert_dir))
    CachedTeacher(inner, tmp_path).encode(["the fish swims", "de vis zwemt"])
    inner.calls.clear()
    bert_forwards.clear()

    cache = CachedTeacher(inner, tmp_path, shard_size=1)
    asked = ["the fish swims", "a big blue sea", "de vis zwemt", "im wasser", "a big blue sea"]
    emb = cache.encode(asked, batch_size=8)
    # two new distinct texts, one teacher call each (shard_size=1), one BERT batch each
    assert inner.calls == [["a big blue sea"], ["im wasser"]]
    assert (cache.misses, cache.hits, cache.teacher_calls) == (2, 3, 2)
    assert len(bert_forwards) == 2
    np.testing.assert_array_equal(emb[1], emb[4])

    cache.encode(asked)  # everything is cached now: only hits grow
    assert (cache.misses, cache.hits, cache.teacher_calls) == (2, 8, 2)
    assert len(inner.calls) == 2


def test_use_teacher_counts_forward_calls(tmp_path: Path) -> None:
    use = USETeacher()
    assert (use.forward_calls, use.texts_encoded) == (0, 0)
    texts = ["een", "twee drie", "vier vijf zes", "zeven", "acht negen"]
    cold = CachedTeacher(use, tmp_path).encode(texts, batch_size=2)
    assert (use.forward_calls, use.texts_encoded) == (3, 5)  # batches of 2, 2 and 1

    again = USETeacher()
    warm = CachedTeacher(again, tmp_path).encode(texts[::-1], batch_size=2)
    assert (again.forward_calls, again.texts_encoded) == (0, 0)
    np.testing.assert_array_equal(warm, cold[::-1])


# ------------------------------------------------------------------ benchmark helpers


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("teacher_bench", REPO / "benchmarks/teacher.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_fillets_texts_dedups_and_never_reads_reserved_languages(
    bench: ModuleType, tmp_path: Path
) -> None:
    d = tmp_path / "data" / "set_dev"
    d.mkdir(parents=True)
    (d / "text").write_text("u1 Hallo wereld\nu2 Goedemorgen\nu3   \n", encoding="utf-8")
    (d / "text.en").write_text("u1 Hello world\nu2 Hallo wereld\n", encoding="utf-8")
    (d / "text.cs").write_bytes(b"u1 \xff\xfe not utf-8: reading it would raise\n")
    (d / "utt2lang").write_text("u1 nl\n", encoding="utf-8")
    texts = bench.fillets_texts(str(tmp_path / "data" / "*" / "text*"))
    assert texts == ["Hallo wereld", "Goedemorgen", "Hello world"]


def test_forward_flops_counts_every_matmul(bench: ModuleType) -> None:
    def w(*shape: int) -> np.ndarray:
        return np.zeros(shape, dtype=np.float32)

    backend = SimpleNamespace(
        proj_W=w(4, 6),
        w1=[w(4, 2), w(6, 2)],
        w2=[w(4, 2), w(6, 2)],
        cnn_W=w(10, 4),
        d0=w(4, 3),
        p1=w(4, 3),
        d1=w(3, 3),
        d2=w(3, 4),
        p3=w(3, 4),
        d3=w(4, 4),
    )
    per_token = 24 + 8 + 12 + 8 + 12
    per_sentence = 40 + 12 + 12 + 9 + 12 + 12 + 16
    assert bench.forward_flops(backend, 10, 3) == 2.0 * (10 * per_token + 3 * per_sentence)
    assert bench.forward_flops(SimpleNamespace(), 10, 3) is None


def test_concurrent_sharded_writers_lose_nothing(tmp_path: Path) -> None:
    """Jobs of a sharded teacher stage share one cache dir and compact it while the others
    write (three processes, overlapping texts, tiny shards, max_shards=2 so every call
    compacts); a fresh reader must find every text, unchanged."""
    script = textwrap.dedent(
        """
        import sys, time
        import numpy as np
        from speechx.teachers import CachedTeacher

        class Fake:
            name, teacher_id, dim, languages = "fake", "fake-v1", 4, None

            def encode(self, texts, batch_size=64, show_progress=None):
                return np.stack([vec(t) for t in texts])

        def vec(t):
            return np.full(4, len(t), np.float32)

        job, cache_dir, start = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
        time.sleep(max(0.0, start - time.time()))  # all jobs write at the same time
        cache = CachedTeacher(Fake(), cache_dir, shard_size=3, max_shards=2)
        mine = [f"sentence {i} " + "x" * (i % 7) for i in range(job * 100, job * 100 + 200)]
        for rep in range(25):
            cache.encode(mine[rep * 8 : rep * 8 + 8] + mine[rep : rep + 2])
        """
    )
    start = str(time.time() + 2.0)
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(job), str(tmp_path), start])
        for job in (0, 1, 2)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]

    class Refuses:
        name, teacher_id, dim, languages = "fake", "fake-v1", 4, None

        def encode(self, texts, batch_size=64, show_progress=None):
            raise AssertionError(f"not cached: {texts[:3]}")

    every = [f"sentence {i} " + "x" * (i % 7) for i in range(400)]
    reader = CachedTeacher(Refuses(), tmp_path)
    emb = reader.encode(every)
    assert reader.teacher_calls == 0
    np.testing.assert_array_equal(emb, np.array([[len(t)] * 4 for t in every], np.float32))
