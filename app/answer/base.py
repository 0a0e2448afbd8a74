"""What the service asks of an answerer: the contract ExtractiveAnswerer and LLMAnswerer both keep."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, Protocol, TypeGuard

from app.answer.models import Answer, Citation
from app.retrieval import Retrieval


class Answerer(Protocol):
    """Writes the answer to a question from its retrieval, every claim citing a retrieved passage."""

    @property
    def mode(self) -> Literal["extractive", "llm"]:
        """The kind of answerer, reported in every Answer and by /health."""
        ...

    def answer(self, question: str, language: str, retrieval: Retrieval) -> Answer: ...


class GenerativeAnswerer(Answerer, Protocol):
    """An answerer whose model writes the text: it can stream it and condense a follow-up into a question."""

    @property
    def mode(self) -> Literal["llm"]: ...

    def answer(self, question: str, language: str, retrieval: Retrieval,
               on_token: Callable[[str], None] | None = None) -> Answer: ...

    def condense(self, question: str, history: Sequence[tuple[str, str]], language: str) -> str:
        """The follow-up `question` rewritten as a standalone one, given (question, answer) pairs, oldest first."""
        ...

    def translate_question(self, question: str, source: str, target: str) -> str | None:
        """The question in language `target` (the articles'), for retrieval; None when no plausible translation."""
        ...

    def translate_quotes(self, citations: Sequence[Citation], target: str,
                         source_languages: Sequence[str]) -> list[Citation]:
        """The citations, those whose quote is in another language than `target` with a machine `translation`."""
        ...


def is_generative(answerer: Answerer) -> TypeGuard[GenerativeAnswerer]:
    return answerer.mode == "llm"
