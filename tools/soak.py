"""Soak test: a real server on 127.0.0.1 under mixed load — POST /search, POST /ask and POST /articles adds — from
an async httpx client at a fixed concurrency for a fixed time; then every added article must be retrievable.

    python -m tools.soak [--duration 60] [--concurrency 16] [--add-share 0.1] [--ask-share 0.45] [--out report.json]

It works on copies (a temp corpus folder made from RAG_CORPUS_DIR, a temp index seeded from RAG_INDEX_DIR's live
build when there is one), never on the real folders, starts `rag serve` with a random RAG_API_KEY, and stops it
(by its PID) at the end. Reports requests/s, errors, latency percentiles per operation, the server's RSS at start,
peak and end and what it grew by per added article (what memory costs as the corpus grows; a few KB of text and
vectors an article, docs/indexing-cost.md), and how many added articles are retrievable. Exit status 0 when there were no errors and every
added article was found.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from app.config import get_settings
from app.index import current_build_name
from tools.bench import free_port

QUESTIONS = [
    "من أين تأتي المسيرات التي تستخدمها روسيا؟",
    "Who signed the naval memorandum, and where?",
    "ماذا قال المتحدث باسم الكرملين لشبكة سي إن بي سي؟",
    "Which port did the Russian Pacific Fleet warships enter?",
    "What did Peskov say about cooperation with Iran?",
    "ما قيمة صفقة غازبروم مع شركة النفط الإيرانية؟",
    "Where did the Russian warships dock?",
    "كم عدد رجال الأعمال في الوفد الروسي إلى إيران؟",
]
QUERIES = ["غازبروم", "ميناء تشابهار", "naval memorandum", "الطائرات المسيرة الإيرانية", "بوتين وطهران",
           "Caspian Sea", "العقوبات الغربية", "خانزادي سان بطرسبرج"]
_LETTERS = "بتثجحخدذرزسشصضطظعغفقكلمنهي"
_TOPICS = ["الموانئ", "الطاقة الشمسية", "السكك الحديدية", "تحلية المياه", "الزراعة", "الاتصالات"]


def unique_word(n: int, salt: str) -> str:
    """An Arabic-letter word no article contains (BM25 finds it exactly)."""
    digits, value = [], n * 7919 + int(salt, 16)
    while value or len(digits) < 4:
        value, digit = divmod(value, len(_LETTERS))
        digits.append(_LETTERS[digit])
    return "زيل" + "".join(digits)


def make_article(n: int, salt: str) -> tuple[str, str]:
    word = unique_word(n, salt)
    topic = _TOPICS[n % len(_TOPICS)]
    text = (f"{word} يطلق مشروعاً جديداً في {topic}\n"
            f"أعلنت مجموعة {word} اليوم إطلاق مشروع في قطاع {topic} بقيمة {100 + n} مليون دولار. "
            f"وقال مدير المجموعة إن المشروع سيوفر {20 + n % 50} وظيفة خلال العام المقبل. "
            f"وأضاف أن {word} تتوقع إنجاز المرحلة الأولى قبل نهاية الصيف.\n")
    return word, text


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    statuses: dict[str, dict[str, int]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    added: dict[str, str] = field(default_factory=dict)  # article id -> unique word
    rss_timeline: list[tuple[float, float, int]] = field(default_factory=list)  # (seconds in, MB, articles added)

    def record(self, op: str, seconds: float, status: str) -> None:
        self.latencies.setdefault(op, []).append(seconds)
        counts = self.statuses.setdefault(op, {})
        counts[status] = counts.get(status, 0) + 1


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def prepare_folders(work: Path) -> tuple[Path, Path]:
    """Copies of the configured corpus and of its live index build (so the server can load instead of build)."""
    settings = get_settings()
    corpus, index = work / "corpus", work / "index"
    corpus.mkdir()
    for path in Path(settings.corpus_dir).iterdir():
        if path.suffix == ".txt" or path.name == "articles.json":
            shutil.copy(path, corpus / path.name)
    index.mkdir()
    build = current_build_name(settings.index_dir)
    if build and (Path(settings.index_dir) / build / "manifest.json").exists():
        shutil.copytree(Path(settings.index_dir) / build, index / build)
        (index / "CURRENT").write_text(build, encoding="utf-8")
    return corpus, index


async def worker(client: httpx.AsyncClient, stats: Stats, deadline: float, shares: tuple[float, float], key: str,
                 counter: list[int], salt: str, rng: random.Random) -> None:
    add_share, ask_share = shares
    while time.monotonic() < deadline:
        roll = rng.random()
        started = time.perf_counter()
        try:
            if roll < add_share:
                op = "add"
                counter[0] += 1
                word, text = make_article(counter[0], salt)
                response = await client.post("/articles", json={"content": text, "source": "soak"},
                                             headers={"Authorization": f"Bearer {key}"})
                if response.status_code in (200, 201):
                    stats.added[response.json()["id"]] = word
            elif roll < add_share + ask_share:
                op = "ask"
                response = await client.post("/ask", json={"question": rng.choice(QUESTIONS)})
            else:
                op = "search"
                response = await client.post("/search", json={"query": rng.choice(QUERIES), "top_k": 5})
            status = str(response.status_code)
            if response.status_code >= 400:
                stats.errors.append(f"{op} {status}: {response.text[:200]}")
        except httpx.HTTPError as exc:
            status = type(exc).__name__
            stats.errors.append(f"{op} {status}: {exc}")
        stats.record(op, time.perf_counter() - started, status)


async def run_load(base: str, key: str, duration: float, concurrency: int, shares: tuple[float, float],
                   pid: int, seed: int) -> tuple[Stats, float, float]:
    stats = Stats()
    rng = random.Random(seed)
    salt = secrets.token_hex(3)
    peak = [rss_mb(pid)]
    timeline: list[tuple[float, float, int]] = []
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, timeout=300, limits=limits) as client:
        deadline = time.monotonic() + duration

        async def sample_rss() -> None:
            begun = time.monotonic()
            while time.monotonic() < deadline:
                rss = rss_mb(pid)
                peak[0] = max(peak[0], rss)
                if not timeline or time.monotonic() - begun >= timeline[-1][0] + 10:
                    timeline.append((round(time.monotonic() - begun), round(rss, 1), len(stats.added)))
                await asyncio.sleep(1)

        started = time.perf_counter()
        counter = [0]
        await asyncio.gather(sample_rss(), *(
            worker(client, stats, deadline, shares, key, counter, salt, random.Random(rng.random()))
            for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    stats.rss_timeline = timeline
    return stats, elapsed, peak[0]


async def verify(base: str, stats: Stats) -> list[str]:
    """Every added article is listed, readable and found by searching its unique word. Returns the failures."""
    missing = []
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        listed = {a["id"] for a in (await client.get("/articles")).json()}
        for article_id, word in stats.added.items():
            if article_id not in listed or (await client.get(f"/articles/{article_id}")).status_code != 200:
                missing.append(f"{article_id}: not listed")
                continue
            hits = (await client.post("/search", json={"query": word, "top_k": 5})).json()["hits"]
            if article_id not in {h["article_id"] for h in hits}:
                missing.append(f"{article_id}: not found by searching {word}")
    return missing


def wait_ready(base: str, process: subprocess.Popen, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited with status {process.returncode} before it was ready")
        try:
            response = httpx.get(f"{base}/health", timeout=5)
            if response.status_code == 200:
                return response.json()
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the server was not ready within {timeout:g} s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=60.0, help="seconds of load (default 60)")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight (default 16)")
    parser.add_argument("--add-share", type=float, default=0.1, help="share of POST /articles (default 0.1)")
    parser.add_argument("--ask-share", type=float, default=0.45, help="share of POST /ask; the rest is /search")
    parser.add_argument("--ready-timeout", type=float, default=900.0, help="seconds to wait for the server")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", help="also write the report as JSON here")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="rag-soak-"))
    corpus, index = prepare_folders(work)
    key, port = secrets.token_hex(16), free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "RAG_CORPUS_DIR": str(corpus), "RAG_INDEX_DIR": str(index), "RAG_API_KEY": key,
           "RAG_LLM_MODEL": "", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    env.pop("RAG_LLM_MODEL")
    log_path = work / "server.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen([sys.executable, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port",
                                   str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    print(f"soak: server pid {server.pid} on {base}, folders under {work}", file=sys.stderr)
    try:
        health = wait_ready(base, server, args.ready_timeout)
        for question in QUESTIONS[:2]:  # warm up
            httpx.post(f"{base}/ask", json={"question": question}, timeout=120)
        rss_start = rss_mb(server.pid)
        print(f"soak: index {health['index']}, {health['counts']}; {args.duration:g} s at concurrency "
              f"{args.concurrency}", file=sys.stderr)
        stats, elapsed, rss_peak = asyncio.run(run_load(base, key, args.duration, args.concurrency,
                                                        (args.add_share, args.ask_share), server.pid, args.seed))
        rss_end = rss_mb(server.pid)
        missing = asyncio.run(verify(base, stats))
        final = httpx.get(f"{base}/health", timeout=30).json()
    finally:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    everything = [t for values in stats.latencies.values() for t in values]
    report = {
        "duration_s": round(elapsed, 1),
        "concurrency": args.concurrency,
        "requests": len(everything),
        "requests_per_s": round(len(everything) / elapsed, 2),
        "errors": len(stats.errors),
        "error_samples": stats.errors[:10],
        "latency_ms": {"all": _summary(everything), **{op: _summary(v) for op, v in sorted(stats.latencies.items())}},
        "statuses": stats.statuses,
        "rss_mb": {"start": round(rss_start, 1), "peak": round(rss_peak, 1), "end": round(rss_end, 1),
                   "every_10_s": [mb for _, mb, _ in stats.rss_timeline],
                   "added_every_10_s": [added for *_, added in stats.rss_timeline],
                   # What the server grew by for each article added: the figure that must stay near the data's size.
                   "per_added_article_kb": round((rss_end - rss_start) * 1024 / len(stats.added), 1)
                   if stats.added else None},
        "articles": {"before": health["counts"]["articles"], "added": len(stats.added),
                     "after": final["counts"]["articles"], "retrievable": len(stats.added) - len(missing),
                     "missing": missing[:20]},
        "server_log": str(log_path),
    }
    _print(report)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    ok = not stats.errors and not missing and report["articles"]["after"] == report["articles"]["before"] + len(
        stats.added)
    if ok:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if ok else 1


def _summary(values: list[float]) -> dict:
    return {"n": len(values), "p50": round(percentile(values, 50) * 1000, 1),
            "p95": round(percentile(values, 95) * 1000, 1), "p99": round(percentile(values, 99) * 1000, 1),
            "max": round(max(values, default=0) * 1000, 1)}


def _print(report: dict) -> None:
    print(f"\n{report['requests']} requests in {report['duration_s']} s at concurrency {report['concurrency']}: "
          f"{report['requests_per_s']} req/s, {report['errors']} errors")
    print(f"{'operation':<10}{'n':>7}{'p50 ms':>10}{'p95 ms':>10}{'p99 ms':>10}{'max ms':>10}")
    for op, s in report["latency_ms"].items():
        print(f"{op:<10}{s['n']:>7}{s['p50']:>10}{s['p95']:>10}{s['p99']:>10}{s['max']:>10}")
    rss = report["rss_mb"]
    print(f"server RSS: start {rss['start']} MB, peak {rss['peak']} MB, end {rss['end']} MB "
          f"(every 10 s: {', '.join(map(str, rss['every_10_s']))})")
    if rss["per_added_article_kb"] is not None:
        print(f"server RSS per added article: {rss['per_added_article_kb']} KB "
              f"({rss['end'] - rss['start']:+.1f} MB over {report['articles']['added']} articles)")
    a = report["articles"]
    print(f"articles: {a['before']} before, {a['added']} added, {a['after']} after; "
          f"{a['retrievable']}/{a['added']} added articles retrievable by search")
    for sample in report["error_samples"]:
        print(f"  error: {sample}")
    for miss in a["missing"]:
        print(f"  missing: {miss}")


if __name__ == "__main__":
    sys.exit(main())
