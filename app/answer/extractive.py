"""The offline answerer: quote the best-supported sentences of the retrieved chunks, each with its [n]."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from app.answer.evidence import Evidence, EvidenceScorer, answer_type, asks_across_sources, has_answer_type
from app.answer.features import question_features, sentence_features
from app.answer.model import EvidenceModel, choose
from app.answer.models import ABSTENTION, Answer, Citation, defuse_markers
from app.config import Settings
from app.corpus import Article, Corpus
from app.index import Index
from app.retrieval import ACROSS_LEXICAL_WEIGHT, Retrieval
from app.text.arabic import detect_language
from app.text.english import EnglishRenderer, iso_date_in_english
from app.text.names import NameChecker
from app.text.sources import SourceNames

CORPUS_LANGUAGE = "ar"

INTRO = {
    "ar": "هذا ما تقوله المصادر:",
    "en": "Here is what the sources say (quoted in the original Arabic):",
}


def source_line(article: Article, language: str, english: EnglishRenderer | None = None) -> str:
    """Who says it, in the answer's language: 'Hawar News Agency, citing Al-Monitor' / 'بحسب وكالة هاوار نقلاً عن
    المونيتور'. In English an outlet known only by its Arabic name is written in Latin letters (`english`, or a
    renderer without the corpus's vocabulary); an article whose outlet is unknown is named by its id. Brackets in the
    metadata are defused: it is article text, and "Agency [1]" must not become a citation."""
    return defuse_markers(_source_line(article, language, english))


def _source_line(article: Article, language: str, english: EnglishRenderer | None = None) -> str:
    meta = article.meta
    if language == "en":
        english = english or EnglishRenderer()
        source = meta.source_en or (english.outlet(meta.source) if meta.source else "")
        original = meta.original_en or (english.outlet(meta.original) if meta.original else "")
        if source and original:
            return f"{source}, citing {original}"
        if original:
            return f"{original} (in Arabic translation)"
        return source or f"Article {article.id}"
    if meta.source and meta.original:
        return f"بحسب {meta.source} نقلاً عن {meta.original}"
    if meta.original:
        return f"بحسب {meta.original}"
    return f"بحسب {meta.source}" if meta.source else f"بحسب مقال «{article.title}»"


def english_line(article: Article, quote: str, n: int, question: str, english: EnglishRenderer) -> str:
    """A quote's line in an English answer: who (and when) in English, what the quote says that an English reader
    can take in, then the quote itself: '- Al-Afaq Al-Arabi (Saturday 15 March 2025) reports: names: Bilsan;
    figures: about 650 km — «...» [1]'."""
    who = source_line(article, "en", english)
    if article.meta.date:
        who += f" ({iso_date_in_english(article.meta.date)})"
    if ", citing " in who:
        who += ","
    digest = defuse_markers(str(english.digest(quote, question)))
    return f"- {who} reports: {digest + ' — ' if digest else ''}«{defuse_markers(quote)}» [{n}]"


@dataclass(frozen=True)
class AnswerRules:
    """The hand-set rules by which the extractive answerer scores sentences, quotes them or abstains. Each value was
    chosen by hand on the seed dev set (docs/architecture.md, docs/experiments.md); scripts/rules_across_corpora.py
    refits the four thresholds on one development corpus and scores them on the other (docs/evaluation.md). With an
    evidence model (Settings.evidence_model) only the scoring weights apply: the model's features are those scores."""

    # Scoring: a sentence's evidence score is its similarity to the question...
    sentence_query_weight: float = 0.35  # ...its passage vector's, blended with this share of its question form's,
    lexical_weight: float = 0.15  # ...plus this x BM25's share x its coverage of the question's terms,
    rank_penalty: float = 0.005  # ...less this per rank of the chunk it comes from (the chunk ranking sees more).
    # Abstention: below this best score the sources do not answer...
    abstain_threshold: float = 0.775
    # ...nor when the best sentence holding the number/date asked for scores this far below the best overall (the
    # sources discuss the subject without giving the figure); None = no such check.
    answer_type_margin: float | None = 0.05
    # Quoting: sentences within this of the best may be quoted...
    sentence_margin: float = 0.12
    # ...for a question asking what the articles (plural) say, at most this many...
    max_sentences: int = 3
    across_article_quotes: int | None = 2  # ...at most this many from one article (None = no limit)...
    # ...ranked with this weight of term coverage, as the retriever picks such a question's articles.
    across_lexical_weight: float = ACROSS_LEXICAL_WEIGHT
    # For any other question, the best sentence and at most this many in all...
    single_fact_sentences: int = 2
    # ...a further one from outside the best sentence's passage (chunk) only this close to the best...
    other_passage_margin: float = 0.005
    other_article_max_rank: int = 2  # ...and, from another article, from a chunk among these top hits...
    # ...while one of the best sentence's own passage counts this much more, so a near tie goes to its context.
    same_passage_bonus: float = 0.01


