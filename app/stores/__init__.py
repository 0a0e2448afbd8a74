"""Stores: where chunk and sentence vectors and the BM25 postings are kept and searched, behind one interface.

`faiss` (the default, app/stores/faiss_store.py): FAISS and bm25s in process, saved in each index build, nothing to
run. `qdrant` (RAG_STORE=qdrant, app/stores/qdrant_store.py): the same three searches (chunk vectors, chunks by their
best sentence, BM25 over our own Arabic terms) and their fusion done by Qdrant. Either way the index build keeps the
row-addressed arrays the answerer scores with (sentence, question-form and clause vectors) and the chunk list; a
store holds only what is searched. The retriever (app/retrieval.py) asks the store for one `HybridResult` a question.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

if TYPE_CHECKING:
    from app.config import Settings

# A structured query for the question's dictionary translation (app/text/translate.py): one entry a question word,
# each the alternatives that translate it, each alternative the terms a chunk must all hold.
StructuredQuery = Sequence[Sequence[tuple[str, ...]]]


@dataclass(frozen=True)
class HybridQuery:
    """One question's searches: what the retriever knows about it and how it wants the rankings fused."""

    vector: np.ndarray  # the question's embedding (normalised)
    terms: list[str]  # its terms the corpus vocabulary holds, repeats kept (BM25 counts them)
    bm25_weight: float  # the BM25 ranking's fusion weight (the share of the question's terms the corpus knows)
    translation: StructuredQuery = ()
    depth: int = 30  # chunks each ranking contributes
    sentence_depth: int = 120  # nearest sentences returned (the retriever's spread over articles reads them)
    rrf_k: int = 60
    sentence_weight: float = 0.5
    translation_weight: float = 0.0


@dataclass
class HybridResult:
    """Chunk rows by fused score, best first, each with its entry ({"score": fused score} and, where the store
    reports them, each ranking's "<name>_rank" / "<name>_score"), and the nearest sentences (row, similarity)."""

    fused: list[tuple[int, dict]]
    nearest_sentences: list[tuple[int, float]]
    timings_ms: dict[str, float] = field(default_factory=dict)


class Store(Protocol):
    """What an index's searchable part offers: the hybrid search, the vocabulary and document frequencies of its
    BM25 terms (the answerer's term coverage), and writing itself into a build folder."""

    kind: str
    vocabulary: Mapping[str, int]

    def document_frequencies(self) -> np.ndarray: ...

    def hybrid(self, query: HybridQuery) -> HybridResult: ...

    def describe(self) -> dict: ...

    def write(self, folder: Path, build: str) -> None: ...

    def attach(self, folder: Path) -> None: ...


def identity(settings: Settings) -> str | dict:
    """The store a build is made for, as the manifest records it: a build made for another store is not reused
    (its vectors are: see app.index.compatible)."""
    if settings.store == "faiss":
        return "faiss"
    if not (settings.qdrant_url or settings.qdrant_path):
        return {"kind": "qdrant", "engine": "edge"}
    # Collections are named after this index folder too: several indexes (the service's, the evaluation's) may share
    # one server, and each retires only its own builds' collections.
    prefix = f"rag-{hashlib.sha256(str(Path(settings.index_dir).resolve()).encode()).hexdigest()[:8]}-"
    if settings.qdrant_url:
        return {"kind": "qdrant", "url": settings.qdrant_url, "collections": prefix}
    return {"kind": "qdrant", "path": str(Path(settings.qdrant_path).resolve()), "collections": prefix}


def build(settings: Settings, chunk_terms: Sequence[list[str]], chunk_vectors: np.ndarray,
          sentence_vectors: np.ndarray, chunk_sentences: Sequence[Sequence[int]], previous=None) -> Store:
    """The searchable part of a new build under `settings`' store (previous: the index an update starts from)."""
    if settings.store == "qdrant":
        from app.stores.qdrant_store import QdrantStore

        return QdrantStore.build(identity(settings), chunk_terms, chunk_vectors, sentence_vectors, chunk_sentences)
    from app.stores.faiss_store import FaissStore

    return FaissStore.build(chunk_terms, chunk_vectors, sentence_vectors,
                            previous=previous.store if previous is not None else None)


def load(folder: Path, manifest: Mapping) -> Store:
    """The store of the build in `folder`, as its manifest says it was made."""
    if manifest.get("store", "faiss") == "faiss":
        from app.stores.faiss_store import FaissStore

        return FaissStore.load(folder)
    from app.stores.qdrant_store import QdrantStore

    return QdrantStore.load(folder, manifest["store"])


def retire_unused(settings: Settings, keep: str | None) -> None:
    """Drop what builds other than `keep` left in a Qdrant server or local-mode folder (the caller holds the update
    lock). Builds kept in the build folders themselves (FAISS, embedded Qdrant) go with their folders."""
    if settings.store == "qdrant" and (settings.qdrant_url or settings.qdrant_path):
        from app.stores.qdrant_store import retire_collections

        retire_collections(identity(settings), keep)
