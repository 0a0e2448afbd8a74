"""Fuzzing the API from its OpenAPI schema with schemathesis (valid and invalid requests alike): no request may
get a 5xx. Runs against the ASGI app in-process on a tiny corpus, with the write key, so POST/DELETE /articles are
exercised past the key check, all the way through ingestion, the index update and its commit. The embedder is a
fast deterministic stand-in (what is fuzzed is the HTTP handling, not retrieval quality). Bounded by max_examples."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import numpy as np
import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis (dev extra) is not installed")
from _tiny import API_KEY, tiny_settings, write_corpus  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402
from hypothesis.configuration import set_hypothesis_home_dir  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from app.api import create_app  # noqa: E402
from app.service import RagService  # noqa: E402

pytestmark = pytest.mark.slow  # hundreds of generated requests

MAX_EXAMPLES = 30  # per operation

_root = Path(tempfile.mkdtemp(prefix="rag-fuzz-"))
set_hypothesis_home_dir(str(_root / ".hypothesis"))  # hypothesis's caches stay out of the repository


class HashEmbedder:
    """Unit vectors derived from each text's hash: instant, deterministic, same interface as the real ones."""

    name = "test/hash"
    dim = 384

    def _embed(self, texts):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            seed = int.from_bytes(hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:8], "little")
            out[i] = np.random.default_rng(seed).standard_normal(self.dim)
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def embed_queries(self, texts):
        return self._embed(list(texts))

    def embed_passages(self, texts, *, progress=False):
        return self._embed(list(texts))

_settings = tiny_settings(_root, api_key=API_KEY, lock_timeout=30)
write_corpus(_settings.corpus_dir)
_state: dict = {}


def _app():
    """The app, whose service is built on first use (collection stays fast and builds nothing)."""
    app = create_app(_settings, service=None)

    @app.middleware("http")
    async def lazy_service(request, call_next):
        if request.app.state.service is None:
            if "service" not in _state:
                _state["service"] = RagService(_settings, embedder=HashEmbedder())
            request.app.state.service = _state["service"]
        return await call_next(request)

    return app


schema = schemathesis.openapi.from_asgi("/openapi.json", _app())
schema.config.generation.update(max_examples=MAX_EXAMPLES)


@schema.parametrize()
@settings(deadline=None, database=None, suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_5xx(case):
    response = case.call(headers={"Authorization": f"Bearer {API_KEY}"})
    case.validate_response(response, checks=[not_a_server_error])
    assert response.status_code < 500, response.text