class ExtractiveAnswerer:
    mode: Literal["extractive"] = "extractive"

    def __init__(self, index: Index, corpus: Corpus, *, rules: AnswerRules = AnswerRules(),
                 names: NameChecker | None = None, sources: SourceNames | None = None,
                 model: EvidenceModel | None = None, english: EnglishRenderer | None = None):
        self.index = index
        # The trained evidence model (app/answer/model.py): when given, it picks the quotes and decides abstention,
        # and the rules' thresholds and margins are not used.
        self.model = model
        self.corpus = corpus
        self.rules = rules
        self.names = names
        self.sources = sources or (SourceNames.from_corpus(corpus) if corpus is not None else SourceNames({}))
        self._english = english

    @property
    def rules(self) -> AnswerRules:
        return self._rules

    @rules.setter
    def rules(self, rules: AnswerRules) -> None:
        """New rules, with a scorer that uses their weights."""
        self._rules = rules
        self.scorer = EvidenceScorer(self.index, self.corpus, lexical_weight=rules.lexical_weight,
                                     rank_penalty=rules.rank_penalty, query_weight=rules.sentence_query_weight)

    @property
    def english(self) -> EnglishRenderer:
        """Renders quotes for English answers; built from the corpus on the first English answer."""
        if self._english is None:
            self._english = EnglishRenderer.for_corpus(self.corpus)
        return self._english

    @classmethod
    def from_settings(cls, index: Index, corpus: Corpus, settings: Settings,
                      names: NameChecker | None = None) -> ExtractiveAnswerer:
        """The answerer the service uses: the default rules, and the evidence model `settings` name if any."""
        return cls(index, corpus, names=names,
                   model=EvidenceModel.load(settings.evidence_model) if settings.evidence_model else None)

    def _scored(self, question: str, retrieval: Retrieval) -> list[Evidence] | None:
        """The retrieved chunks' sentences, scored, best first (only the named outlets' when the question names
        some); None when the question names someone or something no article mentions."""
        if self.names is not None and self.names.unknown_names(question):
            return None
        return self._from_named_outlets(question, self.scorer.score(retrieval))

    def evidence(self, question: str, retrieval: Retrieval) -> list[Evidence]:
        """The sentences that may answer, best first; empty when the sources do not answer the question."""
        evidence = self._scored(question, retrieval)
        if not evidence:
            return []  # no sentence, or it asks about someone or something no article mentions
        if detect_language(question) == CORPUS_LANGUAGE:
            # The question is written in the articles' language: a sentence sharing none of its terms is
            # not evidence for it, however close its embedding.
            evidence = [e for e in evidence if e.lexical > 0]
        kind = answer_type(question)
        typed = [e for e in evidence if has_answer_type(e.text, kind, question)]
        if not typed or typed[0].score < self.rules.abstain_threshold:
            return []
        # A headline or a fragment close to the question shows that the sources cover its subject (the threshold
        # above counts it), but states no fact to quote: the answer and the checks below use the other sentences.
        evidence = [e for e in evidence if not e.heading]
        typed = [e for e in typed if not e.heading]
        if not typed:
            return []
        margin = self.rules.answer_type_margin
        if margin is not None and typed[0].score < evidence[0].score - margin:
            # The passage that best matches the question holds no number or date, and those that hold one
            # match it clearly worse: the sources discuss the subject but do not give the figure asked for.
            return []
        return typed

    def _from_named_outlets(self, question: str, evidence: list[Evidence]) -> list[Evidence]:
        """Only the named outlets' sentences when the question names outlets ("according to the Washington
        Post"): another article's sentence may match the wording as well, but it is not what was asked about.
        When no retrieved sentence comes from them, the evidence is left as it is."""
        named = self.sources.named_articles(question)
        own = [e for e in evidence if e.article_id in named]
        return own or evidence

    def candidates(self, question: str, retrieval: Retrieval):
        """The question's candidate sentences with their features (app/answer/features.py), None when it names
        someone or something no article mentions."""
        evidence = self._scored(question, retrieval)
        return None if evidence is None else sentence_features(self.index, question, retrieval, evidence)

    def _select_with_model(self, question: str, retrieval: Retrieval) -> list[Evidence]:
        candidates = self.candidates(question, retrieval)
        if candidates is None or not candidates.evidence:
            return []
        probabilities = self.model.sentence.probability(candidates.features)
        answerable = self.model.question.probability(
            question_features(self.index, question, retrieval, candidates, probabilities))[0]
        if answerable < self.model.selection.abstain_below:
            return []
        chosen = choose(probabilities, *candidates.layout(), self.model.selection)
        return self._cited_together([candidates.evidence[i] for i in chosen], retrieval)

    def select(self, question: str, retrieval: Retrieval) -> list[Evidence]:
        """The sentences to quote, best first; empty when the evidence is too weak to answer."""
        if self.model is not None:
            return self._select_with_model(question, retrieval)
        evidence = self.evidence(question, retrieval)
        if not evidence:
            return []
        if asks_across_sources(question):
            chosen = self._across_sources(evidence, retrieval.bm25_weight if retrieval is not None else 0.0)
        else:
            chosen = self._one_fact([e for e in evidence if e.score >= evidence[0].score - self.rules.sentence_margin])
        return self._cited_together(chosen, retrieval)

    def _across_sources(self, evidence: list[Evidence], bm25_weight: float) -> list[Evidence]:
        """A question about what several sources say: the best sentences within `sentence_margin`, at most
        `max_sentences`, at most `across_article_quotes` from one article, ranked with the question's words weighing
        `across_lexical_weight` as in the retriever's slots for such questions (HybridRetriever._best_per_article).
        Such a question names a subject that every article treats from its own side, so the closest sentences often
        all come from one article while another, as close, goes unquoted; and its candidates are all about the
        subject, so which of the question's words a sentence holds tells them apart better than similarity does.
        The coverage is the evidence score's, the words naming the sources included: leaving them out as the slots
        do measured no better here (README, evaluation rounds)."""
        rules = self.rules
        extra = (rules.across_lexical_weight - rules.lexical_weight) * bm25_weight

        def score(e: Evidence) -> float:
            return e.score + extra * e.lexical

        ranked = sorted(evidence, key=score, reverse=True)
        best = score(ranked[0])
        limit = rules.across_article_quotes or rules.max_sentences
        chosen: list[Evidence] = []
        for candidate in ranked:
            if score(candidate) < best - rules.sentence_margin or len(chosen) == rules.max_sentences:
                break
            if sum(e.article_id == candidate.article_id for e in chosen) < limit:
                chosen.append(candidate)
        return chosen

    def _cited_together(self, chosen: list[Evidence], retrieval: Retrieval | None) -> list[Evidence]:
        """A quote that lies in two retrieved chunks (chunks overlap by a unit) is cited through the one that also
        holds another quote of the answer, so the passage a reader opens shows the quotes together."""
        if len(chosen) < 2 or retrieval is None:
            return chosen
        rank_of = {self.index.chunk_by_id[hit.chunk_id]: hit.rank for hit in retrieval.hits}
        out = []
        for evidence in chosen:
            others = {e.sentence_id for e in chosen if e is not evidence}
            shared = [c for c in self.index.sentence_chunks[evidence.sentence_id]
                      if c in rank_of and others & set(self.index.chunk_sentences[c])]
            if shared and evidence.chunk_index not in shared:
                chunk_index = min(shared, key=rank_of.__getitem__)
                evidence = replace(evidence, chunk_index=chunk_index, hit_rank=rank_of[chunk_index])
            out.append(evidence)
        return out

    def _one_fact(self, close: list[Evidence]) -> list[Evidence]:
        """A question about one fact is answered by the passage holding it: the best sentence and at most a few
        more. Each further quote is one more chance to cite a passage that does not answer, so a sentence from
        outside the best sentence's passage (elsewhere in its article, or in another article) joins only when it
        scores as well as the best; one of the same passage needs only to be close (`sentence_margin`)."""
        rules = self.rules
        best = close[0]
        chosen = [best]
        if rules.same_passage_bonus:
            # Near ties go to sentences of the best sentence's own passage: the answer's context, where a second
            # quote most often completes it, rather than a passage elsewhere that merely scores as high.
            close = [best] + sorted(close[1:], key=lambda e: -(e.score + rules.same_passage_bonus
                                                              * self._in_passage_of(e, best)))
        for candidate in close[1:]:
            if len(chosen) == rules.single_fact_sentences:
                break
            if candidate.article_id != best.article_id:
                if not self._other_article_agrees(candidate, best):
                    continue
            elif not self._in_passage_of(candidate, best) and candidate.score < best.score - rules.other_passage_margin:
                continue
            chosen.append(candidate)
        return chosen

    def _in_passage_of(self, candidate: Evidence, best: Evidence) -> bool:
        if candidate.chunk_index == best.chunk_index:
            return True
        chunk = self.index.chunks[best.chunk_index]  # a sentence in the overlap of two chunks lies in both
        return (candidate.article_id == chunk.article_id and chunk.start <= candidate.start
                and candidate.end <= chunk.end)

    def _other_article_agrees(self, candidate: Evidence, best: Evidence) -> bool:
        """Another article's sentence joins a one-fact answer only when both rankings back it: it scores about
        as well as the best sentence, and its chunk is among the top fused hits. For an English question only the
        cross-lingual embedding scores sentences, and a close score alone often comes from a passage the
        fused ranking (whole chunk, best sentence, names) put far down."""
        return (candidate.score >= best.score - self.rules.other_passage_margin
                and candidate.hit_rank <= self.rules.other_article_max_rank)

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
            shown = " ".join(quote.split())
            if language == "en":
                lines.append(english_line(article, shown, n, question, self.english))
            else:
                lines.append(f"- {source_line(article, language)}: «{defuse_markers(shown)}» [{n}]")
        return Answer(answer="\n".join(lines), language=language, abstained=False, citations=citations,
                      hits=retrieval.hits, mode="extractive")
