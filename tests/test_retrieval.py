"""Tests of speechx.retrieval: exact chunked search, FAISS backends, save/load, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

import speechx.retrieval as retrieval
from speechx.errors import RetrievalError
from speechx.retrieval import EmbeddingIndex, SearchResult, exact_topk


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _naive(queries: np.ndarray, corpus: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Full score matrix, stable sort by descending score: ties go to the lower index."""
    scores = queries @ corpus.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


@pytest.mark.parametrize(("q_chunk", "c_chunk"), [(1, 1), (3, 7), (64, 1000)])
def test_exact_chunked_equals_naive(q_chunk: int, c_chunk: int) -> None:
    rng = np.random.default_rng(0)
    corpus, queries = _unit(rng, 97, 8), _unit(rng, 11, 8)
    idx, sc = exact_topk(queries, corpus, 10, query_chunk=q_chunk, corpus_chunk=c_chunk)
    n_idx, n_sc = _naive(queries, corpus, 10)
    np.testing.assert_array_equal(idx, n_idx)
    np.testing.assert_allclose(sc, n_sc, atol=1e-6)
    assert idx.dtype == np.int64 and sc.dtype == np.float32


def test_exact_ties_go_to_lower_index_across_chunks() -> None:
    # Small-integer vectors give exact float32 dot products, so there are many exact ties,
    # also across chunk boundaries.
    rng = np.random.default_rng(1)
    corpus = rng.integers(-1, 2, size=(40, 3)).astype(np.float32)
    queries = rng.integers(-1, 2, size=(6, 3)).astype(np.float32)
    index = EmbeddingIndex.build(
        corpus, backend="exact", metric="ip", query_chunk=4, corpus_chunk=13
    )
    res = index.search(queries, top_k=5)
    n_idx, n_sc = _naive(queries, corpus, 5)
    assert (np.diff(n_sc, axis=1) == 0).any()  # the fixture really has ties
    np.testing.assert_array_equal(res.indices, n_idx)
    np.testing.assert_array_equal(res.scores, n_sc)


def test_exact_equals_faiss_flat() -> None:
    rng = np.random.default_rng(2)
    corpus, queries = _unit(rng, 500, 16), _unit(rng, 40, 16)
    ids = [f"utt{i:03d}" for i in range(500)]
    a = EmbeddingIndex.build(corpus, ids, backend="exact", corpus_chunk=64).search(queries, 7)
    b = EmbeddingIndex.build(corpus, ids, backend="faiss-flat").search(queries, 7)
    np.testing.assert_array_equal(a.indices, b.indices)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
    assert a.ids == b.ids
    assert a.ids[0] == [ids[j] for j in a.indices[0]]


def test_ivf_probing_every_cell_is_exact() -> None:
    rng = np.random.default_rng(3)
    corpus, queries = _unit(rng, 400, 8), _unit(rng, 20, 8)
    ivf = EmbeddingIndex.build(corpus, backend="faiss-ivf", nlist=8, nprobe=8)
    assert ivf.config.nlist == 8
    exact = EmbeddingIndex.build(corpus, backend="exact").search(queries, 5)
    np.testing.assert_array_equal(ivf.search(queries, 5).indices, exact.indices)
    one_cell = ivf.search(queries, 5, nprobe=1)  # approximate: usually misses some hits
    assert one_cell.indices.shape == (20, 5)
    assert not np.array_equal(one_cell.indices, exact.indices)


def test_exact_search_never_scores_more_than_one_chunk(monkeypatch: pytest.MonkeyPatch) -> None:
    shapes = []
    real = retrieval._block_topk

    def spy(block: np.ndarray, k: int):  # noqa: ANN202
        shapes.append(block.shape)
        return real(block, k)

    monkeypatch.setattr(retrieval, "_block_topk", spy)
    rng = np.random.default_rng(13)
    corpus, queries = _unit(rng, 100, 4), _unit(rng, 10, 4)
    res = EmbeddingIndex.build(corpus, query_chunk=4, corpus_chunk=30).search(queries, 3)
    assert max(r for r, _ in shapes) == 4 and max(c for _, c in shapes) == 30
    assert len(shapes) == 3 * 4  # 3 query chunks x 4 corpus chunks
    np.testing.assert_array_equal(res.indices, _naive(queries, corpus, 3)[0])


