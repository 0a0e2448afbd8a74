"""The evidence model: which candidate sentences answer a question, and whether any does (trained by `rag train`).

Two logistic regressions stored as plain numbers in a versioned JSON file: one scores each candidate sentence
(the probability that it holds the answer), one scores the question (the probability that the sources answer it,
from its best sentences). The thresholds that turn them into quotes and abstentions were chosen by
cross-validation at training time and are stored beside them, with the training data's hash and the
cross-validated figures. Answering needs numpy only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from app.answer.features import QUESTION_FEATURES, SENTENCE_FEATURES
from app.errors import RagError

MODEL_FORMAT = 1
DEFAULT_MODEL = Path(__file__).resolve().parent.parent.parent / "models" / "evidence.json"


@dataclass(frozen=True)
class Logistic:
    """A standardised logistic regression: sigmoid(((x - mean) / scale) @ coef + intercept)."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float

    def probability(self, x: np.ndarray) -> np.ndarray:
        z = ((np.atleast_2d(x) - self.mean) / self.scale) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))

    def to_json(self) -> dict:
        return {"features": list(self.features), "mean": self.mean.tolist(), "scale": self.scale.tolist(),
                "coef": self.coef.tolist(), "intercept": self.intercept}

    @classmethod
    def from_json(cls, data: dict, expected: tuple[str, ...]) -> Logistic:
        if tuple(data["features"]) != expected:
            raise ValueError(f"the model reads features {data['features']}, this code computes {list(expected)}")
        return cls(tuple(data["features"]), np.asarray(data["mean"], float), np.asarray(data["scale"], float),
                   np.asarray(data["coef"], float), float(data["intercept"]))


@dataclass(frozen=True)
class Selection:
    """How probabilities become an answer: the question is answered when P(answerable) >= `abstain_below`;
    its quotes are the candidates with P >= `quote_min` and >= `quote_ratio` x the best one's (>= `other_ratio` x
    the best one's when they lie outside the best one's passage), at most `max_quotes`, at most `per_article` from
    one article."""

    abstain_below: float
    quote_min: float
    quote_ratio: float
    other_ratio: float
    max_quotes: int
    per_article: int


@dataclass(frozen=True)
class EvidenceModel:
    sentence: Logistic
    question: Logistic
    selection: Selection
    info: dict[str, Any] = field(default_factory=dict)  # training data, its hash, cross-validated figures

    def save(self, path: Path) -> None:
        data = {"format": MODEL_FORMAT, "sentence": self.sentence.to_json(), "question": self.question.to_json(),
                "selection": self.selection.__dict__, **self.info}
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> EvidenceModel:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            if data.get("format") != MODEL_FORMAT:
                raise ValueError(f"format {data.get('format')!r}, expected {MODEL_FORMAT}")
            info = {k: v for k, v in data.items() if k not in ("format", "sentence", "question", "selection")}
            return cls(Logistic.from_json(data["sentence"], SENTENCE_FEATURES),
                       Logistic.from_json(data["question"], QUESTION_FEATURES), Selection(**data["selection"]), info)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise RagError(f"cannot load the evidence model {path}: {exc}. Retrain it with `rag train`.") from exc


def choose(probabilities: np.ndarray, articles: list[str], passages: list[int], quotable: np.ndarray,
           selection: Selection) -> list[int]:
    """Indices of the candidates to quote, best first: the quotable ones (not headlines) that `selection` lets in.
    `passages` names each candidate's chunk. The best quotable candidate is always among them; training scores its
    thresholds with this same function."""
    order = [int(i) for i in np.argsort(-probabilities, kind="stable") if quotable[i]]
    if not order:
        return []
    best = probabilities[order[0]]
    floor = max(selection.quote_min, selection.quote_ratio * best)
    chosen = [order[0]]
    for i in order[1:]:
        if len(chosen) == selection.max_quotes or probabilities[i] < floor:
            break
        if passages[i] != passages[order[0]] and probabilities[i] < selection.other_ratio * best:
            continue
        if sum(articles[j] == articles[i] for j in chosen) < selection.per_article:
            chosen.append(i)
    return chosen
