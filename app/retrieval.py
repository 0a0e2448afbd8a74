"""Retrieval: dense and BM25 rankings of chunks from the index's store (app/stores/), fused by reciprocal rank fusion,
then near-duplicates dropped, a named outlet's chunks first and the last slots spread over the articles."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np
from pydantic import BaseModel

from app.corpus import Corpus
from app.embeddings import Embedder
from app.index import Index, TermCoverage
from app.stores import HybridQuery
from app.stores.faiss_store import top_positive  # noqa: F401 - re-exported: tests and tools import it from here
from app.text.arabic import detect_language, tokenize
from app.text.names import NameChecker
from app.text.questions import source_terms
from app.text.sources import SourceNames
from app.text.translate import TRANSLATION_WEIGHT, QueryTranslator, TranslatedWord


class Hit(BaseModel):
    rank: int
    chunk_id: str
    article_id: str
    title: str
    start: int
    end: int
    text: str
    score: float  # fused RRF score
    dense_score: float | None = None
    dense_rank: int | None = None
    sentence_score: float | None = None  # best sentence of the chunk, by dense similarity
    sentence_rank: int | None = None
    bm25_score: float | None = None
    bm25_rank: int | None = None
    translation_score: float | None = None  # BM25 of the question's words translated into the articles' language
    translation_rank: int | None = None
    # LLM mode: the question translated by the model into the articles' language, searched like the question itself.
    translated_dense_score: float | None = None
    translated_dense_rank: int | None = None
    translated_sentence_score: float | None = None
    translated_sentence_rank: int | None = None
    translated_bm25_score: float | None = None
    translated_bm25_rank: int | None = None


@dataclass
class Retrieval:
    """The ranked hits plus what later stages reuse (the query vector and terms) and stage timings."""

    hits: list[Hit]
    query_vector: np.ndarray
    query_terms: list[str]
    bm25_weight: float  # how far the question's terms speak for it: the share the corpus knows (or translates)
    timings_ms: dict[str, float] = field(default_factory=dict)
    translations: list[TranslatedWord] = field(default_factory=list)
    translated_question: str | None = None  # the model's translation of the question, when it was searched too


# Weight of the question's term coverage when the answer to a question across the sources ranks its quotes
# (AnswerRules.across_lexical_weight); the retriever's slots weigh it 2.0 (RetrievalRules.across_lexical_weight).
ACROSS_LEXICAL_WEIGHT = 1.0


@dataclass(frozen=True)
class RetrievalRules:
    """How the rankings are fused and which chunks fill the top k: chosen by hand on the seed dev set, the slots also
    measured on the second development corpus (docs/experiments.md, docs/evaluation.md); each report lists them."""

    rrf_k: int = 60  # reciprocal rank fusion's constant (its usual value)
    candidates: int = 30  # depth of each ranking before fusion
    sentence_weight: float = 0.5  # fusion weight of the ranking of chunks by their best sentence
    translation_weight: float = TRANSLATION_WEIGHT  # ...and of the question's dictionary translation
    # The last places of the top k go to the chunk holding each article's best sentence when no chosen chunk holds
    # it yet (0 = plain fused order; _spread_over_articles)...
    other_article_slots: int = 3
    # ...fewer for a question in another language than the articles: its words match no sentence and its dictionary
    # translations only some, so the sentence is picked mostly by cross-lingual similarity, weaker than the fused
    # ranking (scripts/retrieval_across_corpora.py fits both counts, docs/query-translation.md)...
    cross_lingual_article_slots: int = 1
    # ...each article's best sentence judged by its closest clause too (pieces between commas, _best_per_article)...
    clause_scoring: bool = True
    # ...and by similarity + this x the lexical share x its coverage of the question's terms (2.0: the best on both
    # corpora pooled and on corpus B alone; the seeds alone favour 0.5, which costs corpus B 3 of its 90 quotes;
    # the answer's quotes keep 1.0).
    across_lexical_weight: float = 2.0


class HybridRetriever:
    def __init__(self, index: Index, corpus: Corpus, embedder: Embedder, *, rules: RetrievalRules = RetrievalRules(),
                 names: NameChecker | None = None, sources: SourceNames | None = None,
                 translator: QueryTranslator | None = None):
        self.index = index
        self.rules = rules
        # A question in another language than the articles is also searched by its words' dictionary translations,
        # a ranking of its own in the fusion.
        self.translator = translator
        # Outlets a question names ("according to the Meridian Post"): their articles' chunks go first.
        self.sources = sources
        self.terms = index.terms  # shared with the evidence scorer: one sentence-term cache per index
        self.names = names
        self.corpus = corpus
        self.embedder = embedder

    @cached_property
    def article_languages(self) -> set[str]:
        """The languages the articles are in (their metadata's), which a question in another may be translated into."""
        return {article.meta.language for article in self.corpus.articles.values()}

    def search(self, query: str, k: int, *, translated_question: str | None = None) -> Retrieval:
        """The top `k` chunks for `query`. `translated_question` (LLM mode: the model's translation of the question
        into the articles' language) is searched the same way, its rankings fused beside the question's own."""
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        vectors = self.embedder.embed_queries([query] if translated_question is None else [query, translated_question])
        query_vector = vectors[0]
        t1 = time.perf_counter()
        timings["embed_ms"] = (t1 - t0) * 1000

        terms = tokenize(query)
        n_words = len(terms)
        if self.names is not None:
            # Names in a Latin-script question, spelled as the Arabic articles spell them (Peskov → بيسكوف).
            terms += [t for t in tokenize(" ".join(self.names.arabic_spellings(query))) if t not in terms]
        known = [t for t in terms if t in self.index.vocabulary]
        # BM25 only speaks where the query's words exist in the corpus: an English question over Arabic
        # articles matches almost nothing, and fusing its noise would push good dense hits down.
        bm25_weight = len(known) / len(terms) if terms else 0.0
        translations: list[TranslatedWord] = []
        if self.translator is not None and self.rules.translation_weight > 0:
            translations = self.translator.translate(query, self.index.vocabulary, self.article_languages)
        t2 = time.perf_counter()
        timings["terms_ms"] = (t2 - t1) * 1000

        depth = min(self.rules.candidates, len(self.index.chunks))
        question = HybridQuery(
            query_vector, known, bm25_weight, [word.alternatives for word in translations], depth=depth,
            sentence_depth=depth * 4, rrf_k=self.rules.rrf_k, sentence_weight=self.rules.sentence_weight,
            translation_weight=self.rules.translation_weight)
        result = self.index.store.hybrid(question)
        timings.update(result.timings_ms)
        nearest_sentences = result.nearest_sentences
        fused_rows = result.fused
        if translated_question is not None:
            # The model's translation is a question in the articles' own language, searched like the question: its
            # rankings' reciprocal ranks add to the question's (one fusion over both), its nearest sentences and its
            # terms join the question's.
            t_terms = tokenize(translated_question)
            t_known = [t for t in t_terms if t in self.index.vocabulary]
            t_weight = len(t_known) / len(t_terms) if t_terms else 0.0
            other = self.index.store.hybrid(replace(question, vector=vectors[1], terms=t_known, bm25_weight=t_weight,
                                                    translation=()))
            fused_rows = _add_fused(fused_rows, other.fused, "translated_")
            nearest_sentences = _merge_nearest(nearest_sentences, other.nearest_sentences)
            terms += [t for t in t_known if t not in terms]
            bm25_weight = max(bm25_weight, t_weight)
        t4 = time.perf_counter()
        fused = self._without_near_duplicates(fused_rows)
        # From here on the translations are query terms too: in the coverage that picks the articles' sentences for
        # the last slots and in the evidence scorer's (each measured as good or better on both development corpora
        # than leaving them out, docs/query-translation.md).
        terms += [t for word in translations for t in word.terms if t not in terms]
        if self.names is not None:
            # Names of two words (Ras Salma → رأس سلمى) count in the coverage, not in BM25's ranking: a place most
            # of the articles name ranks their chunks in no useful order, yet among the retrieved sentences those
            # naming it are the likelier answers (corpus B: citation recall 0.78 -> 0.80 as coverage terms; as
            # BM25 terms too, recall@5 fell 0.889 -> 0.856; the seeds' questions name no such pair).
            terms += [t for t in tokenize(" ".join(self.names.pair_spellings(query))) if t not in terms]
        named = self.sources.named_articles(query) if self.sources is not None else set()
        if named:
            # A question that attributes what it asks to an outlet is answered from that outlet's articles: theirs
            # first, in fused order, and only theirs compete for the spread below.
            fused.sort(key=lambda item: self.index.chunks[item[0]].article_id not in named)
            nearest_sentences = [(i, s) for i, s in nearest_sentences if self.index.sentences[i].article_id in named]
        # Every question, not only those worded as asking what several sources say: a word list fitted on one
        # corpus's questions gated this before, and spreading every question's last slots measured as well on it and
        # better on a second corpus (docs/evaluation.md).
        cross_lingual = detect_language(query) not in self.article_languages
        lexical_share = bm25_weight
        if cross_lingual and translations:
            # The articles' words speak for a question in another language through its translated words: their
            # share of the question, at the translation ranking's own weight, is the lexical share that both the
            # slots below and the answerer's evidence score give term coverage (every weight from 0.25 to 0.75
            # measured alike in the evidence score; in the slots, as against BM25's share of about 0, recall@5 rose
            # on both development corpora, docs/query-translation.md).
            share = min(len(translations) / max(n_words, 1), 1.0)
            lexical_share = max(bm25_weight, self.rules.translation_weight * share)
        slots = self.rules.cross_lingual_article_slots if cross_lingual else self.rules.other_article_slots
        if slots:
            fused = self._spread_over_articles(fused, nearest_sentences, terms, lexical_share, k, slots, query_vector)
        hits = [self._hit(i, entry, rank) for rank, (i, entry) in enumerate(fused[:k], 1)]
        timings["fuse_ms"] = (time.perf_counter() - t4) * 1000
        return Retrieval(hits, query_vector, terms, lexical_share, timings, translations, translated_question)

    def _spread_over_articles(self, fused: list[tuple[int, dict]], nearest: list[tuple[int, float]],
                              terms: list[str], lexical_share: float, k: int, slots: int,
                              query_vector: np.ndarray | None = None) -> list[tuple[int, dict]]:
        """The top k: the best fused chunks, then — in the last
        `slots` places — the chunk holding each article's best sentence (best article first; an
        article whose best sentence already lies in a chosen chunk needs no slot), then the fused order again.
        Five chunks rarely cover three articles, and an article's best chunk as a whole often misses its one
        sentence on the subject, so the sentence picks the chunk — for the articles already among the best fused
        chunks too, since those may hold a passage that matches the question as a whole rather than that one."""
        kept = fused[: max(k - slots, 1)]
        entries = dict(fused)
        chosen = [i for i, _ in kept]
        for _, sentence_id in sorted(self._best_per_article(nearest, terms, lexical_share, query_vector), reverse=True):
            if len(chosen) >= k:
                break
            holders = self.index.sentence_chunks[sentence_id]
            if any(i in chosen for i in holders):
                continue
            # Of the chunks holding the sentence, the one the fusion ranks best.
            chosen.append(min(holders, key=lambda i: (i not in entries, -entries.get(i, {"score": 0.0})["score"])))
        chosen += [i for i, _ in fused if i not in chosen]
        return [(i, entries.get(i, {"score": 0.0})) for i in chosen]

    def _best_per_article(self, nearest: list[tuple[int, float]], terms: list[str], lexical_share: float,
                          query_vector: np.ndarray | None) -> list[tuple[float, int]]:
        """Each article's best sentence among the nearest, as (score, sentence id): similarity plus
        `across_lexical_weight` x the question's lexical share (BM25's, or its translated words' for a question in
        another language) x the sentence's coverage of the question's terms.

        Within one article every sentence is about the same subject, so their similarities to the question lie
        within a few hundredths, and the sentence an answer quotes is often the article's second or third by
        similarity; which of the question's words it holds separates them better. Hence a weight (2.0) well above
        the evidence score's (0.15), which ranks sentences across articles: on the seed dev set, quote recall@5
        0.885 → 0.923, every weight from 0.5 to 2.0 alike. The words that name the sources (المقالات, "sources") are left
        out of the coverage: a sentence saying "according to the article" (وحسب المقال) is the reporter's wording,
        and it won slots for articles that say nothing on the subject.

        With `clause_scoring`, a sentence's similarity is that of the sentence or of its closest clause (the index's
        clauses: pieces between commas), whichever is higher. An article's answer to such a question is often one
        clause of a long sentence (200-300 characters, the clause 60-110): the rest of the sentence dilutes its
        vector, and another sentence of the article, wholly on a neighbouring subject, wins by a few thousandths.
        Only here: in the chunk ranking by best sentence or in the evidence score, the same max made the dev set's
        recall@5 or strict citation precision worse, and clauses as the units everywhere worse still."""
        weights = self.terms.weights([t for t in terms if t not in source_terms()])
        if self.rules.clause_scoring and query_vector is not None and nearest:
            clause = self.index.clause_similarity([i for i, _ in nearest], query_vector)
            nearest = [(i, max(similarity, float(c))) for (i, similarity), c in zip(nearest, clause)]
        best: dict[str, tuple[float, int]] = {}  # article -> (sentence score, sentence id)
        for sentence_id, similarity in nearest:
            article_id = self.index.sentences[sentence_id].article_id
            score = similarity + self.rules.across_lexical_weight * lexical_share * TermCoverage.coverage(
                weights, self._terms_of(sentence_id))
            if score > best.get(article_id, (-np.inf, -1))[0]:
                best[article_id] = (score, sentence_id)
        return list(best.values())

    def _terms_of(self, sentence_id: int) -> set[str]:
        sentence = self.index.sentences[sentence_id]
        text = self.corpus.articles[sentence.article_id].raw[sentence.start : sentence.end]
        return self.terms.sentence_terms(sentence_id, text)

    def _without_near_duplicates(self, fused: list[tuple[int, dict]]) -> list[tuple[int, dict]]:
        """The fused chunks, best first, without near-duplicates of better ones (overlapping chunks of one article)."""
        ranked: list[tuple[int, dict]] = []
        kept_spans: list[tuple[str, int, int]] = []
        for i, entry in fused:
            chunk = self.index.chunks[i]
            if any(_mostly_overlaps(chunk.article_id, chunk.start, chunk.end, span) for span in kept_spans):
                continue  # a near-duplicate of a better-ranked overlapping chunk
            kept_spans.append((chunk.article_id, chunk.start, chunk.end))
            ranked.append((i, entry))
        return ranked

    def _hit(self, chunk_index: int, entry: dict, rank: int) -> Hit:
        chunk = self.index.chunks[chunk_index]
        title = self.corpus.articles[chunk.article_id].title if chunk.article_id in self.corpus.articles \
            else chunk.article_id
        return Hit(rank=rank, chunk_id=chunk.chunk_id, article_id=chunk.article_id, title=title, start=chunk.start,
                   end=chunk.end, text=chunk.text, **entry)


def _add_fused(first: list[tuple[int, dict]], second: list[tuple[int, dict]], prefix: str) -> list[tuple[int, dict]]:
    """Two fused rankings as one, best first: reciprocal rank fusion is a sum over rankings, so a chunk's scores add;
    the second's per-ranking fields get `prefix` (the Hit's `translated_*`)."""
    entries = {i: dict(entry) for i, entry in first}
    for i, entry in second:
        merged = entries.setdefault(i, {"score": 0.0})
        merged["score"] += entry["score"]
        merged.update({prefix + key: value for key, value in entry.items() if key != "score"})
    return sorted(entries.items(), key=lambda item: -item[1]["score"])


def _merge_nearest(a: list[tuple[int, float]], b: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """Two lists of (sentence id, similarity) as one, each sentence at its higher similarity, best first."""
    best = dict(a)
    for i, score in b:
        best[i] = max(score, best.get(i, score))
    return sorted(best.items(), key=lambda item: -item[1])


def _mostly_overlaps(article_id: str, start: int, end: int, other: tuple[str, int, int]) -> bool:
    if article_id != other[0]:
        return False
    overlap = min(end, other[2]) - max(start, other[1])
    return overlap > 0.5 * min(end - start, other[2] - other[1])
