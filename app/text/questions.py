"""What a question asks for, read from its wording: here, whether it asks what several sources say."""

from __future__ import annotations

import re

from app.text.arabic import normalize

# Questions that ask what several sources say ("what do the articles say", "بحسب المقالات").
_ACROSS = re.compile(r"\b(articles|sources|reports|reporting|coverage|outlets)\b|(^|\s)[وب]?(المقالات|المصادر|التقارير)")


def asks_across_sources(question: str) -> bool:
    return bool(_ACROSS.search(normalize(question)))
