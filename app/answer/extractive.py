"""The offline answerer: quote the best-supported sentences of the retrieved chunks, each with its [n]."""

from __future__ import annotations

from app.answer.evidence import Evidence, EvidenceScorer, answer_type, asks_across_sources, has_answer_type
from app.answer.models import ABSTENTION, Answer, Citation
from app.corpus import Article, Corpus
from app.index import Index
from app.retrieval import Retrieval
from app.text.arabic import detect_language
from app.text.names import NameChecker

CORPUS_LANGUAGE = "ar"

INTRO = {
    "ar": "هذا ما تقوله المصادر:",
    "en": "Here is what the sources say (quoted in the original Arabic):",
}


def source_line(article: Article, language: str) -> str:
    """Who says it, in the answer's language: 'Hawar News Agency, citing Al-Monitor' / 'بحسب وكالة هاوار نقلاً عن المونيتور'."""
    meta = article.meta
    if language == "en":
        if meta.source_en and meta.original_en:
            return f"{meta.source_en}, citing {meta.original_en}"
        if meta.original_en:
            return f"{meta.original_en} (in Arabic translation)"
        return meta.source_en or "One article"
    if meta.source and meta.original:
        return f"بحسب {meta.source} نقلاً عن {meta.original}"
    if meta.original:
        return f"بحسب {meta.original}"
    return f"بحسب {meta.source}" if meta.source else "بحسب أحد المقالات"


class ExtractiveAnswerer:
    mode = "extractive"

    def __init__(self, index: Index, corpus: Corpus, *, threshold: float, margin: float, max_sentences: int,
                 lexical_weight: float = 0.15, other_article_margin: float = 0.02, rank_penalty: float = 0.0,
                 names: NameChecker | None = None):
        self.index = index
        self.corpus = corpus
        self.scorer = EvidenceScorer(index, corpus, lexical_weight, rank_penalty)
        self.threshold = threshold
        self.margin = margin
        self.max_sentences = max_sentences
        self.other_article_margin = other_article_margin
        self.names = names

    def select(self, question: str, retrieval: Retrieval) -> list[Evidence]:
        """The sentences to quote, best first; empty when the evidence is too weak to answer."""
        if self.names is not None and self.names.unknown_names(question):
            return []  # it asks about someone or something no article mentions
        evidence = self.scorer.score(retrieval)
        kind = answer_type(question)
        evidence = [e for e in evidence if has_answer_type(e.text, kind, question)]
        if detect_language(question) == CORPUS_LANGUAGE:
            # The question is written in the articles' language: a sentence sharing none of its terms is
            # not evidence for it, however close its embedding.
            evidence = [e for e in evidence if e.lexical > 0]
        if not evidence or evidence[0].score < self.threshold:
            return []
        best = evidence[0].score
        across = asks_across_sources(question)
        chosen: list[Evidence] = []
        for candidate in evidence:
            if candidate.score < best - self.margin or len(chosen) == self.max_sentences:
                break
            # A question about one fact is answered by the article that holds it; another article's
            # sentence joins only when it scores as well, when its chunk is among the top two retrieved
            # (retrieval weighs the whole passage, which one sentence's score does not), or when the
            # question asks across the sources.
            new_article = all(candidate.article_id != c.article_id for c in chosen)
            close = candidate.score >= best - self.other_article_margin or candidate.hit_rank <= 2
            if chosen and new_article and not across and not close:
                continue
            chosen.append(candidate)
        return chosen

    def answer(self, question: str, language: str, retrieval: Retrieval) -> Answer:
        chosen = self.select(question, retrieval)
        if not chosen:
            return Answer(answer=ABSTENTION[language], language=language, abstained=True, citations=[],
                          hits=retrieval.hits, mode="extractive")
        citations: list[Citation] = []
        lines = [INTRO[language]]
        for n, evidence in enumerate(chosen, 1):
            article = self.corpus.articles[evidence.article_id]
            chunk = self.index.chunks[evidence.chunk_index]
            quote = article.raw[evidence.start : evidence.end]
            # A quote is verbatim by construction; the check guards the invariant citations rely on.
            verbatim = quote == evidence.text and chunk.start <= evidence.start and evidence.end <= chunk.end
            citations.append(
                Citation(
                    n=n,
                    article_id=article.id,
                    title=article.title,
                    source=article.source_label,
                    chunk_id=chunk.chunk_id,
                    start=evidence.start,
                    end=evidence.end,
                    quote=quote,
                    support=1.0 if verbatim else 0.0,
                    supported=verbatim,
                )
            )
            lines.append(f"- {source_line(article, language)}: «{' '.join(quote.split())}» [{n}]")
        return Answer(answer="\n".join(lines), language=language, abstained=False, citations=citations,
                      hits=retrieval.hits, mode="extractive")
