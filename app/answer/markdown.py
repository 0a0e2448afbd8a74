"""An answer as a chat window shows it: the text with its [n] markers, then a short Markdown list of the sources.

The OpenAI-compatible endpoint and the MCP server write answers this way; the structured citations travel beside
the text, unchanged. Article text in the list goes through defuse_markers, so the only [n] are the citations, and
an HTML tag an article holds reaches the client as text (&lt;), never as markup its Markdown renderer would run."""

from __future__ import annotations

import re

from app.answer.models import Answer, Citation, defuse_markers

# The start of an HTML tag, comment or declaration (<script, </b, <!--, <?xml); "a < b" is left alone.
_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")

SOURCES_HEADING = {"ar": "**المصادر**", "en": "**Sources**"}


def with_sources(answer: Answer) -> str:
    """The answer's text and, unless it abstained, a "Sources" list: one line per citation, `- [n] outlet — title:
    «quote»` (and the quote's machine translation, when it has one). An abstention is its one sentence."""
    text = answer.answer
    if not answer.abstained and answer.citations:
        items = "\n".join(source_item(citation) for citation in answer.citations)
        text = f"{text}\n\n{SOURCES_HEADING[answer.language]}\n{items}"
    return _TAG_START.sub("&lt;", text)


def source_item(citation: Citation) -> str:
    who = " — ".join(defuse_markers(" ".join(part.split())) for part in (citation.source, citation.title) if part)
    quote = defuse_markers(" ".join(citation.quote.split()))
    item = f"- [{citation.n}] {who}: «{quote}»" if who else f"- [{citation.n}] «{quote}»"
    if citation.translation is not None:  # LLM mode: the model's rendering, never passed off as the source's words
        label = "ترجمة آلية" if citation.translation.language == "ar" else "machine translation"
        item += f" ({label}: {defuse_markers(' '.join(citation.translation.text.split()))})"
    return item


def without_sources(text: str) -> str:
    """An earlier answer as a chat client sends it back in the thread, without the Sources list `with_sources`
    added (the thread's earlier answers only help to read a follow-up)."""
    for heading in SOURCES_HEADING.values():
        cut = text.find(f"\n\n{heading}\n")
        if cut >= 0:
            text = text[:cut]
    return text
