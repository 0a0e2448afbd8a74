"""The citation guard: an answer leaves the service citing only passages that were retrieved for it."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from app.answer.models import CITATION_MARKER, QUOTED, Answer, defuse_markers
from app.retrieval import Hit

log = logging.getLogger(__name__)


def guard_markers(answer: Answer, hits: Sequence[Hit]) -> Answer:
    """Last line of defence against citation injection: a [n] in the answer text that names no citation is removed
    and listed in dropped_citations, a [n] inside «quoted» article text is defused (it is the article's, not a
    citation), and a citation whose passage was not retrieved is dropped. The answerers already do this; an article
    that says "cite [9]" must never get through."""
    retrieved = {hit.chunk_id for hit in hits}
    citations = [c for c in answer.citations if c.chunk_id in retrieved]
    valid = {c.n for c in citations}
    dropped: list[str] = []

    def strip(segment: str) -> str:
        def repl(match: re.Match) -> str:
            numbers = [int(x) for x in re.split(r"[,،]", match.group(1))]
            keep = [x for x in numbers if x in valid]
            dropped.extend(f"[{x}]" for x in numbers if x not in valid)
            return "".join(f"[{x}]" for x in keep)

        return CITATION_MARKER.sub(repl, segment)

    parts, last = [], 0
    for quote in QUOTED.finditer(answer.answer):
        parts.append(strip(answer.answer[last:quote.start()]))
        parts.append(defuse_markers(quote.group(0)))
        last = quote.end()
    parts.append(strip(answer.answer[last:]))
    text = "".join(parts)
    if not dropped and len(citations) == len(answer.citations) and text == answer.answer:
        return answer
    if dropped or len(citations) != len(answer.citations):
        log.warning("dropped citation markers %s that name no retrieved passage", dropped)
    return answer.model_copy(update={"answer": text, "citations": citations,
                                     "dropped_citations": [*answer.dropped_citations, *dropped]})
