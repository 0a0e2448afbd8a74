"""The corpus: list and read articles; add and remove them (with the API key)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response
from starlette.concurrency import run_in_threadpool

from app.api.deps import ArticleInDep, ServiceDep
from app.api.middleware import require_writer
from app.api.schemas import WRITE_ERRORS, ArticleChange, ArticleDetail, ArticleIn, ArticleSummary, ErrorBody

router = APIRouter()


@router.get("/articles", response_model=list[ArticleSummary])
async def articles(service: ServiceDep) -> list[ArticleSummary]:
    return [ArticleSummary.of(a) for a in service.corpus.articles.values()]


@router.get("/articles/{article_id}", response_model=ArticleDetail, responses={404: {"model": ErrorBody}})
async def article(article_id: str, service: ServiceDep) -> ArticleDetail:
    return ArticleDetail.of(service.article(article_id))


@router.post(
    "/articles", status_code=201, response_model=ArticleChange, dependencies=[Depends(require_writer)],
    responses={200: {"model": ArticleChange, "description": "the same text is already indexed: nothing changed"},
               **WRITE_ERRORS, 413: {"model": ErrorBody}, 415: {"model": ErrorBody}, 422: {"model": ErrorBody}},
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/json": {"schema": ArticleIn.model_json_schema()}}}},
)
async def add_article(body: ArticleInDep, service: ServiceDep, response: Response) -> ArticleChange:
    """Add one article (text, Markdown or HTML) to the corpus and the index, embedding only its new passages.
    Needs `Authorization: Bearer <RAG_API_KEY>`. The same text again is a no-op (200, `status: duplicate`)."""
    change = await run_in_threadpool(service.add_document, body.content, body.format, title=body.title,
                                     source=body.source, url=body.url, date=body.date, language=body.language)
    if change.status == "duplicate":
        response.status_code = 200
    return change


@router.delete("/articles/{article_id}", response_model=ArticleChange, dependencies=[Depends(require_writer)],
               responses={**WRITE_ERRORS, 404: {"model": ErrorBody},
                          409: {"model": ErrorBody, "description": "it is the last article"}})
async def remove_article(article_id: str, service: ServiceDep) -> ArticleChange:
    """Take an article out of the corpus folder and the index. Needs `Authorization: Bearer <RAG_API_KEY>`."""
    result = await run_in_threadpool(service.remove_article, article_id)
    return result.outcomes[0]
