"""The FastAPI app: settings, middleware, exception handlers and the routers, wired together."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from app.api.handlers import http_error, rag_error, validation_error
from app.api.mcp_server import MCP_PATH, MCPEndpoint, build_server
from app.api.middleware import add_middleware
from app.api.routes import articles, ask, health, openai
from app.config import Settings, get_settings
from app.errors import RagError
from app.service import RagService


@asynccontextmanager
async def lifespan(app: FastAPI):
    if getattr(app.state, "service", None) is None:
        app.state.service = await run_in_threadpool(RagService, app.state.settings, progress=True)
    async with app.state.mcp.running():  # serves /mcp while the app runs
        yield


def create_app(settings: Settings | None = None, service: RagService | None = None) -> FastAPI:
    """Build the app. With no `service`, one is created at start-up (building the index if missing)."""
    app = FastAPI(
        title="Arabic news RAG",
        description="Questions over Arabic news articles, answered in Arabic or English with verifiable citations.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings or get_settings()
    app.state.service = service
    add_middleware(app, app.state.settings)
    app.add_exception_handler(RagError, rag_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    for router in (ask.router, articles.router, health.router, openai.router):
        app.include_router(router)
    app.mount("/static", StaticFiles(directory=health.STATIC_DIR), name="static")
    app.state.mcp = MCPEndpoint(build_server(lambda: app.state.service), app.state.settings.host)
    app.router.add_route(MCP_PATH, app.state.mcp, include_in_schema=False)
    return app
