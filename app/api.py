"""REST API: thin FastAPI routes over RagService; user errors become 4xx with the same message."""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import json
import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Literal

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.answer.models import Answer
from app.config import Settings, get_settings
from app.corpus import ArticleMeta
from app.errors import RagError
from app.ingest import MAX_SOURCE_CHARS, MAX_TITLE_CHARS, MAX_URL_CHARS, prepare
from app.service import RagService, SearchResult, UpdateResult

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 2000
MAX_HISTORY_TURNS = 20
MAX_HISTORY_ANSWER_CHARS = 8000
STATIC_DIR = Path(__file__).parent / "static"


def _valid_unicode(value: str) -> str:
    """JSON may carry lone surrogates ("\\ud800"), which are not text: refuse them before anything uses them."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("not valid Unicode text (it holds lone surrogate code points)") from None
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


class ArticleDetail(ArticleSummary):
    meta: ArticleMeta
    text: str = Field(description="the raw article text; citation offsets index into it")
    body: list[tuple[int, int]] = Field(description="spans of `text` kept as body after boilerplate removal")


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


class ArticleChange(BaseModel):
    status: Literal["added", "duplicate", "removed"]
    id: str = Field(description="the article's id (for a duplicate: the article already holding this text)")
    title: str
    chars: int = Field(description="characters of stored text")
    message: str
    duplicate_of: str | None = None
    build: str | None = Field(None, description="the index build now live (null when nothing changed)")
    counts: dict | None = Field(None, description="articles, chunks and sentences now indexed")
    seconds: float


class BodyLimit:
    """413 for request bodies over the limit: at once when Content-Length says so, and for bodies sent without
    one (chunked) by reading at most limit + 1 bytes before the route sees anything."""

    def __init__(self, app: ASGIApp, default: int, per_route: dict[tuple[str, str], int]):
        self.app = app
        self.default = default
        self.per_route = per_route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.per_route.get((scope["method"], scope["path"].rstrip("/") or "/"), self.default)
        headers = dict(scope["headers"])
        length = headers.get(b"content-length")
        if length is not None:
            if not length.isdigit() or int(length) > limit:
                await self._reject(scope, receive, send, limit)
                return
            await self.app(scope, receive, send)  # the server holds the body to its Content-Length
            return
        body = bytearray()
        first: list[Message] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                first.append(message)
                break
            body += message.get("body", b"")
            if len(body) > limit:
                await self._reject(scope, receive, send, limit)
                return
            if not message.get("more_body", False):
                first.append({"type": "http.request", "body": bytes(body), "more_body": False})
                break

        async def replay() -> Message:
            return first.pop(0) if first else await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _reject(scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        response = JSONResponse({"detail": f"request body over {limit} bytes"}, status_code=413,
                                headers={"Connection": "close"})
        await response(scope, receive, send)


def _printable(value):
    """`value` with every string made encodable: errors echo the client's input, which may hold lone surrogates."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_printable(k): _printable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_printable(v) for v in value]
    return value


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

    app.add_middleware(BodyLimit, default=settings.max_body_bytes,
                       per_route={("POST", "/articles"): settings.max_upload_bytes})
    origins = [origin.strip() for origin in settings.cors_origins.split(",") if origin.strip()]
    if origins:  # closed unless configured: no CORS headers, so browsers keep other origins out
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"], allow_credentials=False, max_age=600)
    if settings.api_key and len(settings.api_key) < 16:
        log.warning("RAG_API_KEY is shorter than 16 characters: use a long random key (e.g. openssl rand -hex 32)")

    bearer = HTTPBearer(auto_error=False, description="the server's RAG_API_KEY; write endpoints only")

    async def require_writer(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> None:
        """Write endpoints: 403 when the server has no RAG_API_KEY, 401 unless the bearer token equals it."""
        key = settings.api_key
        if not key:
            raise HTTPException(403, "write endpoints are disabled on this server: set RAG_API_KEY to enable them "
                                     "and send the key as `Authorization: Bearer <key>`")
        supplied = credentials.credentials if credentials is not None else ""
        if not hmac.compare_digest(supplied.encode("utf-8"), key.encode("utf-8")):
            raise HTTPException(401, "missing or wrong API key: send `Authorization: Bearer <RAG_API_KEY>`",
                                headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(RagError)
    async def rag_error(_: Request, exc: RagError):
        return JSONResponse({"detail": exc.message}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError):
        messages = []
        for error in exc.errors():
            where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
            messages.append(f"{where}: {error.get('msg')}")
        return JSONResponse(_printable({"detail": "; ".join(messages), "errors": jsonable_encoder(exc.errors())}),
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
            **errors,
        },
    )
    async def ask_stream(body: AskStreamRequest, request: Request) -> StreamingResponse:
        """Like POST /ask, streamed as server-sent events, with optional `history` for follow-up questions."""
        service = service_of(request)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, dict] | None] = asyncio.Queue()

        streamed = False

        def send(name: str, data: dict) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, (name, data))
            except RuntimeError:  # the loop is gone (shutting down): nobody is listening
                pass

        def on_token(text: str) -> None:
            nonlocal streamed
            streamed = True
            send("token", {"text": text})

        def work() -> Answer:
            return service.ask(body.question, body.lang, body.top_k, body.history,
                               on_stage=lambda stage: send("status", {"stage": stage}), on_token=on_token)

        async def run() -> None:
            try:
                answer = await run_in_threadpool(work)
            except RagError as exc:
                await queue.put(("error", {"detail": exc.message, "status": exc.status}))
            except Exception:  # noqa: BLE001 - the stream has started: report, do not raise
                log.exception("/ask/stream failed")
                await queue.put(("error", {"detail": "internal error while answering", "status": 500}))
            else:
                if not streamed:  # the extractive answer (or a model that did not stream) comes whole
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

    write_errors = {401: {"model": ErrorBody, "description": "missing or wrong API key"},
                    403: {"model": ErrorBody, "description": "writes are disabled: RAG_API_KEY is not set"},
                    503: {"model": ErrorBody, "description": "another update held the lock too long"}}

    @app.post(
        "/articles", status_code=201, response_model=ArticleChange, dependencies=[Depends(require_writer)],
        responses={200: {"model": ArticleChange, "description": "the same text is already indexed: nothing changed"},
                   **write_errors, 413: {"model": ErrorBody}, 415: {"model": ErrorBody}, 422: {"model": ErrorBody}},
        openapi_extra={"requestBody": {"required": True, "content": {
            "application/json": {"schema": ArticleIn.model_json_schema()}}}},
    )
    async def add_article(request: Request, response: Response) -> ArticleChange:
        """Add one article (text, Markdown or HTML) to the corpus and the index, embedding only its new passages.
        Needs `Authorization: Bearer <RAG_API_KEY>`. The same text again is a no-op (200, `status: duplicate`)."""
        content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        if content_type != "application/json" and not content_type.endswith("+json"):
            raise HTTPException(415, f"send the article as JSON (Content-Type: application/json), not {content_type}")
        try:  # parsed here, after the key check, so anonymous callers learn nothing about the body
            body = ArticleIn.model_validate_json(await request.body())
        except ValidationError as exc:
            raise RequestValidationError(exc.errors(include_url=False, include_input=False, include_context=False))
        new = await run_in_threadpool(prepare, body.content, body.format, settings, title=body.title,
                                      source=body.source, url=body.url, date=body.date, language=body.language)
        result: UpdateResult = await run_in_threadpool(service_of(request).add_articles, [new])
        outcome = result.outcomes[0]
        if outcome.status == "duplicate":
            response.status_code = 200
        return ArticleChange(status=outcome.status, id=outcome.id, title=outcome.title, chars=outcome.chars,
                             message=outcome.message, duplicate_of=outcome.duplicate_of, build=result.build,
                             counts=result.counts, seconds=result.seconds)

    @app.delete("/articles/{article_id}", response_model=ArticleChange, dependencies=[Depends(require_writer)],
                responses={**write_errors, 404: {"model": ErrorBody},
                           409: {"model": ErrorBody, "description": "it is the last article"}})
    async def remove_article(article_id: str, request: Request) -> ArticleChange:
        """Take an article out of the corpus folder and the index. Needs `Authorization: Bearer <RAG_API_KEY>`."""
        result: UpdateResult = await run_in_threadpool(service_of(request).remove_article, article_id)
        outcome = result.outcomes[0]
        return ArticleChange(status="removed", id=outcome.id, title=outcome.title, chars=outcome.chars,
                             message=outcome.message, build=result.build, counts=result.counts,
                             seconds=result.seconds)

    @app.get("/health")
    async def health(request: Request) -> dict:
        """Status, counts, the live build, what start-up recovery did (`recovery`, null when nothing) and whether
        the write endpoints are enabled."""
        writes = "enabled" if settings.api_key else "disabled (set RAG_API_KEY to enable POST/DELETE /articles)"
        return {**service_of(request).health(), "writes": writes}

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        """The chat page (static HTML/CSS/JS under app/static, no network at run time)."""
        return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
