"""REST API: thin FastAPI routes over RagService; user errors become 4xx with the same message."""

from __future__ import annotations

import asyncio
import json
import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Literal

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from app.answer.models import Answer
from app.config import Settings, get_settings
from app.corpus import ArticleMeta
from app.errors import RagError
from app.service import RagService, SearchResult

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 2000
MAX_HISTORY_TURNS = 20
MAX_HISTORY_ANSWER_CHARS = 8000
STATIC_DIR = Path(__file__).parent / "static"


class AskRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={
        "examples": [{"question": "من أين تأتي المسيرات التي تستخدمها روسيا؟"},
                     {"question": "Who signed the naval memorandum, and where?", "lang": "en", "top_k": 5}]})

    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS, description="the question, Arabic or English")
    lang: Literal["ar", "en"] | None = Field(None, description="answer language; detected from the question if unset")
    top_k: int | None = Field(None, ge=1, le=50, description="how many chunks to retrieve (default 5)")


class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: str = Field(max_length=MAX_QUESTION_CHARS, description="an earlier question of the thread")
    answer: str = Field("", max_length=MAX_HISTORY_ANSWER_CHARS, description="the answer it got (may be trimmed)")


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

    @app.post(
        "/ask/stream",
        response_class=StreamingResponse,
        responses={
            200: {
                "description": (
                    "A text/event-stream of server-sent events, each `event: NAME` plus one line of JSON `data`:\n"
                    "- `status` `{\"stage\": \"retrieving\" | \"answering\"}` as the work moves on;\n"
                    "- `token` `{\"text\": ...}` answer text, to append in order (the extractive answerer sends "
                    "the whole answer at once);\n"
                    "- `answer`: the final `Answer` (as POST /ask returns it, with citations), last;\n"
                    "- or `error` `{\"detail\": ..., \"status\": 502}` instead of `answer` when answering "
                    "fails (502/504: the model provider failed or timed out).\n"
                    "Invalid requests are answered before the stream starts, with a JSON 4xx like /ask."),
                "content": {"text/event-stream": {"schema": {"type": "string"}, "example": (
                    'event: status\ndata: {"stage": "retrieving"}\n\n'
                    'event: status\ndata: {"stage": "answering"}\n\n'
                    'event: token\ndata: {"text": "Here is what the sources say … [1]"}\n\n'
                    'event: answer\ndata: {"answer": "…", "language": "en", "citations": [...], ...}\n\n')}},
            },
            **errors,
        },
    )
    async def ask_stream(body: AskStreamRequest, request: Request) -> StreamingResponse:
        """Like POST /ask, streamed as server-sent events, with optional `history` for follow-up questions."""
        service = service_of(request)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, dict] | None] = asyncio.Queue()

        def on_stage(stage: str) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, ("status", {"stage": stage}))
            except RuntimeError:  # the loop is gone (shutting down): nobody is listening
                pass

        def work() -> Answer:
            return service.ask(body.question, body.lang, body.top_k, body.history, on_stage=on_stage)

        async def run() -> None:
            try:
                answer = await run_in_threadpool(work)
            except RagError as exc:
                await queue.put(("error", {"detail": exc.message, "status": exc.status}))
            except Exception:  # noqa: BLE001 - the stream has started: report, do not raise
                log.exception("/ask/stream failed")
                await queue.put(("error", {"detail": "internal error while answering", "status": 500}))
            else:
                await queue.put(("token", {"text": answer.answer}))
                await queue.put(("answer", jsonable_encoder(answer)))
            finally:
                await queue.put(None)

        async def events():
            task = asyncio.create_task(run())
            try:
                while (item := await queue.get()) is not None:
                    name, data = item
                    yield f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
            finally:
                if not task.done():
                    task.cancel()

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

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

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        """The chat page (static HTML/CSS/JS under app/static, no network at run time)."""
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
