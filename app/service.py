"""The service: corpus + embedder + index + retriever + answerer wired together, used by the API, CLI and eval."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from app.answer.extractive import ExtractiveAnswerer
from app.answer.llm import LLMAnswerer
from app.answer.models import Answer
from app.config import Settings
from app.corpus import Article, Corpus, load_corpus
from app.embeddings import Embedder, make_embedder
from app.errors import RagError
from app.index import Index, load_or_build
from app.retrieval import Hit, HybridRetriever
from app.text.arabic import detect_language
from app.text.names import NameChecker

log = logging.getLogger(__name__)


class SearchResult(BaseModel):
    query: str
    hits: list[Hit]
    timings_ms: dict[str, float]


class RagService:
    def __init__(self, settings: Settings, *, embedder: Embedder | None = None, answerer=None,
                 rebuild: bool = False, progress: bool = False):
        started = time.perf_counter()
        self.settings = settings
        self.corpus: Corpus = load_corpus(settings.corpus_dir)
        self.embedder: Embedder = embedder or make_embedder(settings)
        self.index: Index
        self.index, self.index_status = load_or_build(settings, self.corpus, self.embedder, rebuild=rebuild,
                                                      progress=progress)
        self.names = NameChecker.from_corpus(self.corpus)
        self.retriever = HybridRetriever(self.index, self.corpus, self.embedder, rrf_k=settings.rrf_k,
                                         candidates=settings.candidates, sentence_weight=settings.sentence_weight,
                                         names=self.names)
        self.answerer = answerer or self._default_answerer()
        self.startup_seconds = time.perf_counter() - started
        log.info("service ready in %.2f s (index %s, mode %s)", self.startup_seconds, self.index_status,
                 self.answerer.mode)

    def _default_answerer(self):
        if self.settings.llm_model:
            return LLMAnswerer(self.index, self.corpus, self.embedder, self.settings)
        return ExtractiveAnswerer(self.index, self.corpus, threshold=self.settings.abstain_threshold,
                                  margin=self.settings.sentence_margin,
                                  max_sentences=min(self.settings.extractive_max_sentences,
                                                    self.settings.answer_max_sentences),
                                  single_fact_sentences=self.settings.single_fact_sentences,
                                  lexical_weight=self.settings.lexical_weight,
                                  other_article_margin=self.settings.other_article_margin,
                                  rank_penalty=self.settings.rank_penalty,
                                  answer_type_margin=self.settings.answer_type_margin, names=self.names)

    def search(self, query: str, top_k: int | None = None) -> SearchResult:
        _check_text(query, "query")
        started = time.perf_counter()
        retrieval = self.retriever.search(query, top_k or self.settings.top_k)
        timings = {**retrieval.timings_ms, "total_ms": (time.perf_counter() - started) * 1000}
        return SearchResult(query=query, hits=retrieval.hits, timings_ms=_rounded(timings))

    def ask(self, question: str, lang: str | None = None, top_k: int | None = None,
            history: Sequence[Mapping[str, Any] | Any] | None = None, *,
            on_stage: Callable[[str], None] | None = None) -> Answer:
        """Answer `question`. `history` lists earlier turns ({question, answer}, oldest first): a follow-up is
        retrieved together with the previous question so "and where?" finds the passages the thread is about.
        `on_stage` is told "retrieving" and then "answering" as the work moves on (for streaming clients)."""
        _check_text(question, "question")
        started = time.perf_counter()
        language = lang or detect_language(question)
        previous = previous_question(history)
        query = f"{previous}\n{question}" if previous else question
        if on_stage:
            on_stage("retrieving")
        retrieval = self.retriever.search(query, top_k or self.settings.top_k)
        if on_stage:
            on_stage("answering")
        t_answer = time.perf_counter()
        asked = question
        if previous and getattr(self.answerer, "mode", None) == "llm":
            # The model sees only this turn; give it the question the follow-up refers to.
            asked = f"(Earlier question: {previous})\nFollow-up question: {question}"
        answer = self.answerer.answer(asked, language, retrieval)
        answer.timings_ms = _rounded({
            **retrieval.timings_ms,
            "answer_ms": (time.perf_counter() - t_answer) * 1000,
            "total_ms": (time.perf_counter() - started) * 1000,
        })
        return answer

    def article(self, article_id: str) -> Article:
        return self.corpus.get(article_id)

    def health(self) -> dict:
        return {
            "status": "ok",
            "index": self.index_status,
            "mode": self.answerer.mode,
            "embedder": self.embedder.name,
            "llm_model": self.settings.llm_model,
            "counts": self.index.manifest["counts"],
            "built_at": self.index.manifest.get("built_at"),
        }


def previous_question(history: Sequence[Mapping[str, Any] | Any] | None) -> str | None:
    """The latest non-empty question among earlier turns (dicts or objects with a `question`), if any."""
    for turn in reversed(list(history or [])):
        text = turn.get("question") if isinstance(turn, Mapping) else getattr(turn, "question", None)
        if isinstance(text, str) and text.strip():
            return text.strip()
    return None


def _check_text(text: str, name: str) -> None:
    if not isinstance(text, str) or not text.strip():
        raise RagError(f"{name} must be a non-empty string", status=422)


def _rounded(timings: dict[str, float]) -> dict[str, float]:
    return {key: round(value, 2) for key, value in timings.items()}