def test_top_k_above_corpus_size_returns_every_row() -> None:
    rng = np.random.default_rng(4)
    corpus = _unit(rng, 3, 4)
    for backend in ("exact", "faiss-flat"):
        res = EmbeddingIndex.build(corpus, backend=backend).search(corpus, top_k=10)
        assert res.indices.shape == (3, 3)
        assert res.indices[:, 0].tolist() == [0, 1, 2]  # each row finds itself first
        assert sorted(res.indices[0].tolist()) == [0, 1, 2]


def test_single_query_vector_and_empty_queries() -> None:
    rng = np.random.default_rng(5)
    corpus = _unit(rng, 10, 4)
    index = EmbeddingIndex.build(corpus)
    one = index.search(corpus[3], top_k=2)
    assert isinstance(one, SearchResult) and one.indices.shape == (1, 2)
    assert one.indices[0, 0] == 3 and one.ids[0][0] == "3"
    none = index.search(np.zeros((0, 4), dtype=np.float32), top_k=2)
    assert none.indices.shape == (0, 2) and none.ids == []


def test_cosine_normalises_queries_and_optionally_corpus() -> None:
    rng = np.random.default_rng(6)
    raw = rng.standard_normal((20, 6)).astype(np.float32) * 3
    with pytest.raises(RetrievalError, match=r"row 0 \(id 'a0'\).*normalize=True"):
        EmbeddingIndex.build(raw, [f"a{i}" for i in range(20)])
    index = EmbeddingIndex.build(raw, normalize=True)
    res = index.search(raw * 5, top_k=1)
    assert res.indices[:, 0].tolist() == list(range(20))
    np.testing.assert_allclose(res.scores[:, 0], 1.0, atol=1e-5)
    ip = EmbeddingIndex.build(raw, metric="ip").search(raw[:1], top_k=1)
    assert ip.scores[0, 0] == pytest.approx(float(raw[0] @ raw[ip.indices[0, 0]]), rel=1e-5)


