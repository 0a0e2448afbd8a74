"""RAG_STORE=qdrant: the searches and their fusion done by Qdrant.

Each build has two collections. `chunks`: a point per chunk (its id is the chunk's row) holding the chunk vector,
its sentences' vectors as one multivector (Qdrant's MaxSim then ranks a chunk by its best sentence, the retriever's
"sentence" ranking) and a sparse vector of our own Arabic terms (app/text/arabic.py) whose values are bm25s's
term-frequency part, searched with Qdrant's IDF modifier: Qdrant's IDF is Lucene's, as bm25s's, so the sparse
ranking is today's BM25. `sentences`: a point per sentence (the nearest sentences the spread over articles reads).
One query with a prefetch per ranking, fused by Qdrant's weighted RRF, answers a question.

Two engines, one layout: embedded (qdrant-edge, Qdrant's own engine in process; a build's shards live inside its
build folder, so they are written, committed and retired with it, and several processes may read them) or a
Qdrant server or cluster through qdrant-client (RAG_QDRANT_URL; or RAG_QDRANT_PATH, qdrant-client's local mode, the
same client API in process for one process at a time), with collections named after the build and dropped once
another build is live (`retire_collections`).
"""

from __future__ import annotations

import atexit
import json
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import bm25s
import numpy as np

from app.errors import IndexUnavailable
from app.stores import HybridQuery, HybridResult

CHUNK, SENTENCES, SPARSE, SENTENCE = "chunk", "sentences", "bm25", "sentence"
TERMS_FILE = "terms.json"
SHARDS_DIR = "qdrant"
BATCH = 256  # points a request
# HNSW's search breadth where a segment has one (Qdrant's default, its ef_construct of 100, gave recall@120 of the
# nearest sentences 0.97 at 10^5 chunks; the FAISS store's IVF gives 0.996): the FAISS HNSW's value (app/ann.py).
HNSW_EF = 256


def _lucene_idf(df: np.ndarray, n: int) -> np.ndarray:
    return np.log(1 + (n - df + 0.5) / (df + 0.5))


