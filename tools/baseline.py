"""A reference retriever: LangChain's stock hybrid recipe over the service's own chunks and embedder.

FAISS (langchain_community, default settings) + BM25Retriever (rank-bm25, default whitespace preprocessing),
fused by EnsembleRetriever with weights 0.5/0.5 and each retriever asked for k. Used by `python -m app.eval
--baseline langchain` to compare retrieval quality and latency; needs the optional extra: pip install '.[baseline]'.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from app.embeddings import Embedder

Span = tuple[str, int, int]  # (article_id, start, end) in the article's raw text


def _require_langchain():
    try:
        from langchain_community.retrievers import BM25Retriever
        from langchain_community.vectorstores import FAISS
        from langchain_core.embeddings import Embeddings
    except ImportError as exc:
        raise RuntimeError("the langchain baseline needs the optional extra: pip install '.[baseline]'") from exc
    try:  # langchain >= 1.0 moved the classic retrievers to langchain-classic (a langchain-community dependency)
        from langchain_classic.retrievers import EnsembleRetriever
    except ImportError:  # pragma: no cover - older langchain
        from langchain.retrievers import EnsembleRetriever
    return BM25Retriever, FAISS, Embeddings, EnsembleRetriever


class _EmbedderAdapter:
    """Wrap the service's Embedder as a LangChain `Embeddings` (built lazily so langchain stays optional)."""

    @staticmethod
    def make(embedder: Embedder):
        _, _, Embeddings, _ = _require_langchain()

        class ServiceEmbeddings(Embeddings):
            def embed_documents(self, texts: list[str]) -> list[list[float]]:
                return embedder.embed_passages(list(texts)).tolist()

            def embed_query(self, text: str) -> list[float]:
                return embedder.embed_queries([text])[0].tolist()

        return ServiceEmbeddings()


class LangChainBaseline:
    name = "langchain"

    def __init__(self, faiss_store, bm25, ensemble):
        self.faiss_store = faiss_store
        self.bm25 = bm25
        self.ensemble = ensemble
        self.build_seconds = 0.0

    @classmethod
    def build(cls, chunks: Sequence, embedder: Embedder, k: int = 5) -> LangChainBaseline:
        """`chunks`: objects with chunk_id, article_id, start, end, text (the service's index.chunks)."""
        BM25Retriever, FAISS, _, EnsembleRetriever = _require_langchain()
        started = time.perf_counter()
        texts = [c.text for c in chunks]
        metadatas = [{"chunk_id": c.chunk_id, "article_id": c.article_id, "start": c.start, "end": c.end}
                     for c in chunks]
        store = FAISS.from_texts(texts, _EmbedderAdapter.make(embedder), metadatas=metadatas)
        bm25 = BM25Retriever.from_texts(texts, metadatas=metadatas)
        bm25.k = k
        dense = store.as_retriever(search_kwargs={"k": k})
        ensemble = EnsembleRetriever(retrievers=[bm25, dense], weights=[0.5, 0.5])
        baseline = cls(store, bm25, ensemble)
        baseline.build_seconds = time.perf_counter() - started
        return baseline

    def search(self, query: str, k: int) -> list[Span]:
        """The top-k fused chunks as (article_id, start, end), best first."""
        self.bm25.k = k
        self.ensemble.retrievers[1].search_kwargs["k"] = k
        docs = self.ensemble.invoke(query)
        return [(d.metadata["article_id"], d.metadata["start"], d.metadata["end"]) for d in docs[:k]]
