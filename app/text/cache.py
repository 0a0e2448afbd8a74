"""Data that takes seconds to derive from installed files, kept on disk after the first time (per user, per machine)."""

from __future__ import annotations

import logging
import os
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "arabic-news-rag"


def kept(key: str, build: Callable[[], T], kind: type) -> T:
    """`build()`'s result, read from `cache_dir()/key.pickle` when a copy of `kind` is there; otherwise built and
    the copy written (a failure to write is logged, and the result is built again next time). The key must change
    whenever what `build` reads or how it reads it does."""
    path = cache_dir() / f"{key}.pickle"
    try:
        with open(path, "rb") as stored:
            value = pickle.load(stored)
        if isinstance(value, kind):
            return value
    except (OSError, EOFError, pickle.UnpicklingError, AttributeError, ImportError):
        pass
    value = build()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_bytes(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))
        partial.replace(path)
    except OSError as exc:
        log.info("cannot keep %s (%s): it is derived again next time", path, exc)
    return value
