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


def _queue_then_release(batcher, inner, ask, texts, running):
    """Ask `texts` from threads while the worker is held, wait until all are queued, then let everything finish."""
    import threading

    others = [threading.Thread(target=ask, args=(t,)) for t in texts]
    for thread in others:
        thread.start()
    while batcher._queue.qsize() < len(texts):
        pass
    inner.release.set()
    for thread in [*running, *others]:
        thread.join(5)


def test_questions_are_embedded_by_one_thread_and_waiting_ones_share_a_call():
    import threading

    from app.embeddings import QueryBatcher

    class SlowRecorder(CountingEmbedder):
        def __init__(self):
            super().__init__()
            self.calls: list[list[str]] = []
            self.threads: set[int] = set()
            self.release = threading.Event()

        def embed_queries(self, texts):
            self.calls.append(list(texts))
            self.threads.add(threading.get_ident())
            self.release.wait(5)  # the first call holds the worker so the others queue up behind it
            return super().embed_queries(texts)

    inner = SlowRecorder()
    batcher = QueryBatcher(inner, max_batch=16)
    results: dict[str, np.ndarray] = {}

    def ask(text):
        results[text] = batcher.embed_queries([text])[0]

    first = threading.Thread(target=ask, args=("a",))
    first.start()
    while not inner.calls:  # the worker is busy with "a"
        pass
    _queue_then_release(batcher, inner, ask, ["bb", "ccc", "dddd"], [first])
    assert inner.calls[0] == ["a"] and sorted(inner.calls[1]) == ["bb", "ccc", "dddd"]  # one call for the three
    assert len(inner.threads) == 1  # always the worker thread
    assert all(results[t][0] == len(t) for t in ("a", "bb", "ccc", "dddd"))  # each caller gets its own vector


def test_an_embedding_error_reaches_every_waiting_caller():
    import pytest

    from app.embeddings import QueryBatcher

    class Broken(CountingEmbedder):
        def embed_queries(self, texts):
            raise RuntimeError("engine failed")

    batcher = QueryBatcher(Broken(), max_batch=4)
    with pytest.raises(RuntimeError, match="engine failed"):
        batcher.embed_queries(["x"])
    with pytest.raises(RuntimeError, match="engine failed"):  # the worker survives and serves the next call
        batcher.embed_queries(["y"])


def test_passages_go_in_slices_so_questions_can_go_between():
    from app.embeddings import QueryBatcher

    inner = CountingEmbedder()
    calls: list[int] = []
    original = inner.embed_passages

    def recording(texts, *, progress=False):
        calls.append(len(texts))
        return original(texts, progress=progress)

    inner.embed_passages = recording
    batcher = QueryBatcher(inner, max_batch=4)
    vectors = batcher.embed_passages([f"p{i}" for i in range(10)])
    assert calls == [4, 4, 2] and vectors.shape == (10, 3)
    assert batcher.embed_queries(["q"]).shape == (1, 3)


class ThreadSettingRecorder(CountingEmbedder):
    """An engine that takes a thread count per calling thread (as app/native's does), recording who asked what."""

    sets_threads = True

    def __init__(self):
        super().__init__()
        import threading

        self.local = threading.local()
        self.calls: list[tuple[list[str], int]] = []  # texts, thread count in force for that call
        self.release = threading.Event()
        self.lock = threading.Lock()

    def set_threads(self, n):
        self.local.n = n

    def embed_queries(self, texts):
        with self.lock:
            self.calls.append((list(texts), getattr(self.local, "n", None)))
        self.release.wait(5)
        return super().embed_queries(texts)


def test_a_lone_question_gets_every_core_and_queued_ones_are_shared_with_a_helper_on_one_core_each():
    import threading

    from app.embeddings import QueryBatcher

    inner = ThreadSettingRecorder()
    batcher = QueryBatcher(inner, max_batch=16, workers=2)
    results: dict[str, np.ndarray] = {}

    def ask(text):
        results[text] = batcher.embed_queries([text])[0]

    first = threading.Thread(target=ask, args=("a",))
    first.start()
    while not inner.calls:
        pass
    assert inner.calls[0] == (["a"], 0)  # alone: all cores
    _queue_then_release(batcher, inner, ask, ["bb", "ccc", "dddd", "eeeee"], [first])
    later = inner.calls[1:]
    assert sorted(t for texts, _ in later for t in texts) == ["bb", "ccc", "dddd", "eeeee"]  # each once
    assert len(later) == 2 and all(n == 1 for _, n in later)  # split in two shares, one core each
    assert all(results[t][0] == len(t) for t in results) and len(results) == 5  # each caller its own vector


def test_helpers_need_an_engine_that_sets_threads():
    from app.embeddings import QueryBatcher

    assert QueryBatcher(CountingEmbedder(), max_batch=4, workers=4).workers == 1
    assert QueryBatcher(ThreadSettingRecorder(), max_batch=4, workers=4).workers == 4


def test_shares_keep_every_request_once_in_order():
    from app.embeddings import _split

    requests = [("queries", [str(i)] * size, False, None) for i, size in enumerate([1, 5, 1, 1, 2])]
    for parts in range(1, 7):
        shares = _split(requests, parts)
        assert [r for share in shares for r in share] == requests
        assert 1 <= len(shares) <= min(parts, len(requests))
