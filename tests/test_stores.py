"""The two stores (app/stores/): Qdrant's sparse vectors of our own terms rank chunks as bm25s does, its two engines
(embedded, and qdrant-client as a server would be used) fuse the same rankings alike and keep only the live build,
and several processes serve one corpus, each seeing the updates the others commit."""

from __future__ import annotations

import numpy as np
import pytest
from _tiny import NEW, QUESTION, REPO, rag, tiny_settings, write_corpus

from app.corpus import load_corpus
from app.service import RagService
from app.stores import HybridQuery, identity
from app.stores.faiss_store import FaissStore, top_positive
from app.stores.qdrant_store import QdrantStore
from app.text.arabic import tokenize


@pytest.fixture(scope="module")
def seed_chunks():
    """The seeds' paragraphs as chunks, with random unit vectors: what the sparse side reads is the terms."""
    corpus = load_corpus(REPO / "seeds")
    texts = [a.raw[s:e] for a in corpus.articles.values() for s, e in a.blocks if e - s > 80]
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((len(texts), 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return texts, [tokenize(t) for t in texts], vectors


def _written(store: QdrantStore, folder):
    folder.mkdir(parents=True, exist_ok=True)
    store.write(folder, folder.name)
    store.attach(folder)
    return store


def _qdrant(seed_chunks, location, folder, n: int | None = None) -> QdrantStore:
    _, terms, vectors = seed_chunks
    terms, vectors = terms[:n], vectors[:n]
    return _written(QdrantStore.build(location, terms, vectors, vectors, [[i] for i in range(len(vectors))]), folder)


def test_qdrant_sparse_vectors_rank_chunks_as_bm25s_does(seed_chunks, tmp_path):
    texts, terms, vectors = seed_chunks
    faiss_store = FaissStore.build(terms, vectors, vectors)
    qdrant = _qdrant(seed_chunks, {"kind": "qdrant", "engine": "edge"}, tmp_path / "build-a")
    engine = qdrant._open()
    for question in ("روسيا وإيران تعاون عسكري", "مناورات بحرية في بحر قزوين", "الصين الاقتصاد الحزام والطريق"):
        known = [t for t in tokenize(question) if t in qdrant.vocabulary]
        scores = faiss_store.bm25.get_scores(known)
        expected = top_positive(scores, 10)
        ids, counts = np.unique([qdrant.vocabulary[t] for t in known], return_counts=True)
        fused, _ = engine.search([("sparse", "bm25", (ids.tolist(), counts.astype(float).tolist()), 1.0)], 10, 60,
                                 vectors[0].tolist(), 1)
        found = [i for i, _ in fused]
        # The same chunks in the same order of BM25 score (chunks of equal score may come in either order).
        assert sorted(found) == sorted(expected.tolist()), question
        assert np.all(np.diff(scores[found]) <= 1e-6), question


@pytest.mark.slow  # qdrant-client's local mode writes a point at a time: seconds
def test_qdrant_engines_fuse_alike_and_a_server_keeps_only_the_live_build(seed_chunks, tmp_path):
    """qdrant-client's local mode stands in for a server here: the same client calls, in process."""
    _, terms, vectors = seed_chunks
    settings = tiny_settings(tmp_path, store="qdrant", qdrant_path=tmp_path / "qdrant")
    location = identity(settings)
    n = 24  # local mode writes a point at a time
    edge = _qdrant(seed_chunks, {"kind": "qdrant", "engine": "edge"}, tmp_path / "build-edge", n)
    client = _qdrant(seed_chunks, location, tmp_path / "build-1", n)
    query = HybridQuery(vectors[3], [t for t in tokenize("روسيا وإيران") if t in edge.vocabulary], 0.8, depth=10,
                        sentence_depth=20)
    by_edge, by_client = edge.hybrid(query), client.hybrid(query)
    assert [i for i, _ in by_edge.fused] == [i for i, _ in by_client.fused]
    assert by_edge.nearest_sentences[0][0] == by_client.nearest_sentences[0][0] == 3
    _qdrant(seed_chunks, location, tmp_path / "build-2", 2)
    from app.stores import retire_unused
    from app.stores.qdrant_store import _client

    retire_unused(settings, keep="build-2")
    names = sorted(c.name for c in _client(location).get_collections().collections)
    assert names == [f"{location['collections']}build-2-chunks", f"{location['collections']}build-2-sentences"]


@pytest.mark.slow  # a `rag add` subprocess
@pytest.mark.parametrize("store", ["faiss", "qdrant"])
def test_a_serving_process_sees_an_update_another_process_commits(store, tmp_path):
    settings = tiny_settings(tmp_path, store=store)
    write_corpus(settings.corpus_dir)
    serving = RagService(settings)
    before = serving.snapshot.build
    (tmp_path / "india.txt").write_text(NEW["india"], encoding="utf-8")
    process = rag(settings, "add", str(tmp_path / "india.txt"))
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err
    # Nothing is reloaded until asked; the API asks on every request (app/api/deps.py).
    assert serving.snapshot.build == before
    snapshot = serving.refresh()
    assert snapshot.build != before and snapshot.build == serving.snapshot.build
    added = [a for a in snapshot.corpus.articles if a not in ("ru", "cn", "tr")]
    assert len(added) == 1
    assert serving.search(QUESTION["india"], 1).hits[0].article_id == added[0]
    assert serving.refresh() is snapshot  # nothing newer: the same snapshot, nothing reloaded
