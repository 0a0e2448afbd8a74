"""The question-vector cache: repeated questions skip the embedder, the cache stays bounded, passages pass by."""

import numpy as np

from app.config import Settings
from app.embeddings import CachedQueries, make_embedder


class CountingEmbedder:
    name = "counting"
    dim = 3

    def __init__(self):
        self.queries: list[str] = []
        self.passages: list[str] = []

    def embed_queries(self, texts):
        self.queries.extend(texts)
        return np.array([[len(t), 1.0, 0.0] for t in texts], dtype=np.float32)

    def embed_passages(self, texts, *, progress=False):
        self.passages.extend(texts)
        return np.ones((len(texts), 3), dtype=np.float32)


def test_a_repeated_question_is_embedded_once_and_gets_the_same_vector():
    inner = CountingEmbedder()
    cached = CachedQueries(inner, size=10)
    first = cached.embed_queries(["ما هي المسيرات؟", "Who signed?"])
    again = cached.embed_queries(["Who signed?", "new one", "ما هي المسيرات؟"])
    assert inner.queries == ["ما هي المسيرات؟", "Who signed?", "new one"]
    assert np.array_equal(again[0], first[1]) and np.array_equal(again[2], first[0])
    again[0][0] = -1  # callers get copies: the cached vector is not changed through them
    assert cached.embed_queries(["Who signed?"])[0][0] == len("Who signed?")
    assert (cached.hits, cached.misses) == (3, 3)


def test_the_cache_keeps_only_the_most_recent_questions():
    inner = CountingEmbedder()
    cached = CachedQueries(inner, size=2)
    for question in ["a", "b", "a", "c", "b"]:  # "b" was evicted by "c" (least recently used)
        cached.embed_queries([question])
    assert inner.queries == ["a", "b", "c", "b"]


def test_passages_are_not_cached_and_attributes_pass_through():
    inner = CountingEmbedder()
    cached = CachedQueries(inner, size=2)
    cached.embed_passages(["x", "x"])
    cached.embed_passages(["x"])
    assert inner.passages == ["x", "x", "x"] and cached.dim == 3 and cached.name == "counting"


def test_the_cache_is_on_by_default_and_can_be_turned_off():
    assert isinstance(make_embedder(Settings()), CachedQueries)
    assert not isinstance(make_embedder(Settings(query_cache_size=0)), CachedQueries)
