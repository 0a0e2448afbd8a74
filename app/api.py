"""REST API: thin FastAPI routes over RagService; user errors become 4xx with the same message."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from app.answer.models import Answer
from app.config import Settings, get_settings
from app.corpus import ArticleMeta
from app.errors import RagError
from app.service import RagService, SearchResult

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 2000


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"question": "من أين تأتي المسيرات التي تستخدمها روسيا؟"},
                     {"question": "Who signed the naval memorandum, and where?", "lang": "en", "top_k": 5}]})

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS, description="the question, Arabic or English")
    lang: Literal["ar", "en"] | None = Field(None, description="answer language; detected from the question if unset")
    top_k: int | None = Field(None, ge=1, le=50, description="how many chunks to retrieve (default 5)")


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS)
    top_k: int | None = Field(None, ge=1, le=50)


class ArticleSummary(BaseModel):
    id: str
    title: str
    source: str
    date: str | None
    chars: int


class ArticleDetail(ArticleSummary):
    meta: ArticleMeta
    text: str = Field(description="the raw article text; citation offsets index into it")
    body: list[tuple[int, int]] = Field(description="spans of `text` kept as body after boilerplate removal")


class ErrorBody(BaseModel):
    detail: str


def _summary(article) -> dict:
    return {"id": article.id, "title": article.title, "source": article.source_label, "date": article.meta.date,
            "chars": len(article.raw)}


def create_app(settings: Settings | None = None, service: RagService | None = None) -> FastAPI:
    """Build the app. With no `service`, one is created at start-up (building the index if missing)."""
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if getattr(app.state, "service", None) is None:
            app.state.service = await run_in_threadpool(RagService, settings, progress=True)
        yield

    app = FastAPI(
        title="Arabic news RAG",
        description="Questions over Arabic news articles, answered in Arabic or English with verifiable citations.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.service = service
    errors = {422: {"model": ErrorBody}}

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        length = request.headers.get("content-length")
        if length and (not length.isdigit() or int(length) > settings.max_body_bytes):
            return JSONResponse({"detail": f"request body over {settings.max_body_bytes} bytes"}, status_code=413)
        return await call_next(request)

    @app.exception_handler(RagError)
    async def rag_error(_: Request, exc: RagError):
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError):
        messages = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
            messages.append(f"{where}: {error.get('msg')}")
        return JSONResponse({"detail": "; ".join(messages), "errors": jsonable_encoder(exc.errors())},
                            status_code=422)

    def service_of(request: Request) -> RagService:
        return request.app.state.service

    @app.post("/ask", response_model=Answer, responses={**errors, 502: {"model": ErrorBody}, 504: {"model": ErrorBody}})
    async def ask(body: AskRequest, request: Request) -> Answer:
        """Answer a question from the articles, in its language (or `lang`), every sentence citing a passage."""
        return await run_in_threadpool(service_of(request).ask, body.question, body.lang, body.top_k)

    @app.post("/search", response_model=SearchResult, responses=errors)
    async def search(body: SearchRequest, request: Request) -> SearchResult:
        """Ranked chunks for a query (dense + BM25, fused), with both scores and ranks."""
        return await run_in_threadpool(service_of(request).search, body.query, body.top_k)

    @app.get("/articles", response_model=list[ArticleSummary])
    async def articles(request: Request) -> list[dict]:
        return [_summary(a) for a in service_of(request).corpus.articles.values()]

    @app.get("/articles/{article_id}", response_model=ArticleDetail, responses={404: {"model": ErrorBody}})
    async def article(article_id: str, request: Request) -> dict:
        found = service_of(request).article(article_id)
        return {**_summary(found), "meta": found.meta, "text": found.raw, "body": list(found.blocks)}

    @app.get("/health")
    async def health(request: Request) -> dict:
        return service_of(request).health()

    return app
