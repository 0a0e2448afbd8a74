"""What stands before the routes: the request-body limit, CORS, and the API key of the write endpoints."""

from __future__ import annotations

import hmac
import logging
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.deps import SettingsDep
from app.api.handlers import openai_error, speaks_openai
from app.config import Settings

log = logging.getLogger(__name__)


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
        message, headers = f"request body over {limit} bytes", {"Connection": "close"}
        if speaks_openai(scope["path"]):
            response = openai_error(413, message, code="request_too_large", headers=headers)
        else:
            response = JSONResponse({"detail": message}, status_code=413, headers=headers)
        await response(scope, receive, send)


def add_middleware(app: FastAPI, settings: Settings) -> None:
    """The body limit (larger for POST /articles, and for chat completions, whose clients send the whole thread),
    then CORS when origins are configured."""
    app.add_middleware(BodyLimit, default=settings.max_body_bytes,
                       per_route={("POST", "/articles"): settings.max_upload_bytes,
                                  ("POST", "/v1/chat/completions"): settings.max_upload_bytes})
    origins = [origin.strip() for origin in settings.cors_origins.split(",") if origin.strip()]
    if origins:  # closed unless configured: no CORS headers, so browsers keep other origins out
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["GET", "POST", "DELETE"],
                           allow_headers=["Authorization", "Content-Type"], allow_credentials=False, max_age=600)
    if settings.api_key and len(settings.api_key) < 16:
        log.warning("RAG_API_KEY is shorter than 16 characters: use a long random key (e.g. openssl rand -hex 32)")


bearer = HTTPBearer(auto_error=False, description="the server's RAG_API_KEY; write endpoints only")


async def require_writer(settings: SettingsDep,
                         credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]) -> None:
    """Write endpoints: 403 when the server has no RAG_API_KEY, 401 unless the bearer token equals it."""
    key = settings.api_key
    if not key:
        raise HTTPException(403, "write endpoints are disabled on this server: set RAG_API_KEY to enable them "
                                 "and send the key as `Authorization: Bearer <key>`")
    supplied = credentials.credentials if credentials is not None else ""
    if not hmac.compare_digest(supplied.encode("utf-8"), key.encode("utf-8")):
        raise HTTPException(401, "missing or wrong API key: send `Authorization: Bearer <RAG_API_KEY>`",
                            headers={"WWW-Authenticate": "Bearer"})


def writes_status(settings: Settings) -> str:
    """What /health says about the write endpoints."""
    return "enabled" if settings.api_key else "disabled (set RAG_API_KEY to enable POST/DELETE /articles)"
