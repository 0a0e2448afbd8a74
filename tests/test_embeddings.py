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
    assert not isinstance(make_embedder(Settings(), query_cache_size=0), CachedQueries)


def _queue_then_release(batcher, inner, ask, texts, running):
    """Ask `texts` from threads while the worker is held, wait until all are queued, then let everything finish."""
    import threading

    others = [threading.Thread(target=ask, args=(t,)) for t in texts]
    for thread in others:
        thread.start()
    while len(batcher._questions) < len(texts):
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


def test_a_lone_question_gets_every_core_and_questions_queued_meanwhile_go_to_a_helper_on_one_core():
    import threading
    import time

    from app.embeddings import QueryBatcher

    inner = ThreadSettingRecorder()
    batcher = QueryBatcher(inner, max_batch=16, workers=2)
    results: dict[str, np.ndarray] = {}

    def ask(text):
        results[text] = batcher.embed_queries([text])[0]

    first = threading.Thread(target=ask, args=("a",))
    first.start()
    while not inner.calls:
        time.sleep(0.001)
    assert inner.calls[0] == (["a"], 0)  # alone: all cores
    others = [threading.Thread(target=ask, args=(t,)) for t in ("bb", "ccc", "dddd", "eeeee")]
    for thread in others:
        thread.start()
    deadline = time.monotonic() + 5
    while len(inner.calls) < 2 and time.monotonic() < deadline:  # the first worker is still held on "a"
        time.sleep(0.001)
    assert len(inner.calls) == 2 and inner.calls[1][1] == 1  # a helper took what queued, on one core
    inner.release.set()
    for thread in [first, *others]:
        thread.join(5)
    later = inner.calls[1:]
    assert sorted(t for texts, _ in later for t in texts) == ["bb", "ccc", "dddd", "eeeee"]  # each once
    assert all(results[t][0] == len(t) for t in results) and len(results) == 5  # each caller its own vector
    # Once everything is done, a lone question is the first worker's again, on every core.
    while any(helper.busy for helper in batcher._helpers):
        time.sleep(0.001)
    batcher.embed_queries(["z"])
    assert inner.calls[-1] == (["z"], 0)


def test_the_first_worker_splits_a_waiting_batch_with_an_idle_helper():
    from app.embeddings import QueryBatcher

    inner = ThreadSettingRecorder()
    inner.release.set()
    batcher = QueryBatcher(inner, max_batch=16, workers=2)
    futures = []
    from concurrent.futures import Future

    for text in ("a", "bb", "ccc", "dddd"):  # queued before the workers start: one batch of four
        future: Future = Future()
        futures.append(future)
        batcher._questions.append(("queries", [text], False, future))
    batcher._start()
    vectors = [f.result(5)[0][0] for f in futures]
    assert vectors == [1, 2, 3, 4]
    assert sorted(t for texts, _ in inner.calls for t in texts) == ["a", "bb", "ccc", "dddd"]
    assert all(n == 1 for _, n in inner.calls)  # shared: each part on one core


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


def test_a_waiting_update_goes_after_one_batch_of_questions_and_helpers_leave_passages_alone():
    import threading
    import time

    from app.embeddings import QueryBatcher

    inner = ThreadSettingRecorder()
    order: list[str] = []
    workers: set[str] = set()
    original_queries, original_passages = inner.embed_queries, CountingEmbedder.embed_passages

    def queries(texts):
        order.append("q:" + ",".join(texts))
        return original_queries(texts)

    def passages(texts, *, progress=False):
        order.append("p:" + ",".join(texts))
        workers.add(threading.current_thread().name)
        return original_passages(inner, texts, progress=progress)

    inner.embed_queries, inner.embed_passages = queries, passages
    batcher = QueryBatcher(inner, max_batch=2, workers=2)
    threads = [threading.Thread(target=batcher.embed_queries, args=(["a"],))]
    threads[0].start()
    while not order:  # the first worker is held on "a"
        time.sleep(0.001)
    threads.append(threading.Thread(target=batcher.embed_passages, args=(["p1"],)))
    threads[-1].start()
    while not batcher._passages:
        time.sleep(0.001)
    inner.release.set()
    for thread in threads:
        thread.join(5)
    assert order == ["q:a", "p:p1"] and workers == {"embedder"}


def test_questions_and_an_update_take_turns_so_neither_starves():
    import threading
    import time

    from app.embeddings import QueryBatcher

    inner = ThreadSettingRecorder()
    order: list[str] = []
    original_queries = inner.embed_queries

    def queries(texts):
        order.append("q:" + ",".join(texts))
        return original_queries(texts)

    def passages(texts, *, progress=False):
        order.append("p:" + ",".join(texts))
        return np.ones((len(texts), 3), dtype=np.float32)

    inner.embed_queries, inner.embed_passages = queries, passages
    batcher = QueryBatcher(inner, max_batch=1, workers=1)
    threads = [threading.Thread(target=batcher.embed_queries, args=(["a"],))]
    threads[0].start()
    while not order:
        time.sleep(0.001)
    threads.append(threading.Thread(target=batcher.embed_passages, args=(["p1", "p2"],)))  # two slices of 1
    threads[-1].start()
    while not batcher._passages:
        time.sleep(0.001)
    for text in ("b", "c"):
        threads.append(threading.Thread(target=batcher.embed_queries, args=([text],)))
        threads[-1].start()
    while len(batcher._questions) < 2:
        time.sleep(0.001)
    inner.release.set()
    for thread in threads:
        thread.join(5)
    # After the batch holding "a", the waiting slice; then a question; then the update's next slice.
    assert order[:3] == ["q:a", "p:p1", "q:b"] and sorted(order) == ["p:p1", "p:p2", "q:a", "q:b", "q:c"]


def test_a_span_view_names_its_text_and_piece_and_batches_keep_it_with_its_text():
    from app.embeddings import group_slices, query_view, read_span_view, span_view

    text = "a sentence, with: colons and 1:2 ratios"
    marked = span_view(text, 3, 11)
    assert read_span_view(marked) == (text, 3, 11)
    texts = ["s1", span_view("s1", 0, 1), "s2", span_view("s2", 0, 1), span_view("s2", 1, 2), query_view("s2"), "s3"]
    slices = group_slices(texts, 3)
    assert [texts[part] for part in slices] == [texts[0:2] + texts[2:3] + texts[3:5], texts[5:7]]
