"""The hand-set answer rules fitted on one development corpus and scored on the other, both ways.

    .venv/bin/python scripts/rules_across_corpora.py

Grid-searches four of the extractive answerer's AnswerRules (abstention threshold, sentence margin, other-passage
margin, answer-type margin) on one corpus, by the smaller margin over the quality bar (strict precision 0.75, quote
recall 0.70) plus half the smaller margin over the abstention bar (abstention 0.75, false abstention 0.10), and
scores the best on the other corpus with app/train.py's figures. The figures are those of docs/evaluation.md's
"hand-set rules, fitted across" row; the evidence model's are `make eval-cross`.
"""

from __future__ import annotations

import itertools
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app import train  # noqa: E402
from app.eval import DEV_CORPORA, build_service  # noqa: E402

GRID = {"abstain_threshold": (0.75, 0.775, 0.8, 0.825, 0.85), "sentence_margin": (0.04, 0.08, 0.12),
        "other_passage_margin": (0.0, 0.005, 0.02), "answer_type_margin": (0.02, 0.05, 0.1)}


def _score(figures: dict) -> float:
    quotes = min(figures["strict_precision"] - train.PRECISION_BAR, figures["quote_recall"] - train.RECALL_BAR)
    abstention = min((figures["abstention"] or 0.0) - 0.75, 0.10 - figures["false_abstention"])
    return quotes + 0.5 * abstention


def main() -> None:
    data = {}
    for name, (gold, corpus) in DEV_CORPORA.items():
        service = build_service("extractive", corpus_dir=corpus, evidence_model=None)
        data[name] = (service.answerer, train.collect(gold, service, name))

    def run(name: str, params: dict) -> dict:
        answerer, questions = data[name]
        answerer.rules = replace(answerer.rules, **params)
        return train.evaluate([train._positions(q.candidates, answerer.select(q.question, q.retrieval))
                               for q in questions], questions)

    for fitted, scored in (("seeds", "corpus-b"), ("corpus-b", "seeds")):
        grid = [dict(zip(GRID, values)) for values in itertools.product(*GRID.values())]
        best = max(grid, key=lambda params: _score(run(fitted, params)))
        print(f"fitted on {fitted}: {best}\n  in sample: {run(fitted, best)}\n  on {scored}: {run(scored, best)}")


if __name__ == "__main__":
    main()
