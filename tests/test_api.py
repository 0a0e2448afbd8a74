"""The REST API: answers and searches, and a clear 4xx for everything a client can get wrong."""

import copy

import pytest
from fastapi.testclient import TestClient

from app.answer.llm import LLMAnswerer
from app.api import create_app


@pytest.fixture(scope="module")
def client(service, seed_settings):
    with TestClient(create_app(seed_settings, service=service), raise_server_exceptions=False) as c:
        yield c


def test_ask_arabic(client):
    r = client.post("/ask", json={"question": "ماذا قال المتحدث باسم الكرملين لشبكة سي إن بي سي؟"})
    assert r.status_code == 200
    body = r.json()
    assert body["language"] == "ar" and body["mode"] == "extractive" and not body["abstained"]
    assert body["citations"][0]["article_id"] == "003_80e451bcdcbcdac5"
    assert {"n", "article_id", "title", "source", "chunk_id", "start", "end", "quote", "support",
            "supported"} <= set(body["citations"][0])
    assert body["hits"][0]["rank"] == 1 and "total_ms" in body["timings_ms"]


def test_ask_with_lang_and_top_k(client):
    r = client.post("/ask", json={"question": "Where did the Russian warships dock?", "lang": "ar", "top_k": 3})
    assert r.status_code == 200
    assert r.json()["language"] == "ar" and len(r.json()["hits"]) == 3


def test_search(client):
    r = client.post("/search", json={"query": "غازبروم", "top_k": 2})
    assert r.status_code == 200
    hits = r.json()["hits"]
    assert len(hits) == 2 and hits[0]["article_id"] == "000_362a69a8ed804e80"
    assert hits[0]["bm25_rank"] == 1


@pytest.mark.parametrize(
    "path, body, fragment",
    [
        ("/ask", {}, "question: Field required"),
        ("/ask", {"question": ""}, "at least 1 character"),
        ("/ask", {"question": "x" * 2001}, "at most 2000 characters"),
        ("/ask", {"question": 42}, "valid string"),
        ("/ask", {"question": "ok?", "top_k": 0}, "top_k"),
        ("/ask", {"question": "ok?", "top_k": 51}, "top_k"),
        ("/ask", {"question": "ok?", "top_k": "five"}, "top_k"),
        ("/ask", {"question": "ok?", "lang": "fr"}, "lang"),
        ("/ask", {"question": "ok?", "unknown": 1}, "Extra inputs"),
        ("/ask", ["question"], "valid dictionary"),
        ("/search", {"query": "   "}, "non-empty"),
        ("/search", {"query": None}, "valid string"),
    ],
)
def test_bad_input_gets_a_clear_422(client, path, body, fragment):
    r = client.post(path, json=body)
    assert r.status_code == 422
    assert fragment in r.json()["detail"]


def test_malformed_json_and_wrong_content_are_4xx(client):
    assert client.post("/ask", content=b"{not json", headers={"content-type": "application/json"}).status_code == 422
    assert client.post("/ask", content=b"\xff\xfe", headers={"content-type": "application/json"}).status_code == 422
    assert client.post("/ask", content=b"question=hi").status_code == 422


def test_huge_body_is_413(client):
    r = client.post("/ask", json={"question": "x" * 200_000})
    assert r.status_code == 413 and "request body over" in r.json()["detail"]


def test_articles_and_unknown_id(client, raw_articles):
    listing = client.get("/articles").json()
    assert len(listing) == 5 and {"id", "title", "source", "date", "chars"} <= set(listing[0])
    one = client.get("/articles/001_e678962533ece1ec").json()
    assert one["text"] == raw_articles["001_e678962533ece1ec"]
    assert one["meta"]["original_en"] == "Al-Monitor"
    missing = client.get("/articles/does-not-exist")
    assert missing.status_code == 404 and "unknown article id" in missing.json()["detail"]


def test_health_and_openapi(client):
    health = client.get("/health").json()
    assert health["status"] == "ok" and health["counts"]["articles"] == 5 and health["mode"] == "extractive"
    from app import native

    assert health["embed_engine"] in {"fast", "bundled"}
    assert (health["embed_engine"] == "fast") == (native.built_path() is not None)
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/ask", "/search", "/articles", "/articles/{article_id}", "/health"} <= set(paths)
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize("mock, status", [({"mock_response": Exception("boom")}, 502),
                                          ({"mock_response": "late", "mock_timeout": True}, 504)])
def test_provider_failures_are_502_and_504_not_500(service, seed_settings, mock, status):
    llm = copy.copy(service)
    settings = seed_settings.model_copy(update={"llm_model": "openai/gpt-4o-mini", "llm_timeout": 1})
    llm.answerer = LLMAnswerer(service.index, service.corpus, service.embedder, settings, **mock)
    with TestClient(create_app(settings, service=llm), raise_server_exceptions=False) as c:
        r = c.post("/ask", json={"question": "What did Peskov say?"})
    assert r.status_code == status
    assert "language model" in r.json()["detail"]