def test_auto_backend_switches_to_faiss(monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = _unit(np.random.default_rng(7), 50, 4)
    assert EmbeddingIndex.build(corpus).config.backend == "exact"
    monkeypatch.setattr(retrieval, "AUTO_FAISS_MIN_ROWS", 50)
    assert EmbeddingIndex.build(corpus).config.backend == "faiss-flat"


@pytest.mark.parametrize("backend", ["exact", "faiss-flat", "faiss-ivf", "faiss-hnsw"])
def test_save_load_round_trip(tmp_path, backend: str) -> None:
    rng = np.random.default_rng(8)
    corpus, queries = _unit(rng, 300, 8), _unit(rng, 5, 8)
    ids = [f"spk1-utt {i}" for i in range(300)]  # ids may contain spaces
    index = EmbeddingIndex.build(corpus, ids, backend=backend, nlist=4, nprobe=2)
    before = index.search(queries, 4)
    out = index.save(tmp_path / "idx")
    loaded = EmbeddingIndex.load(out)
    after = loaded.search(queries, 4)
    assert loaded.ids == ids and loaded.config == index.config and loaded.dim == 8
    np.testing.assert_array_equal(before.indices, after.indices)
    np.testing.assert_array_equal(before.scores, after.scores)
    np.testing.assert_allclose(loaded.embeddings, corpus, atol=1e-6)
    meta = json.loads((out / "index.json").read_text())
    assert meta["size"] == 300 and meta["config"]["backend"] == backend


def test_save_replaces_existing_directory_without_leftovers(tmp_path) -> None:
    rng = np.random.default_rng(9)
    EmbeddingIndex.build(_unit(rng, 10, 4)).save(tmp_path / "idx")
    EmbeddingIndex.build(_unit(rng, 3, 4), backend="faiss-flat").save(tmp_path / "idx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["idx"]
    assert sorted(p.name for p in (tmp_path / "idx").iterdir()) == [
        "ids.txt",
        "index.faiss",
        "index.json",
    ]
    assert len(EmbeddingIndex.load(tmp_path / "idx")) == 3


def test_load_errors_name_the_file(tmp_path) -> None:
    with pytest.raises(RetrievalError, match="index.json: not found"):
        EmbeddingIndex.load(tmp_path)
    EmbeddingIndex.build(_unit(np.random.default_rng(10), 4, 4)).save(tmp_path / "i")
    (tmp_path / "i" / "ids.txt").write_text("a\nb\n")
    with pytest.raises(RetrievalError, match=r"ids.txt: 2 ids but index.json says 4"):
        EmbeddingIndex.load(tmp_path / "i")


def test_build_and_search_errors() -> None:
    rng = np.random.default_rng(11)
    good = _unit(rng, 6, 4)
    with pytest.raises(RetrievalError, match="empty corpus"):
        EmbeddingIndex.build(np.zeros((0, 4), dtype=np.float32))
    bad = good.copy()
    bad[4, 2] = np.nan
    with pytest.raises(RetrievalError, match=r"1 row\(s\) hold NaN.*row 4 \(id 'e'\)"):
        EmbeddingIndex.build(bad, list("abcdef"))
    with pytest.raises(RetrievalError, match="duplicate id 'a' at row 3"):
        EmbeddingIndex.build(good, list("abcaef"))
    with pytest.raises(RetrievalError, match="got 2 ids for 6"):
        EmbeddingIndex.build(good, ["a", "b"])
    with pytest.raises(RetrievalError, match="unknown index backend"):
        EmbeddingIndex.build(good, backend="annoy")
    with pytest.raises(RetrievalError, match="2-D"):
        EmbeddingIndex.build(good[0])
    index = EmbeddingIndex.build(good)
    with pytest.raises(RetrievalError, match="dimension 5 but the index has dimension 4"):
        index.search(np.ones((2, 5), dtype=np.float32))
    with pytest.raises(RetrievalError, match="top_k must be a positive integer"):
        index.search(good, top_k=0)
    nan_q = good[:2].copy()
    nan_q[1, 0] = np.inf
    with pytest.raises(RetrievalError, match="queries: 1 row.*row 1"):
        index.search(nan_q)
    with pytest.raises(RetrievalError, match="all-zero"):
        index.search(np.zeros((1, 4), dtype=np.float32))


def test_build_copies_the_embeddings() -> None:
    x = _unit(np.random.default_rng(12), 5, 4)
    index = EmbeddingIndex.build(x)
    x[:] = 0
    assert np.all(np.linalg.norm(index.embeddings, axis=1) > 0.99)


def _clustered(
    rng: np.random.Generator, n: int, d: int, clusters: int, spread: float = 0.3
) -> np.ndarray:
    centres = rng.standard_normal((clusters, d)).astype(np.float32)
    x = centres[rng.integers(0, clusters, n)] + spread * rng.standard_normal((n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_hnsw_finds_the_exact_top1_on_clustered_data() -> None:
    rng = np.random.default_rng(20)
    corpus = _clustered(rng, 2000, 32, clusters=20)
    noisy = corpus[rng.integers(0, 2000, 50)] + 0.05 * rng.standard_normal((50, 32))
    queries = noisy.astype(np.float32)
    exact = EmbeddingIndex.build(corpus, backend="exact").search(queries, 10)
    hnsw = EmbeddingIndex.build(corpus, backend="faiss-hnsw", hnsw_m=16, ef_construction=40)
    assert hnsw.config.backend == "faiss-hnsw" and hnsw.config.hnsw_m == 16
    res = hnsw.search(queries, 10, ef_search=64)
    np.testing.assert_array_equal(res.indices[:, 0], exact.indices[:, 0])
    recall = (
        np.mean([len(set(a) & set(b)) for a, b in zip(res.indices, exact.indices, strict=True)])
        / 10
    )
    assert recall >= 0.95
    np.testing.assert_allclose(res.scores[:, 0], exact.scores[:, 0], atol=1e-5)
    # ef_search below top_k is raised to top_k, so every hit is a real row
    small = hnsw.search(queries, 10, ef_search=1)
    assert (small.indices >= 0).all() and all(len(set(r)) == 10 for r in small.ids)


def test_hnsw_search_does_not_change_the_configured_ef_search() -> None:
    corpus = _clustered(np.random.default_rng(21), 300, 8, clusters=5)
    hnsw = EmbeddingIndex.build(corpus, backend="faiss-hnsw", ef_search=20)
    hnsw.search(corpus[:3], 5, ef_search=200)
    assert hnsw._faiss.hnsw.efSearch == 20 and hnsw.config.ef_search == 20


def test_ivf_trains_on_a_sample_and_still_indexes_every_row() -> None:
    rng = np.random.default_rng(22)
    corpus = _clustered(rng, 3000, 16, clusters=30)
    ivf = EmbeddingIndex.build(corpus, backend="faiss-ivf", nlist=10, nprobe=10, ivf_train_size=400)
    assert ivf.config.ivf_train_size == 400 and len(ivf) == 3000
    assert ivf._faiss.ntotal == 3000
    exact = EmbeddingIndex.build(corpus, backend="exact").search(corpus[:20], 5)
    np.testing.assert_array_equal(ivf.search(corpus[:20], 5).indices, exact.indices)
    # the same seed gives the same quantiser; another seed another one
    again = EmbeddingIndex.build(corpus, backend="faiss-ivf", nlist=10, ivf_train_size=400)
    other = EmbeddingIndex.build(corpus, backend="faiss-ivf", nlist=10, ivf_train_size=400, seed=1)
    c0, c1, c2 = (i._faiss.quantizer.reconstruct_n(0, 10) for i in (ivf, again, other))
    np.testing.assert_array_equal(c0, c1)
    assert not np.array_equal(c0, c2)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"backend": "faiss-hnsw", "hnsw_m": 0}, "hnsw_m must be positive, got 0"),
        ({"backend": "faiss-hnsw", "ef_construction": -1}, "ef_construction must be positive"),
        ({"backend": "faiss-hnsw", "ef_search": 0}, "ef_search must be positive"),
        ({"backend": "faiss-ivf", "nlist": 0}, r"nlist must be in \[1, 50\]"),
        ({"backend": "faiss-ivf", "nlist": 8, "ivf_train_size": 4}, "at least nlist=8, got 4"),
        ({"backend": "faiss-ivf", "nprobe": 0}, "nprobe must be positive"),
    ],
)
def test_faiss_config_validation(kwargs: dict, message: str) -> None:
    corpus = _unit(np.random.default_rng(23), 50, 4)
    with pytest.raises(RetrievalError, match=message):
        EmbeddingIndex.build(corpus, **kwargs)


