"""Questions and search: POST /ask, POST /ask/stream and POST /search."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from app.api.deps import ServiceDep
from app.api.schemas import (
    ASK_STREAM_RESPONSES,
    INVALID,
    Answer,
    AskRequest,
    AskStreamRequest,
    ErrorBody,
    SearchRequest,
    SearchResult,
)
from app.api.streaming import answer_events

router = APIRouter()


@router.post("/ask", response_model=Answer,
             responses={**INVALID, 502: {"model": ErrorBody}, 504: {"model": ErrorBody}})
async def ask(body: AskRequest, service: ServiceDep) -> Answer:
    """Answer a question from the articles, in its language (or `lang`), every sentence citing a passage."""
    return await run_in_threadpool(service.ask, body.question, body.lang, body.top_k)


@router.post("/search", response_model=SearchResult, responses=INVALID)
async def search(body: SearchRequest, service: ServiceDep) -> SearchResult:
    """Ranked chunks for a query (dense + BM25, fused), with both scores and ranks."""
    return await run_in_threadpool(service.search, body.query, body.top_k)


@router.post("/ask/stream", response_class=StreamingResponse, responses=ASK_STREAM_RESPONSES)
async def ask_stream(body: AskStreamRequest, service: ServiceDep) -> StreamingResponse:
    """Like POST /ask, streamed as server-sent events, with optional `history` for follow-up questions."""
    return StreamingResponse(answer_events(service, body), media_type="text/event-stream",
                             headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