class QdrantStore:
    kind = "qdrant"
    dense = sentence_dense = bm25 = None  # the FAISS store's structures: none here

    def __init__(self, location: Mapping, vocabulary: dict[str, int], df: np.ndarray, counts: Mapping[str, int],
                 pending: dict | None = None):
        self.location = dict(location)
        self.vocabulary = vocabulary
        self._df = np.asarray(df, dtype=np.int64)
        self.counts = dict(counts)
        self._pending = pending  # what `write` uploads; None once written or when loaded
        self._engine: _Edge | _Client | None = None
        self._folder: Path | None = None
        self._lock = threading.Lock()

    # -- building, writing, loading --------------------------------------------------------------------------------

    @classmethod
    def build(cls, location: Mapping, chunk_terms: Sequence[list[str]], chunk_vectors: np.ndarray,
              sentence_vectors: np.ndarray, chunk_sentences: Sequence[Sequence[int]]) -> QdrantStore:
        """The sparse vectors come from bm25s, so their term-frequency part (k1, b, the length normalisation) is the
        FAISS store's exactly; Qdrant multiplies in the IDF at query time."""
        bm25 = bm25s.BM25()
        bm25.index(list(chunk_terms), show_progress=False)
        data, indices, indptr = (np.asarray(bm25.scores[k]) for k in ("data", "indices", "indptr"))
        df = np.diff(indptr)
        n = len(chunk_vectors)
        terms = np.repeat(np.arange(len(df)), df)
        tf_part = data / _lucene_idf(df, max(n, 1))[terms]  # bm25s stores idf x tf part a posting
        order = np.lexsort((terms, indices))  # postings by chunk, then term
        terms, tf_part = terms[order], tf_part[order]
        rows = np.searchsorted(indices[order], np.arange(n + 1))
        sparse = [(terms[rows[i]:rows[i + 1]], tf_part[rows[i]:rows[i + 1]]) for i in range(n)]
        pending = {"chunk_vectors": chunk_vectors, "sentence_vectors": sentence_vectors,
                   "chunk_sentences": chunk_sentences, "sparse": sparse}
        return cls(location, dict(bm25.vocab_dict), df, {"chunks": n, "sentences": len(sentence_vectors)}, pending)

    @classmethod
    def load(cls, folder: Path, location: Mapping) -> QdrantStore:
        terms = json.loads((folder / TERMS_FILE).read_text(encoding="utf-8"))
        store = cls(location, terms["vocabulary"], np.asarray(terms["df"], dtype=np.int64), terms["counts"])
        store.attach(folder)
        store._open()  # fail here, as a FAISS build's missing file does, not at the first question
        return store

    def write(self, folder: Path, build: str) -> None:
        """Upload the points (into shards under `folder`, or collections named after `build`) and the terms."""
        if self._pending is None:
            raise IndexUnavailable("this Qdrant build was written already; load it from its folder")
        engine = _engine(self.location, folder, build)
        p = self._pending
        dim = p["chunk_vectors"].shape[1]
        engine.create(dim)
        for start in range(0, self.counts["chunks"], BATCH):
            rows = range(start, min(start + BATCH, self.counts["chunks"]))
            engine.add_chunks([(i, p["chunk_vectors"][i], _sentence_rows(p, i), p["sparse"][i]) for i in rows])
        for start in range(0, self.counts["sentences"], BATCH):
            rows = range(start, min(start + BATCH, self.counts["sentences"]))
            engine.add_sentences([(i, p["sentence_vectors"][i]) for i in rows])
        engine.finish()
        (folder / TERMS_FILE).write_text(json.dumps(
            {"vocabulary": self.vocabulary, "df": self._df.tolist(), "counts": self.counts}, ensure_ascii=False),
            encoding="utf-8")
        self._pending = None

    def attach(self, folder: Path) -> None:
        """The build now lives in `folder` (its final name): searches open it there."""
        with self._lock:
            self._folder = Path(folder)
            self._engine = None

    def describe(self) -> dict:
        return {"store": "qdrant", **self.location, **self.counts}

    def document_frequencies(self) -> np.ndarray:
        return self._df

    # -- searching -------------------------------------------------------------------------------------------------

    def _open(self) -> _Edge | _Client:
        with self._lock:
            if self._engine is None:
                if self._folder is None:
                    raise IndexUnavailable("this Qdrant build is not written yet: save the index first")
                engine = _engine(self.location, self._folder, self._folder.name)
                engine.open()
                self._engine = engine
            return self._engine

    def hybrid(self, query: HybridQuery) -> HybridResult:
        engine = self._open()
        t0 = time.perf_counter()
        n = self.counts["chunks"]
        depth = min(query.depth, n)
        vector = [float(x) for x in query.vector]
        prefetches = [("dense", CHUNK, vector, 1.0), ("multi", SENTENCES, [vector], query.sentence_weight)]
        if query.terms and query.bm25_weight > 0:
            ids, counts = np.unique([self.vocabulary[t] for t in query.terms], return_counts=True)
            prefetches.append(("sparse", SPARSE, (ids.tolist(), counts.astype(float).tolist()), query.bm25_weight))
        if query.translation and query.translation_weight > 0:
            sparse = self._translation_vector(query.translation)
            if sparse[0]:
                prefetches.append(("sparse", SPARSE, sparse, query.translation_weight))
        fused, nearest = engine.search(prefetches, depth, query.rrf_k, vector,
                                       min(query.sentence_depth, self.counts["sentences"]))
        return HybridResult([(i, {"score": s}) for i, s in fused], nearest,
                            {"qdrant_ms": (time.perf_counter() - t0) * 1000})

    def _translation_vector(self, translation) -> tuple[list[int], list[float]]:
        """The dictionary translation as one sparse query. The FAISS store scores it as a structured query (each word
        a set of alternatives counted once, app.index.synonym_set_scores), which Qdrant cannot express; here each
        alternative's terms share the word's weight, scaled so a chunk holding one alternative scores what the
        structured query gives it: the IDF of the word (its alternatives' chunks taken together, their sum standing
        for their union) times the alternative's term-frequency part."""
        n = max(self.counts["chunks"], 1)
        weights: dict[int, float] = {}
        for alternatives in translation:
            known = [[self.vocabulary[t] for t in terms] for terms in alternatives
                     if terms and all(t in self.vocabulary for t in terms)]
            if not known:
                continue
            word_df = min(n, sum(int(min(self._df[i] for i in ids)) for ids in known))
            word_idf = float(_lucene_idf(np.asarray(word_df), n))
            for ids in known:
                for i in ids:
                    weights[i] = weights.get(i, 0.0) + word_idf / float(_lucene_idf(self._df[i], n)) / len(ids)
        return list(weights), list(weights.values())


