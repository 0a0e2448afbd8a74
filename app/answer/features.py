"""Features of a question's candidate sentences and of the question itself: what the evidence model reads.

Training (`rag train`, app/train.py) and answering compute them with these same functions, so a model trained on
one embedder or chunk size reads the signals it was trained on. Every feature is relative to the question or to
the other candidates where it can be: raw similarities shift with the embedder and the corpus, gaps to the best
candidate and ranks carry across corpora better.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from app.answer.evidence import Evidence, answer_type, has_answer_type
from app.index import Index
from app.retrieval import Retrieval
from app.text.arabic import detect_language

SENTENCE_FEATURES = (
    "semantic",  # the evidence similarity (passage form blended with question form)
    "semantic_gap",  # ... minus the best candidate's
    "question_form",  # similarity of the sentence in question form alone
    "clause",  # similarity of the sentence's closest clause (the sentence's own when it has one clause)
    "clause_gap",
    "lexical",  # IDF-weighted share of the question's terms the sentence holds, times BM25's share of the query
    "lexical_gap",
    "bm25_share",  # share of the question's terms the corpus knows (low for English questions)
    "log_hit_rank",  # rank of the retrieved chunk the sentence comes from
    "log_rank",  # rank of the sentence among the candidates by semantic similarity
    "heading",  # the article's headline or a fragment
    "type_asked_held",  # the question wants a number or date and the sentence holds one
    "type_asked_missing",  # ... and the sentence holds none
    "log_length",
    "article_share",  # share of the top-5 candidates (by similarity) from the sentence's article
)

QUESTION_FEATURES = (
    "best_probability",  # the sentence model's best probability among the candidates
    "second_probability",
    "best_semantic",
    "bm25_share",
    "best_lexical",  # best raw coverage of the question's terms by one sentence
    "uncovered",  # IDF-weighted share of the question's known terms that none of the top-3 sentences holds
    "english",
)


@dataclass(frozen=True)
class Candidates:
    """A question's candidate sentences with their features, in the scorer's order."""

    evidence: list[Evidence]
    features: np.ndarray  # (len(evidence), len(SENTENCE_FEATURES))
    lexical_raw: np.ndarray  # coverage before BM25's share: the question-level features read it
    weights: dict[str, float]  # the question's term weights

    def layout(self) -> tuple[list[str], list[int], np.ndarray]:
        """What app.answer.model.choose reads besides the probabilities: each candidate's article and chunk, and
        whether it may be quoted (headlines may not)."""
        return ([e.article_id for e in self.evidence], [e.chunk_index for e in self.evidence],
                np.array([not e.heading for e in self.evidence], dtype=bool))


def sentence_features(index: Index, question: str, retrieval: Retrieval, evidence: list[Evidence]) -> Candidates:
    n = len(evidence)
    if not n:
        return Candidates([], np.zeros((0, len(SENTENCE_FEATURES))), np.zeros(0), {})
    ids = np.array([e.sentence_id for e in evidence])
    semantic = np.array([e.semantic for e in evidence])
    question_form = index.sentence_similarity(ids, retrieval.query_vector, 1.0) \
        if index.sentence_query_vectors is not None else semantic
    clause = np.maximum(index.clause_similarity(ids, retrieval.query_vector), semantic)
    lexical_raw = np.array([e.lexical for e in evidence])
    lexical = lexical_raw * retrieval.bm25_weight
    order = np.argsort(-semantic, kind="stable")
    rank = np.empty(n)
    rank[order] = np.arange(1, n + 1)
    top_articles = [evidence[i].article_id for i in order[:5]]
    kind = answer_type(question)
    held = np.array([kind is not None and has_answer_type(e.text, kind, question) for e in evidence], dtype=float)
    asked = float(kind is not None)
    features = np.column_stack([
        semantic,
        semantic - semantic.max(),
        question_form,
        clause,
        clause - clause.max(),
        lexical,
        lexical - lexical.max(),
        np.full(n, retrieval.bm25_weight),
        np.log([e.hit_rank for e in evidence]),
        np.log(rank),
        np.array([e.heading for e in evidence], dtype=float),
        held,
        asked * (1.0 - held),
        np.log([max(e.end - e.start, 1) for e in evidence]),
        np.array([top_articles.count(e.article_id) / len(top_articles) for e in evidence]),
    ])
    weights = index.terms.weights(retrieval.query_terms)
    return Candidates(evidence, features, lexical_raw, weights)


def question_features(index: Index, question: str, retrieval: Retrieval, candidates: Candidates,
                      probabilities: np.ndarray) -> np.ndarray:
    """One row of QUESTION_FEATURES."""
    if not len(probabilities):
        return np.array([0.0, 0.0, 0.0, retrieval.bm25_weight, 0.0, 1.0, float(detect_language(question) == "en")])
    order = np.argsort(-probabilities, kind="stable")
    top = [candidates.evidence[i] for i in order[:3]]
    known = {t: w for t, w in candidates.weights.items() if t in index.vocabulary}
    held: set[str] = set()
    for e in top:
        held |= index.terms.sentence_terms(e.sentence_id, e.text)
    total = sum(known.values())
    uncovered = sum(w for t, w in known.items() if t not in held) / total if total > 0 else 1.0
    return np.array([
        probabilities[order[0]],
        probabilities[order[1]] if len(order) > 1 else 0.0,
        float(candidates.features[:, 0].max()),
        retrieval.bm25_weight,
        float(candidates.lexical_raw.max()),
        uncovered,
        float(detect_language(question) == "en"),
    ])

