"""Evidence: score the sentences of retrieved chunks against a question (semantic + lexical + answer type)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from app.corpus import Corpus
from app.index import Index, TermCoverage
from app.retrieval import Retrieval
from app.text.arabic import normalize, tokenize
from app.text.questions import asks_across_sources  # noqa: F401  (re-exported: the answerers import it from here)

# What kind of answer a question wants, when it is a number or a time: the evidence must then hold one.
_NUMERIC_Q = re.compile(
    r"\bhow (many|much|far|long|old)\b|\bwhat (is|was|were) the (value|number|amount|size|cost|price|distance)\b"
    r"|\bwhat (value|number|amount|percentage|share)\b|(^|\s)(كم|ما قيمه|ما عدد|ما مقدار|ما نسبه|ما المسافه|ما القيمه)(\s|$)"
)
_TIME_Q = re.compile(
    r"^\s*when (did|was|is|were|will|does|do|has|had)\b|\bwhat (date|day|year|month|decade|time)\b"
    r"|\bwhich (date|day|year|month|decade)\b|\bin what year\b|\bon what date\b"
    r"|(^|\s)(متي|في اي (تاريخ|عام|سنه|شهر|يوم|عقد))(\s|$)|(^|\s)اي تاريخ(\s|$)"
)
_NUMBER = re.compile(
    r"\d|(^|\s)[وب]?(ال)?(الف|الاف|مليون|ملايين|مليار|مليارات|عشر|عشرين|ثلاثين|اربعين|خمسين|مئه|ماءه|مئات|نصف|ربع)"
    # Cardinals written as words ("بمشاركة عشر سفن", "تستمر اربعه ايام"), whole words only: "ست" is not "ستكون".
    r"|(^|\s)[وب]?(ال)?(واحده?|اثن(ان|ين|تان|تين)|ثلاثه?|اربعه?|خمسه?|سته?|سبعه?|ثمانيه?|ثماني|تسعه?|عشره"
    r"|(عشر|ثلاث|اربع|خمس|ست|سبع|ثمان|تسع)(ون|ين))(?![\u0621-\u064a])"
    r"|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|dozens?|hundreds?|thousands?|millions?"
    r"|billions?)\b",
    re.IGNORECASE,
)
_MONTHS = (
    "يناير|فبراير|مارس|ابريل|مايو|يونيو|يوليو|اغسطس|سبتمبر|اكتوبر|نوفمبر|ديسمبر|كانون|شباط|اذار|نيسان|ايار|حزيران"
    "|تموز|اب|ايلول|تشرين|الاثنين|الثلاثاء|الاربعاء|الخميس|الجمعه|السبت|الاحد|امس|الماضي|المقبل|التسعينيات"
    "|الثمانينيات|السبعينيات|الستينيات|عقد|عام|سنه"
)
# A time word ends where the Arabic letters end: "في التسعينيات،" names a decade as much as "في التسعينيات".
_TIME = re.compile(r"\d|(^|\s)[وبفل]?(" + _MONTHS + r")(?![\u0621-\u064a])")


def answer_type(question: str) -> str | None:
    text = normalize(question)
    if _TIME_Q.search(text):
        return "time"
    if _NUMERIC_Q.search(text):
        return "number"
    return None


_DIGITS = re.compile(r"\d+(?:[.,]\d+)*")


def has_answer_type(text: str, kind: str | None, question: str = "") -> bool:
    """Whether `text` can answer a question wanting `kind`: a number or time expression that the question
    itself does not already state (a question about 'the 20-year agreement' is not answered by its '20')."""
    if kind is None:
        return True
    normalized = normalize(text)
    given = set(_DIGITS.findall(normalize(question)))
    digits = [d for d in _DIGITS.findall(normalized) if d not in given]
    if digits:
        return True
    without_digits = _DIGITS.sub(" ", normalized)
    return bool((_TIME if kind == "time" else _NUMBER).search(without_digits.replace("\u0660", "")))


_MIN_EVIDENCE_WORDS = 3


def _words(text: str) -> list[str]:
    return tokenize(text, stem=False, keep_stopwords=True)


@dataclass(frozen=True)
class Evidence:
    sentence_id: int
    chunk_index: int
    hit_rank: int
    article_id: str
    start: int
    end: int
    text: str
    semantic: float
    lexical: float
    score: float
    heading: bool = False  # the article's headline or a fragment: shows the topic is covered, never quoted


class EvidenceScorer:
    """Ranks every sentence inside the retrieved chunks. Lexical evidence is IDF-weighted term overlap."""

    def __init__(self, index: Index, corpus: Corpus, *, lexical_weight: float, rank_penalty: float,
                 query_weight: float):
        self.index = index
        self.corpus = corpus
        self.lexical_weight = lexical_weight
        self.query_weight = query_weight  # Index.sentence_similarity: the share of the sentence's question form
        # Sentences of lower-ranked chunks lose a little: the chunk ranking weighs the whole passage
        # (and BM25), which a lone sentence's similarity does not see.
        self.rank_penalty = rank_penalty
        self._headings: dict[int, bool] = {}

    def is_heading(self, sentence_id: int) -> bool:
        """Whether a sentence is its article's headline (or a piece of it) or a fragment of fewer than
        `_MIN_EVIDENCE_WORDS` words (a byline, a dash): it states no fact, yet short generic text sits close to
        many questions in embedding space. Decided once per sentence."""
        heading = self._headings.get(sentence_id)
        if heading is None:
            sentence = self.index.sentences[sentence_id]
            article = self.corpus.articles.get(sentence.article_id)
            words = " ".join(_words(article.raw[sentence.start : sentence.end])) if article is not None else ""
            title = " ".join(_words(article.title)) if article is not None else ""
            heading = self._headings[sentence_id] = bool(article) and (
                len(words.split()) < _MIN_EVIDENCE_WORDS or f" {words} " in f" {title} ")
        return heading

    @property
    def _terms(self) -> TermCoverage:
        return self.index.terms  # the retriever's too: each sentence is tokenized once per index

    def idf(self, term: str) -> float:
        return self._terms.idf(term)

    def score(self, retrieval: Retrieval) -> list[Evidence]:
        weights = self._terms.weights(retrieval.query_terms)

        seen: set[int] = set()
        candidates: list[tuple[int, int, int]] = []  # (sentence id, chunk index, hit rank)
        for hit in retrieval.hits:
            chunk_index = self.index.chunk_by_id[hit.chunk_id]
            for sentence_id in self.index.chunk_sentences[chunk_index]:
                if sentence_id not in seen:
                    seen.add(sentence_id)
                    candidates.append((sentence_id, chunk_index, hit.rank))
        if not candidates:
            return []

        ids = np.array([c[0] for c in candidates])
        semantic = self.index.sentence_similarity(ids, retrieval.query_vector, self.query_weight)
        out = []
        for (sentence_id, chunk_index, rank), sem in zip(candidates, semantic):
            sentence = self.index.sentences[sentence_id]
            text = self.corpus.articles[sentence.article_id].raw[sentence.start : sentence.end]
            lexical = TermCoverage.coverage(weights, self._terms.sentence_terms(sentence_id, text))
            out.append(
                Evidence(
                    sentence_id=sentence_id,
                    chunk_index=chunk_index,
                    hit_rank=rank,
                    article_id=sentence.article_id,
                    start=sentence.start,
                    end=sentence.end,
                    text=text,
                    semantic=float(sem),
                    lexical=lexical,
                    score=float(sem) + self.lexical_weight * lexical * retrieval.bm25_weight
                    - self.rank_penalty * (rank - 1),
                    heading=self.is_heading(sentence_id),
                )
            )
        out.sort(key=lambda e: -e.score)
        return out

