"""Exception handlers: a user's error becomes its 4xx with the same plain message — under /v1 in OpenAI's shape."""

from __future__ import annotations

from fastapi import Request
from fastapi.encoders import jsonable_encoder
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from app.errors import RagError

# Pydantic's error types as the `code` of an OpenAI error body (what OpenAI's own API calls them).
_OPENAI_CODES = {"missing": "missing_required_parameter", "string_too_long": "string_above_max_length",
                 "too_long": "array_above_max_length", "too_short": "empty_array", "string_too_short": "empty_string",
                 "json_invalid": "invalid_json", "extra_forbidden": "unknown_parameter"}


def speaks_openai(path: str) -> bool:
    """Whether `path` belongs to the OpenAI-compatible endpoint, whose clients expect OpenAI's error bodies."""
    return path == "/v1" or path.startswith("/v1/")


def openai_error_body(status: int, message: str, *, param: str | None = None, code: str | None = None) -> dict:
    """OpenAI's error body, {"error": {"message", "type", "param", "code"}}: OpenAI's SDKs raise their typed errors
    (BadRequestError, NotFoundError…) from the status and show the message (in a stream: APIError)."""
    kind = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}.get(
        status, "server_error" if status >= 500 else "invalid_request_error")
    return _printable({"error": {"message": message, "type": kind, "param": param, "code": code}})


def openai_error(status: int, message: str, *, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(openai_error_body(status, message, param=param, code=code), status_code=status,
                        headers=headers)


async def rag_error(request: Request, exc: RagError) -> JSONResponse:
    if speaks_openai(request.url.path):
        return openai_error(exc.status, exc.message, param=getattr(exc, "param", None), code=getattr(exc, "code", None))
    return JSONResponse({"detail": exc.message}, status_code=exc.status)


async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 whose `detail` names each bad field and what is wrong with it, in one line (under /v1: OpenAI's 400, with
    the first bad field as `param`)."""
    errors = exc.errors()
    if speaks_openai(request.url.path):
        message = "; ".join(f"{_param(e.get('loc', ())) or 'body'}: {e.get('msg')}" for e in errors)
        first = errors[0] if errors else {}
        return openai_error(400, message, param=_param(first.get("loc", ())) or None,
                            code=_OPENAI_CODES.get(first.get("type", ""), "invalid_value"))
    messages = []
    for error in errors:
        where = ".".join(str(p) for p in error.get("loc", ()) if p != "body") or "body"
        messages.append(f"{where}: {error.get('msg')}")
    return JSONResponse(_printable({"detail": "; ".join(messages), "errors": jsonable_encoder(exc.errors())}),
                        status_code=422)


async def http_error(request: Request, exc: HTTPException):
    """Starlette's own errors (404 for an unknown path, 405 for a wrong method): OpenAI's shape under /v1."""
    if speaks_openai(request.url.path):
        return openai_error(exc.status_code, str(exc.detail), headers=exc.headers)
    return await http_exception_handler(request, exc)


def _param(loc) -> str:
    """A validation error's location as OpenAI writes a parameter: messages[0].content (the body itself left out)."""
    where = ""
    for part in loc:
        if part == "body" or (isinstance(part, int) and not where):  # (an int first: a JSON syntax error's offset)
            continue
        where += f"[{part}]" if isinstance(part, int) else f".{part}" if where else str(part)
    return where


def _printable(value):
    """`value` with every string made encodable: errors echo the client's input, which may hold lone surrogates."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_printable(k): _printable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_printable(v) for v in value]
    return value
