"""The default store: FAISS over chunk and sentence vectors (app/ann.py) and bm25s over our Arabic terms, in process,
fused by weighted reciprocal rank fusion here."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import bm25s
import faiss
import numpy as np

from app import ann
from app.stores import HybridQuery, HybridResult


class FaissStore:
    kind = "faiss"

    def __init__(self, dense: faiss.Index, sentence_dense: faiss.Index, bm25: bm25s.BM25):
        self.dense = dense  # chunk vectors
        self.sentence_dense = sentence_dense
        self.bm25 = bm25
        self.vocabulary = bm25.vocab_dict
        # For each sentence, the chunks that hold it (a sentence in an overlap lies in two): the ranking of chunks by
        # their best sentence reads it. Set by the Index this store belongs to.
        self.sentence_chunks: Sequence[Sequence[int]] = ()

    @classmethod
    def build(cls, chunk_terms: Sequence[list[str]], chunk_vectors: np.ndarray, sentence_vectors: np.ndarray,
              previous=None) -> FaissStore:
        """ANN structures of the kind ann.DENSE_INDEX chooses and a bm25s index. An update keeps the previous
        build's IVF centroids while the corpus size keeps their number (app.ann)."""
        previous = previous if isinstance(previous, FaissStore) else None
        dense = ann.make_dense_index(chunk_vectors, ann.resolve_kind(ann.DENSE_INDEX, len(chunk_vectors)),
                                     trained=previous.dense if previous is not None else None)
        sentence_dense = ann.make_dense_index(sentence_vectors, ann.resolve_kind(ann.DENSE_INDEX, len(sentence_vectors)),
                                              trained=previous.sentence_dense if previous is not None else None)
        bm25 = bm25s.BM25()
        bm25.index(list(chunk_terms), show_progress=False)
        return cls(dense, sentence_dense, bm25)

    @classmethod
    def load(cls, folder: Path) -> FaissStore:
        return cls(faiss.read_index(str(folder / "dense.faiss")), faiss.read_index(str(folder / "sentence_dense.faiss")),
                   bm25s.BM25.load(str(folder / "bm25"), show_progress=False))

    def write(self, folder: Path, build: str) -> None:
        faiss.write_index(self.dense, str(folder / "dense.faiss"))  # search parameters (nprobe, efSearch) included
        faiss.write_index(self.sentence_dense, str(folder / "sentence_dense.faiss"))
        self.bm25.save(str(folder / "bm25"), show_progress=False)

    def attach(self, folder: Path) -> None:
        """Everything is in memory already."""

    def describe(self) -> dict:
        return {"chunks": ann.index_params(self.dense), "sentences": ann.index_params(self.sentence_dense)}

    def document_frequencies(self) -> np.ndarray:
        return np.diff(np.asarray(self.bm25.scores["indptr"]))

    def hybrid(self, query: HybridQuery) -> HybridResult:
        from app.index import synonym_set_scores

        t0 = time.perf_counter()
        depth = min(query.depth, self.dense.ntotal)
        scores, ids = self.dense.search(query.vector[None, :], depth)
        dense = [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]
        n = min(query.sentence_depth, self.sentence_dense.ntotal)
        scores, ids = self.sentence_dense.search(query.vector[None, :], n)
        nearest = [(int(i), float(s)) for i, s in zip(ids[0], scores[0]) if i >= 0]
        sentence = self._sentence_ranking(nearest, depth)
        t1 = time.perf_counter()
        lexical: list[tuple[int, float]] = []
        if query.terms:
            scores = self.bm25.get_scores(query.terms)
            lexical = [(int(i), float(scores[i])) for i in top_positive(scores, depth)]
        t2 = time.perf_counter()
        translated: list[tuple[int, float]] = []
        if query.translation and query.translation_weight > 0:
            scores = synonym_set_scores(self.bm25, query.translation)
            translated = [(int(i), float(scores[i])) for i in top_positive(scores, depth)]
        t3 = time.perf_counter()
        fused = rrf((("dense", dense, 1.0), ("sentence", sentence, query.sentence_weight),
                     ("bm25", lexical, query.bm25_weight), ("translation", translated, query.translation_weight)),
                    query.rrf_k)
        return HybridResult(fused, nearest, {"dense_ms": (t1 - t0) * 1000, "bm25_ms": (t2 - t1) * 1000,
                                             "translation_ms": (t3 - t2) * 1000})

    def _sentence_ranking(self, nearest: list[tuple[int, float]], depth: int) -> list[tuple[int, float]]:
        """Chunks ranked by their best-matching sentence: a chunk whose one sentence answers the question
        can score low as a whole when the rest of it is about something else."""
        best: dict[int, float] = {}
        for sentence_id, score in nearest:
            for chunk_index in self.sentence_chunks[sentence_id]:
                if chunk_index not in best:
                    best[chunk_index] = score
        return sorted(best.items(), key=lambda item: -item[1])[:depth]


def rrf(rankings: Sequence[tuple[str, Sequence[tuple[int, float]], float]], k: int) -> list[tuple[int, dict]]:
    """Weighted reciprocal rank fusion: a chunk scores the sum over rankings of weight / (k + its rank there). Each
    ranking's rank and score become the entry's `<name>_rank` / `<name>_score` (the Hit's fields)."""
    fused: dict[int, dict] = {}
    for name, ranking, weight in rankings:
        for rank, (i, score) in enumerate(ranking, 1):
            entry = fused.setdefault(i, {"score": 0.0})
            entry.update({f"{name}_rank": rank, f"{name}_score": score})
            entry["score"] += weight / (k + rank)
    return sorted(fused.items(), key=lambda item: -item[1]["score"])


def top_positive(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the (at most) k highest positive scores, best first, ties by index. A partition, not a sort of
    every chunk's score: at 10^6 chunks np.argsort took ~50 ms a query, the partition ~10 (bench/README.md)."""
    if k <= 0 or not len(scores):
        return np.zeros(0, dtype=np.int64)
    kth = -np.partition(-scores, k - 1)[k - 1] if k < len(scores) else 0.0
    # Everything scoring at least the k-th score (all positive ones when fewer are positive), ordered exactly.
    candidates = np.flatnonzero(scores >= kth) if kth > 0 else np.flatnonzero(scores > 0)
    return candidates[np.lexsort((candidates, -scores[candidates]))][:k]
