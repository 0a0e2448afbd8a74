"""Exception handlers: a user's error becomes its 4xx with the same plain message."""

from __future__ import annotations

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app.errors import RagError


async def rag_error(_: Request, exc: RagError) -> JSONResponse:
    return JSONResponse({"detail": exc.message}, status_code=exc.status)


async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
    """422 whose `detail` names each bad field and what is wrong with it, in one line."""
    messages = []
    for error in exc.errors():
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        messages.append(f"{where}: {error.get('msg')}")
    return JSONResponse(_printable({"detail": "; ".join(messages), "errors": jsonable_encoder(exc.errors())}),
                        status_code=422)


def _printable(value):
    """`value` with every string made encodable: errors echo the client's input, which may hold lone surrogates."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_printable(k): _printable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_printable(v) for v in value]
    return value
