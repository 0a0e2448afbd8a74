"""What a question asks for, read from its wording: here, whether it asks what several sources say."""

from __future__ import annotations

import re
from functools import cache

from app.text.arabic import normalize, tokenize

# The words by which a question refers to the sources themselves ("what do the articles say", "بحسب المقالات").
_SOURCE_WORDS_EN = ("articles", "sources", "reports", "reporting", "coverage", "outlets")
_SOURCE_WORDS_AR = ("المقالات", "المصادر", "التقارير")
_ACROSS = re.compile(rf"\b({'|'.join(_SOURCE_WORDS_EN)})\b|(^|\s)[وب]?({'|'.join(_SOURCE_WORDS_AR)})")


def asks_across_sources(question: str) -> bool:
    return bool(_ACROSS.search(normalize(question)))


@cache
def source_terms() -> frozenset[str]:
    """The index terms (stems) of the words that name the sources: in a sentence they are the reporter's own
    wording ("وحسب المقال فإن ..."), not what the question asks about."""
    return frozenset(tokenize(" ".join(_SOURCE_WORDS_EN + _SOURCE_WORDS_AR)))
