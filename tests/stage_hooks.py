"""Crash, pause or trace an update at its named stages (app.store.STAGES), in this process or in a `rag` subprocess.

In this process: `app.index.stage_hook = hook(pause_at=("build_renamed", 1.5))` (with monkeypatch.setattr).
In a subprocess, `python tests/stage_hooks.py ARGS` is `rag ARGS` with the hook read from the environment
(`_tiny.rag` starts it so when given any of these):
    RAG_TEST_CRASH_AT=<stage>            the process SIGKILLs itself when it reaches <stage>
    RAG_TEST_PAUSE_AT=<stage>=<seconds>  it sleeps there (to widen a window for concurrency tests)
    RAG_TEST_TRACE=<file>                it appends "<pid> <stage> <time>" for every stage it passes
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable


def hook(crash_at: str | None = None, pause_at: tuple[str, float] | None = None,
         trace: str | None = None) -> Callable[[str], None]:
    def at_stage(stage: str) -> None:
        if trace:
            with open(trace, "a", encoding="utf-8") as handle:
                handle.write(f"{os.getpid()} {stage} {time.time():.6f}\n")
        if pause_at and pause_at[0] == stage:
            time.sleep(pause_at[1])
        if crash_at == stage:
            os.kill(os.getpid(), signal.SIGKILL)

    return at_stage


def hook_from_environment() -> Callable[[str], None]:
    stage, _, seconds = os.environ.get("RAG_TEST_PAUSE_AT", "").partition("=")
    return hook(crash_at=os.environ.get("RAG_TEST_CRASH_AT"), pause_at=(stage, float(seconds or 1)) if stage else None,
                trace=os.environ.get("RAG_TEST_TRACE"))


if __name__ == "__main__":
    import app.index
    from app.cli import main

    app.index.stage_hook = hook_from_environment()
    main()
