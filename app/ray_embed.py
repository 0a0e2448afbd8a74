"""Distributed embedding with Ray Data (`rag index --ray`): the passages a build needs, embedded by a pool of Ray
actors (one embedder loaded in each), written by the driver into the build's resumable vector shards as batches
come back. The ordinary build then finds every vector there (app/embed_cache.py), whatever store it writes to, so
Ray only ever makes vectors keyed by text.

With `RAG_RAY_ADDRESS` (`--ray-address`) unset it starts a local Ray on this machine; set, it joins that cluster
(`ray://head:10001` or `auto`). Workers need this package and the same embedder (the build checks what they report); they need no
shared disk, since vectors travel back through Ray. A run killed half way resumes: the texts whose vectors a shard
already holds are not sent again. Needs the optional extra: pip install '.[ray]'.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass

import numpy as np

from app.config import Settings
from app.corpus import Corpus
from app.embed_cache import VectorShards, text_key, vectors_identity
from app.embeddings import Embedder, group_slices, make_backend
from app.errors import RagError
from app.index import compatible, passage_texts, read_manifest

log = logging.getLogger(__name__)

BATCH_ROWS = 64  # rows (a sentence with its clauses, or a question form) an actor embeds per call: one shard each
LOCAL_CPUS = 2  # cores a local Ray is started with when RAG_RAY_ADDRESS is unset


@dataclass
class RayRun:
    """What `embed_with_ray` did: passages sent to the workers, found in shards already, and its times (s)."""

    passages: int
    resumed: int
    workers: int
    start_seconds: float
    embed_seconds: float


class _Embed:
    """A Ray actor: one embedder, loaded once, on one core."""

    def __init__(self, settings: dict):
        self.embedder = make_backend(Settings(**settings))
        self.identity = json.dumps(vectors_identity(Settings(**settings), self.embedder), sort_keys=True)

    def __call__(self, batch: dict) -> dict:
        if hasattr(self.embedder, "set_threads"):
            self.embedder.set_threads(1)  # one actor per core: OpenMP's pool would otherwise fight the others
        texts = [text for group in batch["texts"] for text in group]
        return {"key": np.array([text_key(text) for text in texts]), "vector": self.embedder.embed_passages(texts),
                "identity": np.array([self.identity] * len(texts))}


def texts_to_embed(settings: Settings, corpus: Corpus, embedder: Embedder) -> list[str]:
    """The passages a build of `corpus` will embed: those of every article the stored index does not already hold
    unchanged (with the same embedder and chunking)."""
    stored = read_manifest(settings.index_dir)
    kept: set[str] = set()
    if stored and compatible(stored, settings) is None and stored.get("spans") == getattr(embedder, "spans", "alone"):
        shas = stored.get("articles", {})
        kept = {article_id for article_id, article in corpus.articles.items() if shas.get(article_id) == article.sha256}
    return passage_texts([a for article_id, a in corpus.articles.items() if article_id not in kept], settings)


def embed_with_ray(settings: Settings, corpus: Corpus, embedder: Embedder, *, address: str | None = None,
                   workers: int | None = None) -> RayRun:
    """Embed what a build of `corpus` needs on Ray (the cluster at `address`, None: a local Ray; `workers` actors,
    default one per core Ray offers) into the work folder the ordinary build resumes from. `embedder` is the
    driver's: its identity is the one the vectors must have."""
    try:
        import ray
    except ImportError as exc:
        raise RagError("rag index --ray needs the optional extra: pip install '.[ray]'") from exc
    identity = vectors_identity(settings, embedder)
    work = VectorShards.work_folder(settings.index_dir, identity)
    texts = texts_to_embed(settings, corpus, embedder)
    done = work.keys()
    todo = [text for text in texts if text_key(text) not in done]
    resumed = len(texts) - len(todo)
    if not todo:
        return RayRun(0, resumed, 0, 0.0, 0.0)
    # Rows keep a sentence with its clauses, so an actor pools the clauses from the sentence's one pass.
    rows = [{"texts": todo[part]} for part in group_slices(todo, 1)]

    started = time.perf_counter()
    local = not address
    if not ray.is_initialized():
        if local:
            ray.init(num_cpus=max(LOCAL_CPUS, workers or 0), include_dashboard=False, log_to_driver=False,
                     logging_level=logging.WARNING)
        else:
            ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING)
    workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    start_seconds = time.perf_counter() - started
    log.info("Ray ready in %.1f s: embedding %d passages (%d resumed) on %d workers", start_seconds, len(todo),
             resumed, workers)

    started = time.perf_counter()
    expected = json.dumps(identity, sort_keys=True)
    vectors = ray.data.from_items(rows).map_batches(
        _Embed, fn_constructor_kwargs={"settings": settings.model_dump(mode="json")}, batch_size=BATCH_ROWS,
        concurrency=workers, num_cpus=1, batch_format="numpy")
    try:
        for batch in vectors.iter_batches(batch_size=None, batch_format="numpy"):
            found = set(batch["identity"].tolist())
            if found != {expected}:
                raise RagError(f"Ray workers embed with {sorted(found)}, this build with {expected}: install the same "
                               "package and embedder on every worker (a C compiler for app/native's engine)")
            work.write(batch["key"].tolist(), np.asarray(batch["vector"], dtype=np.float32))
    finally:
        if local:
            ray.shutdown()
    return RayRun(len(todo), resumed, workers, start_seconds, time.perf_counter() - started)