def test_search_time_settings_are_validated() -> None:
    corpus = _unit(np.random.default_rng(24), 60, 4)
    hnsw = EmbeddingIndex.build(corpus, backend="faiss-hnsw")
    with pytest.raises(RetrievalError, match="ef_search must be positive, got 0"):
        hnsw.search(corpus[:2], 3, ef_search=0)
    ivf = EmbeddingIndex.build(corpus, backend="faiss-ivf", nlist=2)
    with pytest.raises(RetrievalError, match="nprobe must be positive, got 0"):
        ivf.search(corpus[:2], 3, nprobe=0)


def test_index_written_before_hnsw_options_still_loads(tmp_path) -> None:
    corpus = _unit(np.random.default_rng(25), 20, 4)
    out = EmbeddingIndex.build(corpus, backend="faiss-flat").save(tmp_path / "old")
    meta = json.loads((out / "index.json").read_text())
    for key in ("ivf_train_size", "hnsw_m", "ef_construction", "ef_search"):
        del meta["config"][key]
    (out / "index.json").write_text(json.dumps(meta))
    loaded = EmbeddingIndex.load(out)
    assert loaded.config.backend == "faiss-flat" and loaded.config.hnsw_m == 32
    assert loaded.search(corpus[:1], 1).indices[0, 0] == 0


def test_cli_index_builds_an_hnsw_index_with_its_options(tmp_path) -> None:
    from speechx.cli import main

    emb = _clustered(np.random.default_rng(26), 200, 8, clusters=4)
    src = tmp_path / "emb"
    src.mkdir()
    np.save(src / "embeddings.npy", emb * 3)  # the index verb normalises
    (src / "ids.txt").write_text("".join(f"u{i:03d}\n" for i in range(200)))
    out = tmp_path / "idx"
    argv = ["index", "--embeddings", str(src), "--out", str(out), "--backend", "faiss-hnsw"]
    assert main([*argv, "--hnsw-m", "8", "--ef-search", "40"]) == 0
    index = EmbeddingIndex.load(out)
    assert index.config.backend == "faiss-hnsw"
    assert (index.config.hnsw_m, index.config.ef_search) == (8, 40)
    assert index.search(emb[5], 1).ids[0][0] == "u005"
