"""What routes depend on, as type aliases: the running service, the app's settings, the body of POST /articles."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from app.api.schemas import ArticleIn
from app.config import Settings
from app.service import RagService


def get_service(request: Request) -> RagService:
    """The service, brought up to date first with an update another process committed (a plain function: FastAPI
    runs it in the thread pool, so a reload never blocks the event loop)."""
    service: RagService = request.app.state.service
    service.refresh()
    return service


def get_app_settings(request: Request) -> Settings:
    """The settings the app was created with (its key, limits and CORS origins)."""
    return request.app.state.settings


async def article_in(request: Request) -> ArticleIn:
    """The body of POST /articles, read only after the key check so anonymous callers learn nothing about it."""
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise HTTPException(415, f"send the article as JSON (Content-Type: application/json), not {content_type}")
    try:
        return ArticleIn.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError(
            exc.errors(include_url=False, include_input=False, include_context=False)) from None


ServiceDep = Annotated[RagService, Depends(get_service)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
ArticleInDep = Annotated[ArticleIn, Depends(article_in)]
