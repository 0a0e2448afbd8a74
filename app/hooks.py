"""Test hooks for the update path: crash, pause or trace at named stages. Inert unless RAG_TEST_HOOKS=1.

The crash-safety tests run `rag add` / `rag remove` in a subprocess with
    RAG_TEST_HOOKS=1 RAG_TEST_CRASH_AT=<stage>      the process SIGKILLs itself when it reaches <stage>
    RAG_TEST_PAUSE_AT=<stage>=<seconds>             it sleeps there (to widen a window for concurrency tests)
    RAG_TEST_TRACE=<file>                           it appends "<pid> <stage> <time>" for every stage it passes
Without RAG_TEST_HOOKS=1 `checkpoint` returns at once, whatever else is set.
"""

from __future__ import annotations

import os
import signal
import time

# Every stage of an update, in order (app/store.py and app/index.py call checkpoint with these names).
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


def checkpoint(stage: str) -> None:
    if os.environ.get("RAG_TEST_HOOKS") != "1":
        return
    trace = os.environ.get("RAG_TEST_TRACE")
    if trace:
        with open(trace, "a", encoding="utf-8") as handle:
            handle.write(f"{os.getpid()} {stage} {time.time():.6f}\n")
    pause = os.environ.get("RAG_TEST_PAUSE_AT", "")
    if pause.partition("=")[0] == stage:
        time.sleep(float(pause.partition("=")[2] or 1))
    if os.environ.get("RAG_TEST_CRASH_AT") == stage:
        os.kill(os.getpid(), signal.SIGKILL)
