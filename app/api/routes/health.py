"""The server itself: GET /health and the chat page at /."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from app.api.deps import ServiceDep, SettingsDep
from app.api.middleware import writes_status

STATIC_DIR = Path(__file__).resolve().parents[2] / "static"

router = APIRouter()


@router.get("/health")
async def health(service: ServiceDep, settings: SettingsDep) -> dict:
    """Status, counts, the live build, what start-up recovery did (`recovery`, null when nothing) and whether
    the write endpoints are enabled."""
    return {**service.health(), "writes": writes_status(settings)}


@router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    """The chat page (static HTML/CSS/JS under app/static, no network at run time)."""
    return FileResponse(STATIC_DIR / "index.html", headers={"Cache-Control": "no-cache"})
