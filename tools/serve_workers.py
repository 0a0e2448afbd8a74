"""Several API processes on one corpus: `/search` requests/s with `rag serve --workers 1` and `--workers 2`, per
store, and whether every worker serves an article added through one of them.

    python -m tools.serve_workers [--stores faiss,qdrant] [--workers 1,2] [--seconds 20] [--concurrency 8]
                                  [--uncached] [--out FILE]

As `rag serve` runs (question-vector cache on, and the load repeats its questions), or with --uncached every question
embedded (uvicorn on the same app factory with the cache off).

Each store gets a copy of the seeds indexed once; each server runs on a free loopback port and is stopped by its
PID. After the load, one article is added with POST /articles (through whichever worker takes it), then /health is
asked 20 times on fresh connections (the kernel spreads them over the workers): every answer must name the new build.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from tools.bench import PROJECT_ROOT, _load, free_port, machine_info, stop_process

API_KEY = "bench-key-0123456789abcdef"
NEW_ARTICLE = ("الهند تفتتح ميناء جديدا\nافتتحت الهند ميناء تشابهار الجديد على خليج عمان لتصدير القمح إلى أفغانستان. "
               "وقال وزير النقل الهندي إن الميناء سيخدم التجارة مع آسيا الوسطى.\n")


def _env(root: Path, store: str) -> dict:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update({"RAG_CORPUS_DIR": str(root / "corpus"), "RAG_INDEX_DIR": str(root / "index"), "RAG_STORE": store,
                "RAG_API_KEY": API_KEY, "PYTHONPATH": str(PROJECT_ROOT), "LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    return env


def _http(port: int, path: str, body: dict | None = None, timeout: float = 60.0) -> tuple[int, dict]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method="POST" if body else "GET",
                                     data=json.dumps(body).encode() if body else None,
                                     headers={"Content-Type": "application/json",
                                              "Authorization": f"Bearer {API_KEY}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except OSError:
        return 0, {}


def uncached_app():
    """The API with the question-vector cache off (--uncached), for uvicorn's --factory."""
    import app.embeddings
    from app.api.main import create_app

    app.embeddings.QUERY_CACHE_SIZE = 0
    return create_app()


def run_one(root: Path, store: str, workers: int, seconds: float, concurrency: int, uncached: bool = False) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"rag-workers-{store}-{workers}-"))
    shutil.copytree(root, work, dirs_exist_ok=True)
    port = free_port()
    log = open(work / "server.log", "wb")  # noqa: SIM115 - open while the server runs
    command = (["-m", "uvicorn", "tools.serve_workers:uncached_app", "--factory"] if uncached
               else ["-m", "app.cli", "serve"])
    server = subprocess.Popen([sys.executable, *command, "--host", "127.0.0.1", "--port", str(port),
                               "--workers", str(workers)], env=_env(work, store), cwd=PROJECT_ROOT,
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 300
        while _http(port, "/health", timeout=2)[0] != 200:
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"rag serve did not start; see {work / 'server.log'}")
            time.sleep(0.2)
        time.sleep(3 * workers)  # every worker up and warmed
        asyncio.run(_load("127.0.0.1", port, "/search", concurrency, 3, 60, 0))  # warm-up
        result = asyncio.run(_load("127.0.0.1", port, "/search", concurrency, seconds, 60, 0))
        status, change = _http(port, "/articles", {"content": NEW_ARTICLE, "format": "txt"})
        healths = [_http(port, "/health")[1] for _ in range(20)]
        builds = [h.get("build") for h in healths]
        # The worker that took the add says "updated (...)"; one that reloaded it says how it loaded it.
        statuses = sorted({h.get("index", "")[:40] for h in healths})
        result.update({"store": store, "workers": workers, "question_cache": not uncached, "add_status": status, "new_build": change.get("build"),
                       "health_builds_after_add": sorted(set(builds)), "health_statuses_after_add": statuses,
                       "every_answer_saw_the_update": status == 201 and all(b == change.get("build") for b in builds)})
        print(f"{store} workers={workers}: {result['requests_per_s']} req/s, p50 {result['latency_ms']['p50']} ms, "
              f"errors {result['errors']}; after an add every /health names the new build: "
              f"{result['every_answer_saw_the_update']}", file=sys.stderr, flush=True)
        return result
    finally:
        stop_process(server, timeout=30)
        log.close()
        shutil.rmtree(work, ignore_errors=True)


def prepare(store: str) -> Path:
    """A copy of the seeds with their index built for `store` (once; every run copies it)."""
    root = Path(tempfile.mkdtemp(prefix=f"rag-workers-{store}-"))
    shutil.copytree(PROJECT_ROOT / "seeds", root / "corpus")
    subprocess.run([sys.executable, "-m", "app.cli", "index"], env=_env(root, store), cwd=PROJECT_ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    return root


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.serve_workers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--stores", default="faiss,qdrant")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--uncached", action="store_true", help="question-vector cache off: every question embedded")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "bench" / "results" / "serve-workers.json")
    args = parser.parse_args(argv)
    report = {"machine": machine_info(), "seconds": args.seconds, "concurrency": args.concurrency, "runs": []}
    for store in args.stores.split(","):
        root = prepare(store)
        try:
            for workers in (int(w) for w in args.workers.split(",")):
                report["runs"].append(run_one(root, store, workers, args.seconds, args.concurrency, args.uncached))
        finally:
            shutil.rmtree(root, ignore_errors=True)
    report["machine"]["load_avg_end"] = machine_info()["load_avg"]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    lines = ["| store | workers | /search req/s | p50 ms | p95 ms | errors | every worker saw an add |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for r in report["runs"]:
        lines.append(f"| {r['store']} | {r['workers']} | {r['requests_per_s']} | {r['latency_ms']['p50']} | "
                     f"{r['latency_ms']['p95']} | {r['errors']} | {r['every_answer_saw_the_update']} |")
    print("\n".join(lines))
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
