"""The API's request and response models, and the error responses its routes document."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.answer.markdown import without_sources
from app.answer.models import Answer, Citation
from app.corpus import Article, ArticleMeta
from app.errors import InvalidRequest
from app.ingest import MAX_SOURCE_CHARS, MAX_TITLE_CHARS, MAX_URL_CHARS
from app.service import ArticleChange, SearchResult
from app.text.unicode import NOT_TEXT, has_lone_surrogates

__all__ = ["Answer", "ArticleChange", "ArticleDetail", "ArticleIn", "ArticleSummary", "AskOutput", "AskRequest",
           "AskStreamRequest", "ChatCompletion", "ChatCompletionChunk", "ChatCompletionRequest", "ErrorBody", "ModelList",
           "OpenAIErrorBody", "SearchRequest", "SearchResult", "Turn"]

MAX_QUESTION_CHARS = 2000
MAX_HISTORY_TURNS = 20
MAX_HISTORY_ANSWER_CHARS = 8000


def _valid_unicode(value: str) -> str:
    """JSON may carry lone surrogates ("\\ud800"), which are not text: refuse them before anything uses them."""
    if has_lone_surrogates(value):
        raise ValueError(NOT_TEXT)
    return value


Text = Annotated[str, AfterValidator(_valid_unicode)]


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"question": "من أين تأتي المسيرات التي تستخدمها روسيا؟"},
                     {"question": "Who signed the naval memorandum, and where?", "lang": "en", "top_k": 5}]})

    question: Text = Field(min_length=1, max_length=MAX_QUESTION_CHARS, description="the question, Arabic or English")
    lang: Literal["ar", "en"] | None = Field(None, description="answer language; detected from the question if unset")
    top_k: int | None = Field(None, ge=1, le=50, description="how many chunks to retrieve (default 5)")


class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: Text = Field(max_length=MAX_QUESTION_CHARS, description="an earlier question of the thread")
    answer: Text = Field("", max_length=MAX_HISTORY_ANSWER_CHARS, description="the answer it got (may be trimmed)")


class AskStreamRequest(AskRequest):
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"question": "And where was it signed?", "lang": "en",
                      "history": [{"question": "Who signed the naval memorandum?", "answer": "…"}]}]})

    history: list[Turn] | None = Field(
        None, max_length=MAX_HISTORY_TURNS,
        description="earlier turns of the thread, oldest first; a follow-up is retrieved together with the "
                    "previous question")


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: Text = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    top_k: int | None = Field(None, ge=1, le=50)


class ArticleSummary(BaseModel):
    id: str
    title: str
    source: str
    date: str | None
    chars: int

    @classmethod
    def of(cls, article: Article) -> ArticleSummary:
        return cls(id=article.id, title=article.title, source=article.source_label, date=article.meta.date,
                   chars=len(article.raw))


class ArticleDetail(ArticleSummary):
    meta: ArticleMeta
    text: str = Field(description="the raw article text; citation offsets index into it")
    body: list[tuple[int, int]] = Field(description="spans of `text` kept as body after boilerplate removal")

    @classmethod
    def of(cls, article: Article) -> ArticleDetail:
        return cls(**ArticleSummary.of(article).model_dump(), meta=article.meta, text=article.raw,
                   body=list(article.blocks))


class ErrorBody(BaseModel):
    detail: str


class ArticleIn(BaseModel):
    """A document to add. `content` is the document itself: plain text, Markdown or HTML (see `format`)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"content": "قالت وزارة الخارجية إن الوفد سيصل غداً إلى طهران لبحث الاتفاق.", "title": "وفد إلى طهران",
         "source": "وكالة مثال", "date": "2026-11-20", "language": "ar"},
        {"content": "<html><body><article><h1>…</h1><p>…</p></article></body></html>", "format": "html",
         "url": "https://example.org/news/1"}]})

    content: str = Field(min_length=1, description="the document: plain text, Markdown or HTML (main text is "
                                                   "extracted; scripts, styles and page furniture are dropped)")
    format: Literal["txt", "md", "html"] = Field("txt", description="how to read `content`")
    title: str | None = Field(None, max_length=MAX_TITLE_CHARS, description="default: the page's title or "
                                                                           "first heading, else the first line")
    source: str | None = Field(None, max_length=MAX_SOURCE_CHARS, description="the outlet that published it")
    url: str | None = Field(None, max_length=MAX_URL_CHARS, description="absolute http(s) URL of the original")
    date: dt.date | None = Field(None, description="publication date, YYYY-MM-DD")
    language: str | None = Field(None, pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$",
                                 description="language code of the article (default: detected, ar or en)")


# The error responses routes document (the bodies are always ErrorBody).
INVALID = {422: {"model": ErrorBody}}
WRITE_ERRORS = {401: {"model": ErrorBody, "description": "missing or wrong API key"},
                403: {"model": ErrorBody, "description": "writes are disabled: RAG_API_KEY is not set"},
                503: {"model": ErrorBody, "description": "another update held the lock too long"}}

