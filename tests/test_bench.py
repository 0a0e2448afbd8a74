"""Fast checks of the benchmark's pure pieces: statistics, the synthetic corpus and vectors, and app.ann."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from app import ann
from app.text.arabic import tokenize
from tests.conftest import SEEDS
from tools.bench import (
    SyntheticCorpus,
    VectorStructure,
    choose_config,
    median_dicts,
    percentiles,
    recall_at_k,
    seed_sentences,
    unit_vectors,
)


def test_percentiles_and_medians():
    p = percentiles(list(range(1, 101)))
    assert p["n"] == 100 and p["p50"] == 50.5 and p["p99"] == pytest.approx(99.01)
    assert percentiles([])["p50"] is None
    merged = median_dicts([{"a": 1, "b": {"c": 10}, "s": "x"}, {"a": 3, "b": {"c": 30}, "s": "y"},
                           {"a": 2, "b": {"c": 20}, "s": "z"}])
    assert merged == {"a": 2.0, "b": {"c": 20.0}, "s": "x"}


@pytest.fixture(scope="module")
def synthetic():
    return SyntheticCorpus(seed_sentences(SEEDS), seed=3, n_names=500)


def test_synthetic_chunks_look_like_the_corpus_and_tokens_match_the_tokenizer(synthetic):
    assert len(synthetic.sentences) > 100
    for i in range(40):
        text = synthetic.text(i)
        assert 400 <= len(text) <= 1000 + max(map(len, synthetic.sentences)) + 10
        assert sum("\u0621" <= ch <= "\u064a" for ch in text) > len(text) / 2  # mostly Arabic letters
        assert synthetic.tokens(i) == tokenize(text)  # composed tokens == tokenizing the text
    assert synthetic.text(7) == synthetic.text(7)  # a pure function of (seed, i)
    assert synthetic.text(7) != synthetic.text(8)
    assert SyntheticCorpus(synthetic.sentences, seed=4, n_names=500).text(7) != synthetic.text(7)
    queries = [synthetic.query(i) for i in range(20)]
    assert all(tokenize(q) for q in queries)


def test_unit_vectors_uniform_and_structured():
    uniform = unit_vectors(1000, 48, seed=1, batch=300)
    assert uniform.shape == (1000, 48) and uniform.dtype == np.float32
    assert np.allclose(np.linalg.norm(uniform, axis=1), 1, atol=1e-5)
    assert np.array_equal(uniform, unit_vectors(1000, 48, seed=1, batch=300))
    structured = unit_vectors(1000, 48, seed=1, structure=VectorStructure(10, 48, intrinsic=8))
    assert np.allclose(np.linalg.norm(structured, axis=1), 1, atol=1e-5)
    # Clustered vectors have much closer nearest neighbours than uniform noise.
    def mean_nn(x):
        sims = x @ x.T
        np.fill_diagonal(sims, -1)
        return sims.max(axis=1).mean()
    assert mean_nn(structured) > mean_nn(uniform) + 0.2


def test_recall_and_choice():
    exact = np.array([[1, 2, 3], [4, 5, 6]])
    assert recall_at_k(np.array([[3, 2, 1], [4, 9, 9]]), exact, k=3) == pytest.approx((1 + 1 / 3) / 2)
    rows = [{"index": "flat", "recall_at_10": 1.0, "latency_ms": {"p95": 9.0}},
            {"index": "hnsw", "recall_at_10": 0.97, "latency_ms": {"p95": 0.5}},
            {"index": "hnsw", "recall_at_10": 0.90, "latency_ms": {"p95": 0.2}},
            {"index": "ivf_sq8", "recall_at_10": 0.96, "latency_ms": {"p95": 0.8}}]
    choice = choose_config(rows)
    assert choice["fastest"] is rows[1]
    assert set(choice["by_kind"]) == {"hnsw", "ivf_sq8"}
    assert choose_config(rows[:1]) is None


def test_choose_index_kind():
    assert ann.choose_index_kind(0) == "flat"
    assert ann.choose_index_kind(106) == "flat"
    assert ann.choose_index_kind(ann.FLAT_MAX_VECTORS) == "flat"
    assert ann.choose_index_kind(ann.FLAT_MAX_VECTORS + 1) == "ivf"
    assert ann.choose_index_kind(1_000_000) == "ivf"
    with pytest.raises(ValueError):
        ann.choose_index_kind(-1)


@pytest.mark.parametrize("kind", ann.KINDS)
def test_make_dense_index_small(kind):
    vectors = unit_vectors(3000, 32, seed=5, structure=VectorStructure(20, 32, intrinsic=8))
    index = ann.make_dense_index(vectors, kind)
    assert index.ntotal == 3000 and index.d == 32
    exact = vectors[:50] @ vectors.T
    exact_ids = np.argsort(-exact, axis=1)[:, :10]
    _, found = index.search(vectors[:50], 10)
    assert (found[:, 0] == np.arange(50)).mean() >= 0.95  # a stored vector finds itself
    assert recall_at_k(found, exact_ids) >= 0.9
    restored = faiss.deserialize_index(faiss.serialize_index(index))  # parameters survive write/read
    assert ann.index_params(restored) == ann.index_params(index)
    assert ann.index_params(index)["kind"] == kind


def test_make_dense_index_edge_cases():
    assert ann.make_dense_index(np.zeros((0, 16), dtype=np.float32), "flat").ntotal == 0
    tiny = unit_vectors(50, 16, seed=2)
    assert ann.make_dense_index(tiny, "ivf").ntotal == 50  # nlist shrinks to what 50 points can train
    assert ann.ivf_nlist(1_000_000) == 2048 and ann.ivf_nlist(100_000) == 512
    with pytest.raises(ValueError):
        ann.make_dense_index(tiny, "lsh")
    with pytest.raises(ValueError):
        ann.make_dense_index(tiny[0], "flat")