def _sentence_rows(pending: dict, chunk: int) -> np.ndarray:
    rows = list(pending["chunk_sentences"][chunk])
    # A multivector needs one vector at least; a chunk without sentences (none in practice) ranks by its own.
    return pending["sentence_vectors"][rows] if rows else pending["chunk_vectors"][chunk][None, :]


def _engine(location: Mapping, folder: Path, build: str) -> _Edge | _Client:
    if location.get("url") or location.get("path"):
        return _Client(location, build)
    return _Edge(Path(folder) / SHARDS_DIR)


# -- the embedded engine ---------------------------------------------------------------------------------------------

class _Edge:
    """qdrant-edge shards in the build folder. Written without a write-ahead log: a build is written once, flushed,
    and never changed, and without the log's lock several processes can open it."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.chunks = self.sentences = None

    def create(self, dim: int) -> None:
        import qdrant_edge as qe

        dot = qe.Distance.Dot
        self.folder.mkdir(parents=True, exist_ok=True)
        self.chunks = qe.EdgeShard.create(str(self.folder / "chunks"), qe.EdgeConfig(
            vectors={CHUNK: qe.EdgeVectorParams(size=dim, distance=dot),
                     SENTENCES: qe.EdgeVectorParams(size=dim, distance=dot, multivector_config=qe.MultiVectorConfig(
                         comparator=qe.MultiVectorComparator.MaxSim))},
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)}, wal_enabled=False))
        self.sentences = qe.EdgeShard.create(str(self.folder / "sentences"), qe.EdgeConfig(
            vectors={SENTENCE: qe.EdgeVectorParams(size=dim, distance=dot)}, wal_enabled=False))

    def add_chunks(self, rows) -> None:
        import qdrant_edge as qe

        points = [qe.Point(id=i, vector=vectors) for i, vectors in _chunk_point_vectors(rows, qe.SparseVector)]
        self.chunks.update(qe.UpdateOperation.upsert_points(points))

    def add_sentences(self, rows) -> None:
        import qdrant_edge as qe

        self.sentences.update(qe.UpdateOperation.upsert_points(
            [qe.Point(id=int(i), vector={SENTENCE: vector.tolist()}) for i, vector in rows]))

    def finish(self) -> None:
        for shard in (self.chunks, self.sentences):
            shard.flush()
            shard.optimize()  # HNSW for the segments past Qdrant's indexing threshold; small ones stay exact
            shard.flush()
            shard.close()

    def open(self) -> None:
        import qdrant_edge as qe

        try:
            self.chunks = qe.EdgeShard.load(str(self.folder / "chunks"))
            self.sentences = qe.EdgeShard.load(str(self.folder / "sentences"))
        except Exception as exc:  # noqa: BLE001 - the engine raises plain Exceptions
            raise IndexUnavailable(f"cannot open the Qdrant shards under {self.folder} ({exc}); "
                                   f"run `rag index --rebuild`") from exc

    def search(self, prefetches, depth: int, rrf_k: int, vector: list[float], sentence_depth: int):
        import qdrant_edge as qe

        def query(kind, using, value):
            value = qe.SparseVector(indices=value[0], values=value[1]) if kind == "sparse" else value
            return qe.Query.Nearest(value, using=using)

        params = qe.SearchParams(hnsw_ef=HNSW_EF)
        request = qe.QueryRequest(
            limit=depth * len(prefetches),
            prefetches=[qe.Prefetch(limit=depth, query=query(kind, using, value), params=params)
                        for kind, using, value, _ in prefetches],
            query=qe.Fusion.Rrf(k=rrf_k + 1, weights=[w for *_, w in prefetches]))
        fused = [(int(p.id), float(p.score)) for p in self.chunks.query(request)]
        nearest = self.sentences.query(qe.QueryRequest(limit=sentence_depth, query=qe.Query.Nearest(vector, using=SENTENCE),
                                                       params=params))
        return fused, [(int(p.id), float(p.score)) for p in nearest]


# -- a server, or qdrant-client's local mode -------------------------------------------------------------------------

_clients: dict[str, object] = {}
_clients_lock = threading.Lock()


@atexit.register
def _close_clients() -> None:
    """Close them before the interpreter tears down the modules their own finalisers need."""
    with _clients_lock:
        for client in _clients.values():
            client.close()
        _clients.clear()


def _client(location: Mapping):
    """One client a location and process: local mode allows a single client a folder."""
    from qdrant_client import QdrantClient

    key = location.get("url") or f"path:{location['path']}"
    with _clients_lock:
        if key not in _clients:
            _clients[key] = (QdrantClient(url=location["url"]) if location.get("url")
                             else QdrantClient(path=str(location["path"])))
        return _clients[key]


class _Client:
    def __init__(self, location: Mapping, build: str):
        self.client = _client(location)
        self.server = bool(location.get("url"))  # local mode searches exactly and warns about search parameters
        self.chunks = f"{location['collections']}{build}-chunks"
        self.sentences = f"{location['collections']}{build}-sentences"

    def create(self, dim: int) -> None:
        from qdrant_client import models as qm

        for name in (self.chunks, self.sentences):  # left by a killed write of this very build
            if self.client.collection_exists(name):
                self.client.delete_collection(name)
        dot = qm.Distance.DOT
        self.client.create_collection(self.chunks, vectors_config={
            CHUNK: qm.VectorParams(size=dim, distance=dot),
            SENTENCES: qm.VectorParams(size=dim, distance=dot, multivector_config=qm.MultiVectorConfig(
                comparator=qm.MultiVectorComparator.MAX_SIM))},
            sparse_vectors_config={SPARSE: qm.SparseVectorParams(modifier=qm.Modifier.IDF)})
        self.client.create_collection(self.sentences, vectors_config={SENTENCE: qm.VectorParams(size=dim, distance=dot)})

    def add_chunks(self, rows) -> None:
        from qdrant_client import models as qm

        points = [qm.PointStruct(id=i, vector=vectors) for i, vectors in _chunk_point_vectors(rows, qm.SparseVector)]
        self.client.upsert(self.chunks, points, wait=True)

    def add_sentences(self, rows) -> None:
        from qdrant_client import models as qm

        self.client.upsert(self.sentences, [qm.PointStruct(id=int(i), vector={SENTENCE: v.tolist()}) for i, v in rows],
                           wait=True)

    def finish(self) -> None:
        """Upserts waited for their writes."""

    def open(self) -> None:
        for name in (self.chunks, self.sentences):
            if not self.client.collection_exists(name):
                raise IndexUnavailable(f"the Qdrant collection {name} is missing; run `rag index --rebuild`")

    def search(self, prefetches, depth: int, rrf_k: int, vector: list[float], sentence_depth: int):
        from qdrant_client import models as qm

        def query(kind, value):
            return qm.SparseVector(indices=value[0], values=value[1]) if kind == "sparse" else value

        params = qm.SearchParams(hnsw_ef=HNSW_EF) if self.server else None
        fused = self.client.query_points(
            self.chunks, limit=depth * len(prefetches),
            prefetch=[qm.Prefetch(query=query(kind, value), using=using, limit=depth, params=params)
                      for kind, using, value, _ in prefetches],
            query=qm.RrfQuery(rrf=qm.Rrf(k=rrf_k + 1, weights=[w for *_, w in prefetches]))).points
        nearest = self.client.query_points(self.sentences, query=vector, using=SENTENCE, limit=sentence_depth,
                                           search_params=params).points
        return [(int(p.id), float(p.score)) for p in fused], [(int(p.id), float(p.score)) for p in nearest]


def retire_collections(location: Mapping, keep: str | None) -> None:
    """Drop this project's collections of every build but `keep` (a killed build's, or those a new build replaced)."""
    client = _client(location)
    prefix = location["collections"]
    for collection in client.get_collections().collections:
        name = collection.name
        if name.startswith(f"{prefix}build-") and not (keep and name.startswith(f"{prefix}{keep}-")):
            client.delete_collection(name)


def _chunk_point_vectors(rows, sparse_vector):
    """(point id, named vectors) of each chunk row (id, vector, sentence vectors, (term ids, BM25 values)): the one
    layout both Qdrant engines store, each with its own sparse-vector class."""
    for i, vector, sentence_vectors, (terms, values) in rows:
        vectors = {CHUNK: vector.tolist(), SENTENCES: sentence_vectors.tolist()}
        if len(terms):
            vectors[SPARSE] = sparse_vector(indices=terms.tolist(), values=values.tolist())
        yield int(i), vectors