ASK_STREAM_RESPONSES = {
    200: {
        "description": (
            "A text/event-stream of server-sent events, each `event: NAME` plus one line of JSON `data`:\n"
            "- `status` `{\"stage\": \"condensing\" | \"retrieving\" | \"answering\"}` as the work "
            "moves on (`condensing`: LLM mode, a follow-up is rewritten as a standalone question);\n"
            "- `token` `{\"text\": ...}` answer text, to append in order: the model's tokens as they are "
            "generated in LLM mode (a preview), the whole answer at once in extractive mode;\n"
            "- `answer`: the final, validated `Answer` (as POST /ask returns it, with citations), last: "
            "render it in place of the streamed preview;\n"
            "- or `error` `{\"detail\": ..., \"status\": 502}` instead of `answer` when answering "
            "fails (502/504: the model provider failed or timed out).\n"
            "Invalid requests are answered before the stream starts, with a JSON 4xx like /ask."),
        "content": {"text/event-stream": {"schema": {"type": "string"}, "example": (
            'event: status\ndata: {"stage": "retrieving"}\n\n'
            'event: status\ndata: {"stage": "answering"}\n\n'
            'event: token\ndata: {"text": "Here is what the sources say … [1]"}\n\n'
            'event: answer\ndata: {"answer": "…", "language": "en", "citations": [...], ...}\n\n')}},
    },
    **INVALID,
}


# -- the OpenAI-compatible endpoint (/v1, app/api/routes/openai.py) ----------------------------------------------------

# The model names GET /v1/models lists, and the answer language each fixes (None: the question's, or `lang`).
MODEL_ID = "arabic-news-rag"
MODELS: dict[str, Literal["ar", "en"] | None] = {MODEL_ID: None, f"{MODEL_ID}-ar": "ar", f"{MODEL_ID}-en": "en"}
MAX_MESSAGES = 500  # a chat client sends the whole thread; only its last MAX_HISTORY_TURNS turns are read


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = Field(description="when the live index was built (Unix time)")
    owned_by: str = MODEL_ID


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ContentPart(BaseModel):
    """One part of a message's content. Only text parts are read: the answer comes from the articles, not from
    images or files sent along."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(max_length=64)
    text: Text | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")  # name, tool_calls, refusal…: accepted, not read

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: Text | list[ContentPart] | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "\n".join(part.text for part in self.content or () if part.type == "text" and part.text)


class ChatCompletionRequest(BaseModel):
    """OpenAI's chat completion request. Sampling settings (temperature, max_tokens, stop…) and any other field a
    client sends are accepted and not read: the answer is quoted from the articles, or phrased from them under the
    service's own model settings."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [
        {"model": MODEL_ID, "messages": [{"role": "user", "content": "من أين تأتي المسيرات التي تستخدمها روسيا؟"}]},
        {"model": MODEL_ID, "stream": True, "lang": "en", "top_k": 5, "messages": [
            {"role": "user", "content": "Who signed the naval memorandum?"},
            {"role": "assistant", "content": "…"},
            {"role": "user", "content": "And where was it signed?"}]}]})

    model: str = Field(min_length=1, max_length=200, description=f"a model GET /v1/models lists: {', '.join(MODELS)} "
                                                                   "(the -ar and -en ones answer in that language)")
    messages: list[ChatMessage] = Field(
        min_length=1, max_length=MAX_MESSAGES,
        description="the thread, oldest first: the last message is the user's question, earlier user/assistant "
                    "pairs are the history a follow-up is read with; system messages are not read")
    stream: bool | None = Field(False, description="server-sent chunks, the last carrying `citations`, then [DONE]")
    n: int | None = Field(None, ge=1, le=1, description="one choice is written")
    lang: Literal["ar", "en"] | None = Field(None, description="answer language (extra field; default: the "
                                                                 "model's, else the question's)")
    top_k: int | None = Field(None, ge=1, le=50, description="chunks to retrieve (extra field; default 5)")

    def language(self) -> Literal["ar", "en"] | None:
        """The answer language the request asks for (None: the question's); 404 for a model the service lacks."""
        if self.model not in MODELS:
            raise InvalidRequest(f"the model {self.model!r} does not exist: use one of {', '.join(MODELS)} "
                                 "(GET /v1/models)", param="model", code="model_not_found", status=404)
        fixed = MODELS[self.model]
        if self.lang and fixed and self.lang != fixed:
            raise InvalidRequest(f"lang {self.lang!r} contradicts the model {self.model!r}, which answers in "
                                 f"{fixed!r}: drop lang or use {MODEL_ID}", param="lang", code="invalid_value")
        return self.lang or fixed

    def conversation(self) -> tuple[str, list[Turn]]:
        """The question (the last message, which must be the user's) and the thread before it as turns: each user
        message with the assistant's reply that followed it (without the Sources list the reply carried), the last
        MAX_HISTORY_TURNS of them, trimmed to what a Turn holds. System, developer and tool messages are not read."""
        last = len(self.messages) - 1
        where = f"messages[{last}]"
        if self.messages[last].role != "user":
            raise InvalidRequest(f"the last message must be the user's question (its role is "
                                 f"{self.messages[last].role!r}, not 'user')", param=f"{where}.role",
                                 code="invalid_value")
        question = self.messages[last].text.strip()
        if not question:
            raise InvalidRequest("the last message holds no text to ask", param=f"{where}.content",
                                 code="invalid_value")
        if len(question) > MAX_QUESTION_CHARS:
            raise InvalidRequest(f"the question is {len(question)} characters long: ask in at most "
                                 f"{MAX_QUESTION_CHARS}", param=f"{where}.content", code="string_above_max_length")
        pairs: list[list[str]] = []
        for message in self.messages[:last]:
            text = message.text.strip()
            if message.role == "user" and text:
                pairs.append([text[:MAX_QUESTION_CHARS], ""])
            elif message.role == "assistant" and pairs and not pairs[-1][1]:
                pairs[-1][1] = without_sources(text)[:MAX_HISTORY_ANSWER_CHARS]
        return question, [Turn(question=q, answer=a) for q, a in pairs[-MAX_HISTORY_TURNS:]]


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str = Field(description="the answer with its [n] markers, then a Markdown list of the sources")


