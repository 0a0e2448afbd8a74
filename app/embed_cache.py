"""Resumable passage embedding: vectors are checkpointed in shards, so an interrupted build continues where it stopped.

Embedding is what a large build spends its time on (bench/README.md: days for 10^6 chunks on this machine's two
cores), so it must survive a kill. `embed_passages` embeds the texts a build needs in shards of
SHARD_SIZE passages and writes each shard to a folder before it embeds the next one. The next build
finds the folder, takes the vectors it holds and embeds only the rest.

A shard folder is also the hand-over format for vectors computed elsewhere (`rag index --vectors-from DIR`):

    DIR/meta.json        {"embedder": {...}, "name": "...", "dim": 384, "spans": "late"}: who made the vectors
                         and how (`vectors_identity`)
    DIR/shard-*.npz      keys: sha256 hex of each passage text (utf-8), '<U64'; vectors: float32, one row a key

A vector depends only on the passage text and the embedder, so shards are keyed by text hash, not by position:
any process that runs the same embedder over any subset of the texts (`rag passages` lists them) can write one.
Some texts carry app.embeddings' `query_view` mark (a sentence to embed in question form) or `span_view` mark (a
clause read inside its sentence): they are listed, hashed and handed to `embed_passages` with the mark, and the
embedder reads it. A text is listed just before its spans, and batches keep them together (`group_slices`), so the
engine runs over the text once for both.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import uuid
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.config import Settings
from app.embeddings import Embedder, embedder_identity, group_slices
from app.errors import VectorsMismatch
from app.progress import progress_bar

log = logging.getLogger(__name__)

CACHE_PREFIX = ".embed-cache-"  # the work folder of a build under index_dir, followed by the embedder's fingerprint
META_FILE = "meta.json"
SHARD_PATTERN = "shard-*.npz"
# At ~3-35 passages/s, a killed build loses at most a few minutes of embedding.
SHARD_SIZE = 1024
PROGRESS_STEP = 32  # passages between two progress updates: seconds of embedding, where a shard can take minutes


def text_key(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def vectors_identity(settings: Settings, embedder: Embedder) -> dict:
    """What must match for stored vectors to be used: the configured embedder, the loaded model's name, dimension,
    and how it embeds a `span_view` (pooled from its text's pass or alone: different vectors)."""
    return {"embedder": embedder_identity(settings), "name": embedder.name, "dim": int(embedder.dim),
            "spans": getattr(embedder, "spans", "alone")}


@dataclass
class VectorShards:
    """A folder of vector shards (format in the module docstring) made by the embedder `identity` names."""

    folder: Path
    identity: dict

    @classmethod
    def work_folder(cls, index_dir: Path, identity: dict) -> VectorShards:
        """The resumable cache of builds under `index_dir` with this embedder (one folder per embedder)."""
        fingerprint = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
        return cls(Path(index_dir) / f"{CACHE_PREFIX}{fingerprint}", identity)

    def check(self) -> None:
        """Raise VectorsMismatch unless the folder's meta.json names this embedder."""
        try:
            stored = json.loads((self.folder / META_FILE).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise VectorsMismatch(f"{self.folder} has no readable {META_FILE} ({exc}); it must name the embedder "
                                  f"that made the vectors: {json.dumps(self.identity)}") from exc
        if stored != self.identity:
            raise VectorsMismatch(f"vectors in {self.folder} were made by {json.dumps(stored)}, this index uses "
                                  f"{json.dumps(self.identity)}")

    def shards(self) -> list[Path]:
        return sorted(self.folder.glob(SHARD_PATTERN)) if self.folder.is_dir() else []

    def keys(self) -> set[str]:
        """The keys of every readable shard: the texts whose vectors the folder holds."""
        found: set[str] = set()
        for path in self.shards():
            try:
                with np.load(path, allow_pickle=False) as shard:
                    found.update(shard["keys"].tolist())
            except (OSError, ValueError, KeyError, zipfile.BadZipFile):
                continue
        return found

    def fill(self, rows: dict[str, int], out: np.ndarray) -> set[str]:
        """Copy the stored vector of each key of `rows` into `out[rows[key]]`; the keys found. One shard is in memory
        at a time. An unreadable shard (a write cut short by a crash cannot leave one, a disk error can) is skipped."""
        found: set[str] = set()
        for path in self.shards():
            try:
                with np.load(path, allow_pickle=False) as shard:
                    keys, vectors = shard["keys"], shard["vectors"]
            except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
                log.warning("skipping unreadable vector shard %s: %s", path, exc)
                continue
            if vectors.ndim != 2 or vectors.shape[1] != out.shape[1] or len(keys) != len(vectors):
                log.warning("skipping vector shard %s: shape %s does not fit %d keys x %d", path, vectors.shape,
                            len(keys), out.shape[1])
                continue
            hits = [(rows[key], k) for k, key in enumerate(keys.tolist()) if key in rows and key not in found]
            if hits:
                targets, sources = zip(*hits)
                out[list(targets)] = vectors[list(sources)]
                found.update(str(keys[k]) for k in sources)
        return found

    def write(self, keys: Sequence[str], vectors: np.ndarray) -> Path:
        """Add one shard: written under a temporary name, then renamed, so a shard on disk is always whole."""
        self.folder.mkdir(parents=True, exist_ok=True)
        meta = self.folder / META_FILE
        if not meta.exists():
            tmp_meta = self.folder / f".{META_FILE}.tmp"
            tmp_meta.write_text(json.dumps(self.identity, indent=2), encoding="utf-8")
            os.replace(tmp_meta, meta)
        name = f"shard-{uuid.uuid4().hex[:16]}.npz"
        tmp = self.folder / f".tmp-{name}"
        with open(tmp, "wb") as handle:
            np.savez(handle, keys=np.asarray(list(keys), dtype="<U64"),
                     vectors=np.ascontiguousarray(vectors, dtype=np.float32))
        os.replace(tmp, self.folder / name)
        return self.folder / name

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


@dataclass
class Embedded:
    """Vectors for a build's passages, and how many came from shards (an interrupted build's or supplied ones)."""

    vectors: np.ndarray
    resumed: int


def embed_passages(texts: Sequence[str], embedder: Embedder, *, shard_size: int | None = None,
                   work: VectorShards | None = None, sources: Iterable[VectorShards] = (),
                   progress: bool = False) -> Embedded:
    """Embed distinct `texts`, taking the vectors `work` and `sources` already hold and checkpointing the rest to
    `work` every `shard_size` (default SHARD_SIZE) passages. The result is the same, row for row, as embedding them
    all at once."""
    shard_size = shard_size or SHARD_SIZE
    out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
    keys = [text_key(text) for text in texts]
    rows = dict(zip(keys, range(len(texts))))
    found: set[str] = set()
    for shards in ([work] if work is not None else []) + list(sources):
        missing = {key: row for key, row in rows.items() if key not in found}
        if missing:
            found |= shards.fill(missing, out)
    if found:
        log.info("resuming: %d/%d passages already embedded", len(found), len(texts))
    todo = [row for row, key in enumerate(keys) if key not in found]
    todo_texts = [texts[row] for row in todo]
    bar = progress_bar(len(texts), "embedding (resumed)" if found else "embedding", enabled=progress,
                       initial=len(found))
    for part in group_slices(todo_texts, shard_size):
        shard = todo[part]
        for step in group_slices(todo_texts[part], PROGRESS_STEP):  # a vector depends on its text only, not its batch
            rows = shard[step]
            out[rows] = embedder.embed_passages(todo_texts[part][step])
            bar.update(len(rows))
        if work is not None:
            work.write([keys[row] for row in shard], out[shard])
    bar.close()
    return Embedded(out, len(found))
