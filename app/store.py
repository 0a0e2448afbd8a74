"""Crash-safe corpus + index updates: one lock, one journal, one commit point.

An update (adding or removing articles) changes two things that must stay in step: the corpus folder
(RAG_CORPUS_DIR: raw .txt files + articles.json) and the index (RAG_INDEX_DIR/build-*, named by CURRENT).
`commit_update` makes the pair change atomically:

1. stage: the new articles' text goes to index/txn/files/, then index/txn/journal.json records the intent
   (base build, target build, ids to write and delete, their metadata), written by an atomic rename;
2. build: the new index is written to a .tmp- folder and renamed to build-<name> (not live yet);
3. commit: CURRENT is switched to build-<name> by one atomic rename. Before this point the corpus folder has not
   been touched; after it the update is decided;
4. apply: the staged files are copied into the corpus folder (each by temp file + rename), deleted articles'
   files removed, articles.json rewritten (temp file + rename);
5. retire: journal.json is renamed to done.json, index/txn/ and the old build are removed.

A process killed at any point leaves either no index/txn/ (nothing to do) or one that `recover` resolves on the
next start, under the same lock: if CURRENT names the journal's target the update is *finished* (step 4 is
redone; it is idempotent), otherwise it is *discarded* (the staged build and files are removed; the corpus folder
was never changed). Either way the index and the corpus folder agree again, holding the old or the new corpus.

`UpdateLock` (fcntl.flock on index/.lock plus an in-process lock) serialises updates across threads and processes.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import shutil
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from app.corpus import METADATA_FILE, read_metadata_json
from app.errors import RagError
from app.index import (
    Index,
    checkpoint,
    current_build_name,
    fsync_dir,
    new_build_name,
    remove_stale_builds,
    switch_pointer,
    write_build,
)

log = logging.getLogger(__name__)

LOCK_FILE = ".lock"
TXN_DIR = "txn"
JOURNAL = "journal.json"
DONE = "done.json"
RECOVERY_LOG = "recovery.log"  # one JSON line per recovery, newest last
RETIRED_PREFIX = ".txn-retired-"  # a finished update's txn/ on its way out

# Every stage of an update, in order: where `checkpoint` is called (here and in app/index.py), so that the crash tests
# can kill an update at each one.
STAGES = (
    "locked",  # the update lock is held, nothing written yet
    "txn_files",  # the new articles' text is being staged under index/txn/ (one file written)
    "journal_written",  # the journal (what the update will do) is on disk
    "build_partial",  # the new index build is half written in its .tmp- folder
    "build_staged",  # the new build is complete in its .tmp- folder
    "build_renamed",  # the new build folder is in place, CURRENT still names the old one
    "pointer_staged",  # the new CURRENT is written to a temp file, not yet renamed
    "committed",  # CURRENT names the new build: the update is committed
    "corpus_partial",  # the corpus folder is being updated (one file written)
    "corpus_synced",  # the corpus folder holds the new state, the journal is still there
    "done",  # the journal is retired; only stale builds remain to be removed
)

_process_locks: dict[str, threading.Lock] = {}
_process_locks_guard = threading.Lock()


class UpdateBusy(RagError):
    status = 503


class UpdateLock:
    """Exclusive lock on `index_dir/.lock`: held by whoever writes the index or the corpus folder. fcntl.flock
    serialises processes; a per-folder threading.Lock in front of it serialises threads of one process (so they
    queue instead of polling). Waits up to `timeout` seconds, then raises UpdateBusy (503)."""

    def __init__(self, index_dir: Path, timeout: float = 300.0):
        self.index_dir = Path(index_dir)
        self.timeout = timeout
        key = str(self.index_dir.resolve())
        with _process_locks_guard:
            self._thread_lock = _process_locks.setdefault(key, threading.Lock())
        self._fd: int | None = None

    def __enter__(self) -> UpdateLock:
        deadline = time.monotonic() + self.timeout
        if not self._thread_lock.acquire(timeout=self.timeout):
            raise UpdateBusy(f"another update is still running after {self.timeout:g} s; try again later")
        try:
            self.index_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.index_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        os.close(fd)
                        raise UpdateBusy(f"another process holds {self.index_dir / LOCK_FILE} (an update is "
                                         f"running) after {self.timeout:g} s; try again later") from None
                    time.sleep(0.05)
            self._fd = fd
        except BaseException:
            self._thread_lock.release()
            raise
        checkpoint("locked")
        return self

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
        self._thread_lock.release()


@dataclass(frozen=True)
class Recovery:
    """What the start-up recovery did with an interrupted update."""

    action: str  # "finished" (it had committed: the corpus folder was brought up to date) or "discarded"
    txn: str | None
    summary: str  # what the update was doing, e.g. "add 2 articles"
    detail: str
    at: str

    def as_dict(self) -> dict:
        return {"action": self.action, "txn": self.txn, "summary": self.summary, "detail": self.detail, "at": self.at}


@dataclass(frozen=True)
class Change:
    """One update: article texts to write (id -> raw) with their articles.json entries, and ids to delete."""

    write: dict[str, str]
    meta: dict[str, dict]
    delete: tuple[str, ...]
    summary: str


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def commit_update(index_dir: Path, corpus_dir: Path, index: Index, change: Change, *, base: str | None) -> str:
    """Stage, build, commit and apply one update (the caller holds UpdateLock). Returns the new build's name."""
    index_dir, corpus_dir = Path(index_dir), Path(corpus_dir)
    txn = index_dir / TXN_DIR
    if txn.exists():  # the caller recovers first; anything left here is garbage
        shutil.rmtree(txn)
    files = txn / "files"
    files.mkdir(parents=True)
    for i, (article_id, raw) in enumerate(change.write.items()):
        _write_atomic(files / f"{article_id}.txt", raw.encode("utf-8"))
        if i == 0:
            checkpoint("txn_files")
    target = new_build_name()
    journal = {"txn": uuid.uuid4().hex[:12], "summary": change.summary, "base": base, "target": target,
               "write": sorted(change.write), "meta": change.meta, "delete": list(change.delete),
               "corpus_dir": str(corpus_dir.resolve()), "created_at": _now()}
    fsync_dir(files)
    _write_atomic(txn / JOURNAL, json.dumps(journal, ensure_ascii=False, indent=1).encode("utf-8"))
    fsync_dir(txn)
    checkpoint("journal_written")

    write_build(index, index_dir, target)
    switch_pointer(index_dir, target)
    checkpoint("committed")
    log.info("update %s committed: %s (build %s)", journal["txn"], change.summary, target)

    _apply(journal, txn, corpus_dir)
    checkpoint("corpus_synced")
    _retire(txn, index_dir, keep=target)
    return target