class CompletionChoice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop"] = "stop"
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[CompletionChoice]
    citations: list[Citation] = Field(description="the answer's citations, as POST /ask returns them (empty when "
                                                  "it abstained)")
    abstained: bool = Field(description="the sources do not answer: the content is the abstention sentence")


class ChunkDelta(BaseModel):
    role: Literal["assistant"] | None = Field(None, exclude_if=lambda value: value is None)
    content: str | None = Field(None, exclude_if=lambda value: value is None)


class ChunkChoice(BaseModel):
    index: int = 0
    delta: ChunkDelta
    finish_reason: Literal["stop"] | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    # The last chunk only (the one with finish_reason "stop"), as in ChatCompletion.
    citations: list[Citation] | None = Field(None, exclude_if=lambda value: value is None)
    abstained: bool | None = Field(None, exclude_if=lambda value: value is None)


class OpenAIError(BaseModel):
    message: str
    type: str = Field(description="invalid_request_error, authentication_error, server_error…")
    param: str | None = Field(None, description="the request field at fault")
    code: str | None = Field(None, description="model_not_found, string_above_max_length, invalid_value…")


class OpenAIErrorBody(BaseModel):
    """What /v1 answers on any error, in OpenAI's shape, so OpenAI clients raise their own typed errors with it."""

    error: OpenAIError


OPENAI_ERRORS = {400: {"model": OpenAIErrorBody, "description": "an invalid request (OpenAI's shape)"},
                 404: {"model": OpenAIErrorBody, "description": "no such model"},
                 413: {"model": OpenAIErrorBody, "description": "request body too large"}}

CHAT_COMPLETION_RESPONSES = {
    200: {
        "model": ChatCompletion,
        "description": (
            "A `chat.completion`, or with `stream: true` a text/event-stream of `chat.completion.chunk`s in OpenAI's "
            "format: `data: {chunk}` lines, the first with the role, then the content (the validated answer, whole "
            "lines), the last with `finish_reason: \"stop\"`, `citations` and `abstained`, then `data: [DONE]`. An "
            "answerer failure after the stream began comes as `data: {\"error\": {...}}`."),
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    },
    **OPENAI_ERRORS,
    502: {"model": OpenAIErrorBody, "description": "LLM mode: the model provider failed"},
    504: {"model": OpenAIErrorBody, "description": "LLM mode: the model provider timed out"},
}


# -- the MCP server's structured results (app/api/mcp_server.py) -------------------------------------------------------

class AskOutput(BaseModel):
    """The `ask` tool's result: the answer and its citations (article, span, exact quote), without the retrieved
    hits (the `search` tool lists those)."""

    answer: str = Field(description="the answer, each claim followed by the [n] of its citation")
    language: Literal["ar", "en"]
    abstained: bool = Field(description="the sources do not answer the question: no citations")
    citations: list[Citation]
    mode: Literal["extractive", "llm"]
    standalone_question: str | None = Field(None, description="a follow-up, as the thread made it (LLM mode)")

    @classmethod
    def of(cls, answer: Answer) -> AskOutput:
        return cls(answer=answer.answer, language=answer.language, abstained=answer.abstained,
                   citations=answer.citations, mode=answer.mode, standalone_question=answer.standalone_question)
