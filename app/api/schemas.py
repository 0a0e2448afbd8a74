"""The API's request and response models, and the error responses its routes document."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from app.answer.models import Answer
from app.corpus import Article, ArticleMeta
from app.ingest import MAX_SOURCE_CHARS, MAX_TITLE_CHARS, MAX_URL_CHARS
from app.service import ArticleChange, SearchResult
from app.text.unicode import NOT_TEXT, has_lone_surrogates

__all__ = ["Answer", "ArticleChange", "ArticleDetail", "ArticleIn", "ArticleSummary", "AskRequest", "AskStreamRequest",
           "ErrorBody", "SearchRequest", "SearchResult", "Turn"]

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