def _apply(journal: dict, txn: Path, corpus_dir: Path) -> None:
    """Bring the corpus folder to the journal's new state. Idempotent: safe to redo after a crash."""
    corpus_dir.mkdir(parents=True, exist_ok=True)
    steps = 0
    for article_id in journal["write"]:
        data = (txn / "files" / f"{article_id}.txt").read_bytes()
        target = corpus_dir / f"{article_id}.txt"
        if not (target.exists() and target.read_bytes() == data):
            _write_atomic(target, data)
        steps += 1
        if steps == 1:
            checkpoint("corpus_partial")
    for article_id in journal["delete"]:
        (corpus_dir / f"{article_id}.txt").unlink(missing_ok=True)
        steps += 1
        if steps == 1:
            checkpoint("corpus_partial")
    metadata_path = corpus_dir / METADATA_FILE
    metadata = read_metadata_json(metadata_path)
    for article_id in journal["delete"]:
        metadata.pop(article_id, None)
    metadata.update(journal["meta"])
    _write_atomic(metadata_path, (json.dumps(metadata, ensure_ascii=False, indent=2) + "\n").encode("utf-8"))
    fsync_dir(corpus_dir)


def _retire(txn: Path, index_dir: Path, keep: str | None) -> None:
    """The update needs nothing more: mark it done, move index/txn/ out of the way in one rename, then delete it."""
    if (txn / JOURNAL).exists():
        os.replace(txn / JOURNAL, txn / DONE)
        fsync_dir(txn)
    checkpoint("done")
    retired = index_dir / f"{RETIRED_PREFIX}{uuid.uuid4().hex[:8]}"
    os.rename(txn, retired)  # a kill during the rmtree below leaves no half-deleted txn/ to misread
    fsync_dir(index_dir)
    shutil.rmtree(retired, ignore_errors=True)
    if keep is not None:
        remove_stale_builds(index_dir, keep=keep)


