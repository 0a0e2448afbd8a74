"""What a caller may ask: a question and the thread before it, checked before anything reads them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from app.errors import RagError
from app.text.unicode import NOT_TEXT, has_lone_surrogates


def check_text(text: str, name: str) -> None:
    """422 for text nothing can be asked with: empty, not a string, or not encodable (lone surrogates)."""
    if not isinstance(text, str) or not text.strip():
        raise RagError(f"{name} must be a non-empty string", status=422)
    if has_lone_surrogates(text):
        raise RagError(f"{name} is {NOT_TEXT}", status=422)


def history_pairs(history: Sequence[Mapping[str, Any] | Any] | None) -> list[tuple[str, str]]:
    """Earlier turns (dicts or objects with `question` and optional `answer`) as (question, answer) pairs, oldest
    first, skipping turns without a question."""
    pairs = []
    for turn in history or []:
        get = turn.get if isinstance(turn, Mapping) else lambda name, t=turn: getattr(t, name, None)
        question, answer = get("question"), get("answer")
        if isinstance(question, str) and question.strip():
            pairs.append((question.strip(), answer if isinstance(answer, str) else ""))
    return pairs
