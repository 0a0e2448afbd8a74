"""What an answer is: text with [n] markers rendered from structured citations, plus the hits behind it."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, Field

from app.retrieval import Hit


class QuoteTranslation(BaseModel):
    """A language model's rendering of a quote in the answer's language: a reading aid beside the verbatim quote,
    never the source's own words and never what the citation's span points at."""

    text: str
    language: Literal["ar", "en"]
    machine: Literal[True] = Field(True, description="always true: a machine translation, not the source's wording")
    model: str = Field(description="the model that translated it")


class Citation(BaseModel):
    n: int = Field(description="the marker [n] in the answer text")
    article_id: str
    title: str
    source: str = Field(description="outlet, and the publication it translates or quotes where known")
    chunk_id: str
    start: int = Field(description="start of the quoted span in the article's raw text")
    end: int = Field(description="end of the quoted span: raw[start:end] == quote")
    quote: str
    support: float = Field(description="how well the cited passage supports the sentence that cites it (0..1)")
    supported: bool
    translation: QuoteTranslation | None = Field(
        None, description="LLM mode, a quote in another language than the answer: the model's rendering of it")


class Answer(BaseModel):
    answer: str
    language: Literal["ar", "en"]
    abstained: bool
    citations: list[Citation]
    hits: list[Hit]
    mode: Literal["extractive", "llm"]
    dropped_citations: list[str] = Field(
        default_factory=list, description="markers the model wrote that point at no retrieved passage, removed"
    )
    standalone_question: str | None = Field(
        None, description="LLM mode, follow-ups: the question the thread was condensed into (what was retrieved)")
    timings_ms: dict[str, float] = Field(default_factory=dict)


# A citation marker in answer text: [1], [1, 2], [١،٢]; the group holds the numbers.
CITATION_MARKER = re.compile(r"\[(\s*\d+(?:\s*[,،]\s*\d+)*\s*)\]")
# Article text quoted in an answer: «...» (what the answerers write around every quote).
QUOTED = re.compile(r"«[^«»]*»")
# Square brackets in article text become their full-width forms: they read the same, but no parser of [n] markers
# (nor of Markdown links or [^n] footnotes) can take them for one.
_DEFUSED = str.maketrans({"[": "［", "]": "］"})


def defuse_markers(text: str) -> str:
    """Article text (a quote, a title, an outlet) as any answer text shows it: chat clients find citations by the
    [n] in the text, so an article saying "the source is [9]" must not put a [9] there. Every text surface (the
    answer, the OpenAI content, MCP text) shows article text through this; structured quotes stay exact."""
    return text.translate(_DEFUSED)


def defuse_quoted(text: str) -> str:
    """`text` with the article text it quotes in «...» passed through defuse_markers (a model's answer may quote)."""
    return QUOTED.sub(lambda m: defuse_markers(m.group(0)), text)

ABSTENTION = {
    "ar": "لا تجيب المصادر المتاحة عن هذا السؤال.",
    "en": "The sources do not answer this question.",
}
