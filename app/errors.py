"""Typed errors a user can cause; the API maps each to its HTTP status with the same message."""

from __future__ import annotations


class RagError(Exception):
    """Base class: `status` is the HTTP status the API answers with."""

    status = 400

    def __init__(self, message: str, *, status: int | None = None):
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class CorpusError(RagError):
    """The corpus folder or an article is missing or unreadable."""

    status = 400


class IndexUnavailable(RagError):
    """The index is missing, broken or cannot be built."""

    status = 503


class VectorsMismatch(RagError):
    """Vectors supplied for a build (`rag index --vectors-from`) were made by another embedder than the index uses."""

    status = 400


class LLMError(RagError):
    """The generative model's provider failed (502) or timed out (504)."""

    status = 502


class LLMTimeout(LLMError):
    status = 504


class InvalidRequest(RagError):
    """A request the API cannot take as sent. `param` names the field at fault and `code` says what is wrong with
    it, for clients that branch on them (the OpenAI-compatible endpoint's error bodies carry both)."""

    status = 400

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None, status: int | None = None):
        super().__init__(message, status=status)
        self.param = param
        self.code = code
