"""The generative answerer: any litellm model writes the answer; the app validates every [n].

Two strategies (`Settings.llm_strategy`):
- "passages": the model reads the numbered retrieved chunks, picks what answers the question and cites [n] per
  chunk; the app points each [n] at the sentence of that chunk closest to the answer sentences citing it.
- "evidence": the app picks the evidence sentences itself (the extractive answerer's `select`: scored sentences,
  answer-type filter, abstention threshold) and abstains without calling the model when there are none; the model
  only phrases an answer in the requested language from those numbered sentences, citing [n] per sentence, so
  every citation points at exactly the sentence the app chose. A sentence the model leaves unmarked gets the [n]
  of the chosen sentence closest to it.
In both, "INSUFFICIENT" or an answer that opens by refusing ("I'm sorry…", "لا أستطيع…") abstains.
In both, each citation's `support` is the embedding similarity between the answer sentences citing it and the cited
sentence, and `supported` compares it with SUPPORT_THRESHOLD.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from string import Template
from typing import Any, Literal

import numpy as np

from app.answer.evidence import Evidence
from app.answer.extractive import ExtractiveAnswerer, source_line
from app.answer.models import (
    ABSTENTION,
    CITATION_MARKER,
    Answer,
    Citation,
    QuoteTranslation,
    defuse_markers,
    defuse_quoted,
)
from app.config import PROJECT_ROOT, Settings
from app.corpus import Corpus
from app.embeddings import Embedder
from app.errors import LLMError, LLMTimeout
from app.index import Index
from app.retrieval import Retrieval
from app.text.arabic import sentence_spans

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # importing litellm must not touch the network

Strategy = Literal["passages", "evidence"]
STRATEGIES: tuple[str, ...] = ("passages", "evidence")
LANGUAGE_NAMES = {"ar": "Arabic", "en": "English"}
ABSTAIN_TOKEN = "INSUFFICIENT"
# A model that cannot answer often says so in its own words instead of the abstain token.
_REFUSAL = re.compile(
    r"^\W*(i'?m sorry|sorry|i apologi[sz]e|i (cannot|can ?not|can't|am unable|do not know|don't know)"
    r"|(the )?(given |provided )?(passages?|sources?|sentences?|articles?|texts?) (do|does) not (contain|provide|"
    r"mention|answer|say|include|specify|state)|there (is|are) no (information|mention|source)|no information"
    r"|أعتذر|عذرا|عذراً|آسف|لا أستطيع|لا يمكنني|لا توجد معلومات|لا يوجد (مصدر|معلومات|ذكر|نص)"
    r"|لا تحتوي|لا تذكر|لا تجيب)",
    re.IGNORECASE,
)
_LETTER = re.compile(r"[^\W\d_]")
_TRAILING = re.compile(r"([.!?؟؛])((?:[ \t]*\[\d+\])+)")
PROMPTS_DIR = PROJECT_ROOT / "prompts"
TEMPERATURE = 0.0  # the same question gets the same answer
MAX_TOKENS = 600  # the reply's cap (a follow-up's condensing: CONDENSE_MAX_TOKENS)
# The most sentences the prompts let the model write; the extractive AnswerRules.max_sentences stays at most this.
MAX_SENTENCES = 4
# A generated sentence counts as supported by its cited sentence at this similarity: calibrated on the dev set's
# reference answers with scripts/calibrate_support.py (docs/experiments.md).
SUPPORT_THRESHOLD = 0.82
# Condensing a follow-up: how much of the thread the model sees, and how long its one-line reply may be.
CONDENSE_TURNS = 3
CONDENSE_ANSWER_CHARS = 600
CONDENSE_MAX_TOKENS = 120
# Translating a question for retrieval: the reply's cap, and how much longer than the question it may be.
TRANSLATE_QUESTION_MAX_TOKENS = 160
# Translating the cited quotes: tokens per quote character (Arabic runs ~3-4 characters a token; English needs
# about as many tokens as the Arabic), with a floor.
TRANSLATE_QUOTES_TOKENS_PER_CHAR = 0.6
TRANSLATE_QUOTES_MIN_TOKENS = 200
_NUMBERED_LINE = re.compile(r"^\s*\[(\d+)\]\s*[:.)-]?\s*(.+?)\s*$")
_SCRIPT = {"ar": re.compile(r"[\u0600-\u06FF]"), "en": re.compile(r"[A-Za-z]")}
PROMPTS = {
    "passages": ("answer_system.txt", "answer_user.txt"),
    "evidence": ("evidence_system.txt", "evidence_user.txt"),
}


def load_prompt(name: str) -> Template:
    return Template((PROMPTS_DIR / name).read_text(encoding="utf-8"))


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

    clean = CITATION_MARKER.sub(repl, text)
    # "... in Ukraine. [1] Then ..." (as small models write it): the marker belongs before the full stop it follows.
    clean = _TRAILING.sub(lambda m: " " + "".join(re.findall(r"\[\d+\]", m.group(2))) + m.group(1), clean)
    clean = re.sub(r"[ \t]+([.,،؛!?؟])", r"\1", clean).strip()
    return clean, cited, dropped


def is_refusal(text: str) -> bool:
    """Whether the answer opens by saying it cannot answer ("I'm sorry, the passages do not…", "أعتذر، لا أستطيع…")."""
    return bool(_REFUSAL.search(CITATION_MARKER.sub("", text).strip()))


def claims_by_marker(text: str) -> list[tuple[str, set[int]]]:
    """The answer's sentences without their markers, each with the numbers it cites. Markers standing alone after
    the full stop ("... in Ukraine. [1] [2]", as small models write them) belong to the sentence before them."""
    claims: list[tuple[str, set[int]]] = []
    for start, end in sentence_spans(text):
        segment = text[start:end]
        numbers = {int(x) for m in CITATION_MARKER.finditer(segment) for x in re.split(r"[,،]", m.group(1))}
        words = re.sub(r"\s+([.,،؛!?؟])", r"\1", CITATION_MARKER.sub("", segment)).strip()
        if claims and not _LETTER.search(words):
            claims[-1][1].update(numbers)
        else:
            claims.append((words, numbers))
    return claims


def _mostly_arabic(text: str) -> bool:
    """Whether most of the letters are Arabic: a "translation" into English that only repeats the quote."""
    letters = _LETTER.findall(text)
    return bool(letters) and len(_SCRIPT["ar"].findall(text)) > len(letters) / 2


class LLMAnswerer:
    mode: Literal["llm"] = "llm"

    def __init__(self, index: Index, corpus: Corpus, embedder: Embedder, settings: Settings,
                 completion: Callable[..., Any] | None = None, *, strategy: Strategy | None = None,
                 selector: ExtractiveAnswerer | None = None, **completion_kwargs: Any):
        self.index = index
        self.corpus = corpus
        self.embedder = embedder
        self.settings = settings
        self.strategy: Strategy = strategy or settings.llm_strategy
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown llm strategy {self.strategy!r}: use one of {', '.join(STRATEGIES)}")
        system_name, user_name = PROMPTS[self.strategy]
        self.system = load_prompt(system_name)
        self.user = load_prompt(user_name)
        self.condense_system = load_prompt("condense_system.txt")
        self.condense_user = load_prompt("condense_user.txt")
        self.translate_question_prompts = (load_prompt("translate_question_system.txt"),
                                           load_prompt("translate_question_user.txt"))
        self.translate_quotes_prompts = (load_prompt("translate_quotes_system.txt"),
                                         load_prompt("translate_quotes_user.txt"))
        # The "evidence" strategy selects sentences exactly as the extractive answerer does: pass the service's own
        # ExtractiveAnswerer as `selector` to share its rules and model; the default is built from the same Settings.
        self.selector = selector or ExtractiveAnswerer.from_settings(index, corpus, settings)
        if self.strategy == "evidence":
            self.scorer = self.selector.scorer  # lets the evaluation report the top evidence scores
        self._completion = completion
        self.completion_kwargs = completion_kwargs  # e.g. mock_response in tests

    def _complete(self, messages: list[dict], on_token: Callable[[str], None] | None = None, *,
                  max_tokens: int | None = None) -> str:
        """The model's reply to `messages`. With `on_token`, the reply is streamed and each piece of text is passed
        to it as it arrives (the returned text is the whole reply either way). Provider failures become LLMError
        (502) and timeouts LLMTimeout (504), whether they happen before or during the stream."""
        import litellm

        completion = self._completion or litellm.completion
        try:
            response = completion(
                model=self.settings.llm_model,
                messages=messages,
                api_base=self.settings.llm_api_base,
                api_key=self.settings.llm_api_key,
                timeout=self.settings.llm_timeout,
                temperature=TEMPERATURE,
                max_tokens=max_tokens or MAX_TOKENS,
                **({"stream": True} if on_token else {}),
                **self.completion_kwargs,
            )
            if on_token:
                return self._read_stream(response, on_token)
        except litellm.exceptions.Timeout as exc:
            raise LLMTimeout(f"the language model did not answer within {self.settings.llm_timeout:g} s") from exc
        except LLMError:
            raise
        except Exception as exc:  # any provider failure is the provider's, not the client's: 502
            raise LLMError(f"the language model provider failed: {type(exc).__name__}: {exc}"[:500]) from exc
        content = response.choices[0].message.content
        if not isinstance(content, str):
            raise LLMError("the language model returned no text")
        return content

    @staticmethod
    def _read_stream(response: Any, on_token: Callable[[str], None]) -> str:
        pieces: list[str] = []
        for chunk in response:
            choices = getattr(chunk, "choices", None) or []
            delta = getattr(choices[0], "delta", None) if choices else None
            text = getattr(delta, "content", None) if delta is not None else None
            if text:
                pieces.append(text)
                on_token(text)
        if not pieces:
            raise LLMError("the language model returned no text")
        return "".join(pieces)

    def condense(self, question: str, history: Sequence[tuple[str, str]], language: str) -> str:
        """Follow-up + conversation → one standalone question (prompts/condense_*.txt), so retrieval and the answer
        see what "and what did Iran get in return?" refers to. `history` is (question, answer) pairs, oldest first;
        only the last few turns are sent, answers trimmed and without their [n] markers. Falls back to the
        follow-up itself when the model's reply is empty or implausibly long."""
        turns = list(history)[-CONDENSE_TURNS:]
        if not turns:
            return question
        conversation = "\n".join(
            f"Q: {' '.join(q.split())}\nA: {' '.join(CITATION_MARKER.sub('', a or '').split())[:CONDENSE_ANSWER_CHARS]}"
            for q, a in turns
        )
        names = {"language_name": LANGUAGE_NAMES[language]}
        messages = [
            {"role": "system", "content": self.condense_system.safe_substitute(names)},
            {"role": "user", "content": self.condense_user.safe_substitute(names, history=conversation,
                                                                            question=question)},
        ]
        reply = self._complete(messages, max_tokens=CONDENSE_MAX_TOKENS)
        standalone = " ".join(reply.strip().strip('"«»').split())
        standalone = re.sub(r"^(standalone question|question|السؤال)\s*[:：]\s*", "", standalone, flags=re.IGNORECASE)
        if not standalone or len(standalone) > max(4 * len(question), 400):
            return question
        return standalone

    # -- translation ----------------------------------------------------------------------------------------------

    def translate_question(self, question: str, source: str, target: str) -> str | None:
        """The question in the articles' language (`target`), for retrieval beside the question itself; None when
        the model's reply is not a plausible translation (empty, in the wrong script, or far longer than the
        question), in which case retrieval goes on with the dictionary translation alone."""
        names = {"source_name": LANGUAGE_NAMES[source], "target_name": LANGUAGE_NAMES[target]}
        system, user = self.translate_question_prompts
        messages = [
            {"role": "system", "content": system.safe_substitute(names)},
            {"role": "user", "content": user.safe_substitute(names, question=" ".join(question.split()))},
        ]
        reply = self._complete(messages, max_tokens=TRANSLATE_QUESTION_MAX_TOKENS)
        lines = [line.strip().strip('"«»') for line in reply.strip().splitlines() if line.strip()]
        translated = " ".join(lines[0].split()) if lines else ""
        if not translated or not _SCRIPT[target].search(translated) or len(translated) > max(3 * len(question), 300):
            return None
        return translated

    def translate_quotes(self, citations: Sequence[Citation], target: str,
                         source_languages: Sequence[str]) -> list[Citation]:
        """The citations, each whose quote is in another language than `target` (its article's, in
        `source_languages`) with the model's rendering of it in `translation`. One call for all the quotes; a line
        the model does not number, or writes in the wrong script, leaves that citation without a translation (the
        verbatim quote stays what the reader is shown as the source's words)."""
        wanted = [(c, lang) for c, lang in zip(citations, source_languages) if lang != target]
        if not wanted:
            return list(citations)
        source = wanted[0][1] if wanted[0][1] in LANGUAGE_NAMES else "ar"
        names = {"source_name": LANGUAGE_NAMES[source], "target_name": LANGUAGE_NAMES[target]}
        numbered = "\n".join(f"[{i}] {' '.join(defuse_markers(c.quote).split())}" for i, (c, _) in enumerate(wanted, 1))
        system, user = self.translate_quotes_prompts
        messages = [
            {"role": "system", "content": system.safe_substitute(names)},
            {"role": "user", "content": user.safe_substitute(names, quotes=numbered)},
        ]
        budget = max(TRANSLATE_QUOTES_MIN_TOKENS,
                     int(TRANSLATE_QUOTES_TOKENS_PER_CHAR * sum(len(c.quote) for c, _ in wanted)))
        reply = self._complete(messages, max_tokens=budget)
        rendered: dict[int, str] = {}
        for line in reply.splitlines():
            match = _NUMBERED_LINE.match(line)
            if match and int(match.group(1)) not in rendered:
                rendered[int(match.group(1))] = match.group(2)
        if not rendered and len(wanted) == 1 and reply.strip():  # one quote: a model may drop the number
            rendered[1] = " ".join(reply.split())
        by_n: dict[int, QuoteTranslation] = {}
        for i, (citation, _) in enumerate(wanted, 1):
            text = rendered.get(i, "")
            if text and _SCRIPT[target].search(text) and not (target != "ar" and _mostly_arabic(text)):
                by_n[citation.n] = QuoteTranslation(text=text, language=target, model=self.settings.llm_model or "")
        return [c.model_copy(update={"translation": by_n[c.n]}) if c.n in by_n else c for c in citations]

    # -- prompts ------------------------------------------------------------------------------------------------

    def messages(self, question: str, language: str, retrieval: Retrieval,
                 evidence: list[Evidence] | None = None) -> list[dict]:
        """The chat messages: numbered passages ("passages") or numbered evidence sentences ("evidence"; selected
        here when not given). The article text in them is defused, so the only [n] the model sees are the numbers
        it may cite."""
        names = {"language_name": LANGUAGE_NAMES[language], "max_sentences": MAX_SENTENCES}
        if self.strategy == "evidence":
            if evidence is None:
                evidence = self.selector.select(question, retrieval)
            english = self.selector.english if language == "en" else None  # one renderer, not one per line
            numbered = "\n".join(
                f"[{n}] ({source_line(self.corpus.articles[e.article_id], language, english)}) "
                f"{defuse_markers(' '.join(e.text.split()))}"
                for n, e in enumerate(evidence, 1)
            )
            user = self.user.safe_substitute(names, evidence=numbered, question=question)
        else:
            passages = "\n\n".join(
                f"[{hit.rank}] ({defuse_markers(self.corpus.articles[hit.article_id].source_label or hit.title)}) "
                f"{defuse_markers(hit.text)}"
                for hit in retrieval.hits
            )
            user = self.user.safe_substitute(names, passages=passages, question=question)
        return [
            {"role": "system", "content": self.system.safe_substitute(names)},
            {"role": "user", "content": user},
        ]

    # -- answering ----------------------------------------------------------------------------------------------

    def answer(self, question: str, language: str, retrieval: Retrieval,
               on_token: Callable[[str], None] | None = None) -> Answer:
        """The validated answer. `on_token` receives the model's raw text as it streams (a preview: markers are
        validated, unmarked sentences attributed and refusals turned into abstentions only in the returned
        Answer, which is the authoritative one)."""
        def abstain(dropped: list[str]) -> Answer:
            return Answer(answer=ABSTENTION[language], language=language, abstained=True, citations=[],
                          hits=retrieval.hits, mode="llm", dropped_citations=dropped)

        if not retrieval.hits:
            return abstain([])
        if self.strategy == "evidence":
            chosen = self.selector.select(question, retrieval)
            if not chosen:  # too weak to answer: abstain without spending a model call
                return abstain([])
            n_sources = len(chosen)
            raw = self._complete(self.messages(question, language, retrieval, chosen), on_token)
        else:
            chosen = []
            n_sources = len(retrieval.hits)
            raw = self._complete(self.messages(question, language, retrieval), on_token)
        # A [n] the model writes inside a «quote» is the quoted article's text, never a citation.
        text, cited, dropped = validate_markers(defuse_quoted(raw), n_sources)
        if ABSTAIN_TOKEN in text.upper() or is_refusal(text):
            return abstain(dropped)
        if self.strategy == "evidence":
            text, cited = self._mark_unmarked(text, chosen)
        if not cited:
            return abstain(dropped)
        if self.strategy == "evidence":
            citations = [self._evidence_citation(n, text, chosen[n - 1]) for n in cited]
        else:
            citations = [self._passage_citation(n, text, retrieval) for n in cited]
        return Answer(answer=text, language=language, abstained=False, citations=citations, hits=retrieval.hits,
                      mode="llm", dropped_citations=dropped)

    def _mark_unmarked(self, text: str, chosen: list[Evidence]) -> tuple[str, list[int]]:
        """Evidence strategy: the model restates only the app's sentences, so an answer sentence it left without a
        marker gets the [n] of the chosen sentence closest to it (its support is then scored like any other).
        Returns the text and the cited numbers in order of first appearance."""
        spans = sentence_spans(text)
        unmarked: list[tuple[int, int]] = []
        for i, (start, end) in enumerate(spans):
            segment = text[start:end]
            marked_after = i + 1 < len(spans) and not _LETTER.search(CITATION_MARKER.sub("", text[slice(*spans[i + 1])]))
            if _LETTER.search(CITATION_MARKER.sub("", segment)) and not CITATION_MARKER.search(segment) and not marked_after:
                unmarked.append((start, end))
        if unmarked:
            vectors = self.embedder.embed_passages([text[s:e] for s, e in unmarked])
            sims = vectors @ self.index.sentence_vectors[[e.sentence_id for e in chosen]].T
            for (start, end), row in sorted(zip(unmarked, sims), reverse=True):  # right to left: offsets hold
                stop = end
                while stop > start and text[stop - 1] in ".!?؟؛":
                    stop -= 1
                text = f"{text[:stop]} [{int(np.argmax(row)) + 1}]{text[stop:]}"
        cited: list[int] = []
        for match in CITATION_MARKER.finditer(text):
            for x in re.split(r"[,،]", match.group(1)):
                if int(x) not in cited:
                    cited.append(int(x))
        return text, cited

    def _claim_vector(self, n: int, text: str) -> np.ndarray:
        """The embedding of the answer sentences that cite [n] (the whole answer when none does alone)."""
        claims = " ".join(claim for claim, numbers in claims_by_marker(text) if n in numbers)
        return self.embedder.embed_passages([claims or CITATION_MARKER.sub("", text)])[0]

    def _passage_citation(self, n: int, text: str, retrieval: Retrieval) -> Citation:
        """Point [n] at the sentence of passage n closest to the answer sentences citing it; score that support."""
        hit = retrieval.hits[n - 1]
        claim_vector = self._claim_vector(n, text)
        members = self.index.chunk_sentences[self.index.chunk_by_id[hit.chunk_id]]
        if members:
            sims = self.index.sentence_vectors[members] @ claim_vector
            best = int(np.argmax(sims))
            sentence = self.index.sentences[members[best]]
            start, end, support = sentence.start, sentence.end, float(sims[best])
        else:
            start, end = hit.start, hit.end
            support = float(self.index.chunk_vectors[self.index.chunk_by_id[hit.chunk_id]] @ claim_vector)
        return self._make_citation(n, hit.article_id, hit.chunk_id, start, end, support)

    def _evidence_citation(self, n: int, text: str, evidence: Evidence) -> Citation:
        """[n] is the app's own evidence sentence n; score how well it supports the answer sentences citing it."""
        support = float(self.index.sentence_vectors[evidence.sentence_id] @ self._claim_vector(n, text))
        chunk_id = self.index.chunks[evidence.chunk_index].chunk_id
        return self._make_citation(n, evidence.article_id, chunk_id, evidence.start, evidence.end, support)

    def _make_citation(self, n: int, article_id: str, chunk_id: str, start: int, end: int,
                       support: float) -> Citation:
        article = self.corpus.articles[article_id]
        return Citation(
            n=n,
            article_id=article_id,
            title=article.title,
            source=article.source_label,
            chunk_id=chunk_id,
            start=start,
            end=end,
            quote=article.raw[start:end],
            support=round(support, 4),
            supported=support >= SUPPORT_THRESHOLD,
        )