def recover(index_dir: Path, corpus_dir: Path) -> Recovery | None:
    """Resolve an update a killed process left half done (call with UpdateLock held, before reading the corpus
    folder or the index). Returns what was done, or None when there was nothing to do."""
    index_dir, corpus_dir = Path(index_dir), Path(corpus_dir)
    txn = index_dir / TXN_DIR
    current = current_build_name(index_dir)
    for path in index_dir.iterdir() if index_dir.is_dir() else ():
        if path.name.startswith(RETIRED_PREFIX):  # a finished update's leftovers: nothing to report
            shutil.rmtree(path, ignore_errors=True)
    if not txn.exists():
        # A plain rebuild interrupted before its commit leaves a .tmp- or build- folder; an update killed between
        # retiring its journal and removing the old build leaves that build.
        if current and any(p.name != current and p.name.startswith((".tmp-", "build-")) for p in index_dir.iterdir()):
            remove_stale_builds(index_dir, keep=current)
        return None
    journal = None
    if (txn / DONE).exists() and not (txn / JOURNAL).exists():
        try:
            journal_done = json.loads((txn / DONE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            journal_done = {}
    else:
        journal_done = {}
    if (txn / JOURNAL).exists():
        try:  # written by an atomic rename, so complete; a damaged one cannot have been committed either
            journal = json.loads((txn / JOURNAL).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            journal = None
    summary = (journal or journal_done).get("summary", "an update")
    txn_id = (journal or journal_done).get("txn")
    if journal and current == journal["target"] and (index_dir / journal["target"] / "manifest.json").exists():
        journal_corpus = Path(journal.get("corpus_dir") or corpus_dir)
        if journal_corpus.resolve() != corpus_dir.resolve():
            log.warning("the interrupted update was for corpus folder %s, RAG_CORPUS_DIR is now %s: finishing it there",
                        journal_corpus, corpus_dir)
        _apply(journal, txn, journal_corpus)
        action = "finished"
        detail = (f"the update had committed (CURRENT = {journal['target']}); the corpus folder was brought up to "
                  f"date with it")
    elif journal:
        if current != journal["target"]:
            shutil.rmtree(index_dir / journal["target"], ignore_errors=True)
        action = "discarded"
        detail = (f"the update had not committed (CURRENT = {current}); its staged build and files were removed, "
                  f"the corpus folder was never changed")
    elif (txn / DONE).exists():
        action = "finished"
        detail = "the update had completed; only its leftovers were removed"
    else:
        action = "discarded"
        detail = "the update was interrupted while staging, before anything was committed; its files were removed"
    shutil.rmtree(txn, ignore_errors=True)
    (index_dir / ".CURRENT.tmp").unlink(missing_ok=True)
    if current:
        remove_stale_builds(index_dir, keep=current)
    record = Recovery(action=action, txn=txn_id, summary=summary, detail=detail, at=_now())
    try:
        with open(index_dir / RECOVERY_LOG, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record.as_dict(), ensure_ascii=False) + "\n")
    except OSError:
        pass
    log.warning("recovery: %s an interrupted update (%s): %s", action, summary, detail)
    return record
