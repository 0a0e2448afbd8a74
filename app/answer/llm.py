"""The generative answerer: any litellm model writes from numbered passages; the app validates every [n]."""

from __future__ import annotations

import os
import re
from string import Template
from typing import Any, Callable

import numpy as np

from app.answer.models import ABSTENTION, Answer, Citation
from app.config import Settings
from app.corpus import Corpus
from app.embeddings import Embedder
from app.errors import LLMError, LLMTimeout
from app.index import Index
from app.retrieval import Retrieval
from app.text.arabic import sentence_spans

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # importing litellm must not touch the network

LANGUAGE_NAMES = {"ar": "Arabic", "en": "English"}
ABSTAIN_TOKEN = "INSUFFICIENT"
_MARKER = re.compile(r"\[(\s*\d+(?:\s*[,،]\s*\d+)*\s*)\]")


def load_prompt(settings: Settings, name: str) -> Template:
    return Template((settings.prompts_dir / name).read_text(encoding="utf-8"))


def validate_markers(text: str, n_passages: int) -> tuple[str, list[int], list[str]]:
    """Keep markers that name a passage 1..n; drop the rest. Returns (clean text, cited numbers, dropped markers)."""
    cited: list[int] = []
    dropped: list[str] = []

    def repl(match: re.Match) -> str:
        numbers = [int(x) for x in re.split(r"[,،]", match.group(1))]
        valid = [x for x in numbers if 1 <= x <= n_passages]
        dropped.extend(f"[{x}]" for x in numbers if x not in valid)
        for x in valid:
            if x not in cited:
                cited.append(x)
        return "".join(f"[{x}]" for x in valid)

    clean = _MARKER.sub(repl, text)
    clean = re.sub(r"[ \t]+([.,،؛!?؟])", r"\1", clean).strip()
    return clean, cited, dropped


class LLMAnswerer:
    mode = "llm"

    def __init__(self, index: Index, corpus: Corpus, embedder: Embedder, settings: Settings,
                 completion: Callable[..., Any] | None = None, **completion_kwargs: Any):
        self.index = index
        self.corpus = corpus
        self.embedder = embedder
        self.settings = settings
        self.system = load_prompt(settings, "answer_system.txt")
        self.user = load_prompt(settings, "answer_user.txt")
        self._completion = completion
        self.completion_kwargs = completion_kwargs  # e.g. mock_response in tests

    def _complete(self, messages: list[dict]) -> str:
        import litellm

        completion = self._completion or litellm.completion
        try:
            response = completion(
                model=self.settings.llm_model,
                messages=messages,
                api_base=self.settings.llm_api_base,
                api_key=self.settings.llm_api_key,
                timeout=self.settings.llm_timeout,
                temperature=self.settings.llm_temperature,
                max_tokens=self.settings.llm_max_tokens,
                **self.completion_kwargs,
            )
        except litellm.exceptions.Timeout as exc:
            raise LLMTimeout(f"the language model did not answer within {self.settings.llm_timeout:g} s") from exc
        except Exception as exc:  # any provider failure is the provider's, not the client's: 502
            raise LLMError(f"the language model provider failed: {type(exc).__name__}: {exc}"[:500]) from exc
        content = response.choices[0].message.content
        if not isinstance(content, str):
            raise LLMError("the language model returned no text")
        return content

    def messages(self, question: str, language: str, retrieval: Retrieval) -> list[dict]:
        passages = "\n\n".join(
            f"[{hit.rank}] ({self.corpus.articles[hit.article_id].source_label or hit.title}) {hit.text}"
            for hit in retrieval.hits
        )
        names = {"language_name": LANGUAGE_NAMES[language], "max_sentences": self.settings.answer_max_sentences}
        return [
            {"role": "system", "content": self.system.safe_substitute(names)},
            {"role": "user", "content": self.user.safe_substitute(names, passages=passages, question=question)},
        ]

    def answer(self, question: str, language: str, retrieval: Retrieval) -> Answer:
        def abstain(dropped: list[str]) -> Answer:
            return Answer(answer=ABSTENTION[language], language=language, abstained=True, citations=[],
                          hits=retrieval.hits, mode="llm", dropped_citations=dropped)

        if not retrieval.hits:
            return abstain([])
        raw = self._complete(self.messages(question, language, retrieval))
        text, cited, dropped = validate_markers(raw, len(retrieval.hits))
        if not cited or ABSTAIN_TOKEN in text.upper():
            return abstain(dropped)
        citations = [self._citation(n, text, retrieval) for n in cited]
        return Answer(answer=text, language=language, abstained=False, citations=citations, hits=retrieval.hits,
                      mode="llm", dropped_citations=dropped)

    def _citation(self, n: int, text: str, retrieval: Retrieval) -> Citation:
        """Point [n] at the sentence of passage n closest to the answer sentences citing it; score that support."""
        hit = retrieval.hits[n - 1]
        claims = " ".join(text[s:e] for s, e in sentence_spans(text) if f"[{n}]" in text[s:e]) or text
        claim_vector = self.embedder.embed_passages([_MARKER.sub("", claims)])[0]
        members = self.index.chunk_sentences[self.index.chunk_by_id[hit.chunk_id]]
        article = self.corpus.articles[hit.article_id]
        if members:
            sims = self.index.sentence_vectors[members] @ claim_vector
            best = int(np.argmax(sims))
            sentence = self.index.sentences[members[best]]
            start, end, support = sentence.start, sentence.end, float(sims[best])
        else:
            start, end = hit.start, hit.end
            support = float(self.index.dense.reconstruct(self.index.chunk_by_id[hit.chunk_id]) @ claim_vector)
        return Citation(
            n=n,
            article_id=hit.article_id,
            title=hit.title,
            source=article.source_label,
            chunk_id=hit.chunk_id,
            start=start,
            end=end,
            quote=article.raw[start:end],
            support=round(support, 4),
            supported=support >= self.settings.support_threshold,
        )
