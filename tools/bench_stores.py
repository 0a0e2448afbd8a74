"""The two stores side by side at scale (`make bench-scale`): build time, memory, query latency and recall against
exact search, for FAISS + bm25s and for Qdrant embedded (qdrant-edge), on one synthetic corpus.

    python -m tools.bench_stores [--chunks 100000] [--sentences-per-chunk 2] [--queries 200] [--out FILE]

The corpus is synthetic (tools/bench.py): Arabic chunks assembled from the seeds' sentences with made-up names
(Zipf-distributed, so the vocabulary grows as a real archive's does), tokenised by our own tokenizer, and clustered
unit vectors of 384 dimensions standing for their embeddings (embedding 10^5 real chunks would take hours here). Each
store is built through app/stores exactly as an index build does (FAISS: the IVF-SQ8 that `RAG_DENSE_INDEX=auto`
picks above 30,000 vectors, and bm25s; Qdrant: the chunk, multivector and sparse collection and the sentence
collection, optimised into HNSW), written to disk, then loaded back and queried one question at a time with the
retriever's hybrid query (30 chunks a ranking, 120 nearest sentences). Recall@10 is of each store's chunk vector
ranking and @120 of its nearest sentences, against exact inner-product search over the same vectors.
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from tools.bench import (
    PROJECT_ROOT,
    SyntheticCorpus,
    VectorStructure,
    machine_info,
    percentiles,
    proc_memory_mb,
    recall_at_k,
    seed_sentences,
    unit_vectors,
)

DIM = 384
DEPTH, SENTENCE_DEPTH = 30, 120


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _rss() -> float:
    return proc_memory_mb().get("rss_mb", 0.0)


def _folder_mb(folder: Path) -> float:
    return round(sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20, 1)


def make_data(n: int, per_chunk: int, n_queries: int, seed: int = 0) -> dict:
    from app.text.arabic import tokenize

    synth = SyntheticCorpus(seed_sentences(PROJECT_ROOT / "seeds"), seed=seed)
    structure = VectorStructure(max(16, n // 1000), DIM, seed=seed)
    t0 = time.perf_counter()
    terms = [synth.tokens(i) for i in range(n)]
    chunk_vectors = unit_vectors(n, DIM, seed=seed, structure=structure)
    sentence_vectors = unit_vectors(n * per_chunk, DIM, seed=seed + 2, structure=structure)
    queries = unit_vectors(n_queries, DIM, seed=seed + 1, structure=structure)
    query_terms = [tokenize(synth.query(i)) for i in range(n_queries)]
    _log(f"data: {n} chunks, {n * per_chunk} sentences, {n_queries} queries in {time.perf_counter() - t0:.1f} s")
    return {"terms": terms, "chunk_vectors": chunk_vectors, "sentence_vectors": sentence_vectors,
            "chunk_sentences": [list(range(i * per_chunk, (i + 1) * per_chunk)) for i in range(n)],
            "queries": queries, "query_terms": query_terms}


def exact(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    out = np.empty((len(queries), k), dtype=np.int64)
    for start in range(0, len(queries), 50):
        scores = queries[start:start + 50] @ vectors.T
        top = np.argpartition(-scores, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
        out[start:start + 50] = np.take_along_axis(top, order, axis=1)
    return out


def bench_store(kind: str, data: dict, work: Path, truth: dict) -> dict:
    from app.stores.faiss_store import FaissStore
    from app.stores.qdrant_store import QdrantStore

    folder = work / f"build-{kind}"
    folder.mkdir()
    gc.collect()
    rss0 = _rss()
    t0 = time.perf_counter()
    if kind == "faiss":
        store = FaissStore.build(data["terms"], data["chunk_vectors"], data["sentence_vectors"])
    else:
        store = QdrantStore.build({"kind": "qdrant", "engine": "edge"}, data["terms"], data["chunk_vectors"],
                                  data["sentence_vectors"], data["chunk_sentences"])
    built = time.perf_counter() - t0
    store.write(folder, folder.name)
    written = time.perf_counter() - t0
    build_rss = _rss() - rss0
    _log(f"{kind}: built in {built:.1f} s, written in {written - built:.1f} s more (RSS +{build_rss:.0f} MB)")
    describe = store.describe()
    del store
    gc.collect()

    # Loaded and queried in a fresh process, so its memory is the store's alone (this one's allocator keeps pages).
    measured = _measure_in_subprocess(kind, folder, data, work)
    chunk_ids, sentence_ids, times = measured["chunk_ids"], measured["sentence_ids"], measured["times"]
    load_seconds = measured["load_seconds"]
    row = {
        "store": kind, "describe": describe, "build_seconds": round(built, 1), "write_seconds": round(written - built, 1),
        "build_rss_mb": round(build_rss, 0), "disk_mb": _folder_mb(folder), "load_seconds": round(load_seconds, 2),
        "loaded_rss_mb": measured["loaded_rss_mb"], "hybrid_query_ms": percentiles(times),
        "chunk_recall_at_10": round(recall_at_k(np.array([c + [-1] * (10 - len(c)) for c in chunk_ids]),
                                                truth["chunks"], 10), 4),
        "sentence_recall_at_120": round(recall_at_k(np.array([s + [-1] * (SENTENCE_DEPTH - len(s)) for s in sentence_ids]),
                                                    truth["sentences"], SENTENCE_DEPTH), 4),
    }
    _log(f"{kind}: loaded in {load_seconds:.1f} s (RSS +{row['loaded_rss_mb']:.0f} MB), hybrid p50 "
         f"{row['hybrid_query_ms']['p50']} ms p95 {row['hybrid_query_ms']['p95']} ms, recall@10 chunks "
         f"{row['chunk_recall_at_10']}, @120 sentences {row['sentence_recall_at_120']}")
    return row


def _measure_in_subprocess(kind: str, folder: Path, data: dict, work: Path) -> dict:
    np.save(work / "queries.npy", data["queries"])
    (work / "query_terms.json").write_text(json.dumps(data["query_terms"], ensure_ascii=False), encoding="utf-8")
    np.save(work / "chunk_sentences.npy", np.asarray(data["chunk_sentences"], dtype=np.int64))
    out = work / f"measured-{kind}.json"
    subprocess.run([sys.executable, "-m", "tools.bench_stores", "--measure", kind, str(folder), str(work), str(out)],
                   check=True, cwd=PROJECT_ROOT)
    return json.loads(out.read_text(encoding="utf-8"))


def measure(kind: str, folder: Path, work: Path, out: Path) -> None:
    """In a fresh process: load the store written in `folder`, run the queries, report ids, times and memory."""
    from app.stores import HybridQuery
    from app.stores.faiss_store import FaissStore
    from app.stores.qdrant_store import QdrantStore

    queries = np.load(work / "queries.npy")
    query_terms = json.loads((work / "query_terms.json").read_text(encoding="utf-8"))
    chunk_sentences = np.load(work / "chunk_sentences.npy")
    gc.collect()
    rss0 = _rss()
    t0 = time.perf_counter()
    if kind == "faiss":
        store = FaissStore.load(folder)
        sentence_chunks: list[list[int]] = [[] for _ in range(chunk_sentences.size)]
        for c, members in enumerate(chunk_sentences.tolist()):
            for s in members:
                sentence_chunks[s].append(c)
        store.sentence_chunks = sentence_chunks
    else:
        store = QdrantStore.load(folder, {"kind": "qdrant", "engine": "edge"})
    load_seconds = time.perf_counter() - t0
    times, chunk_ids, sentence_ids = [], [], []
    for vector, terms in zip(queries, query_terms):
        known = [t for t in terms if t in store.vocabulary]
        query = HybridQuery(vector, known, len(known) / max(1, len(terms)), depth=DEPTH, sentence_depth=SENTENCE_DEPTH)
        t = time.perf_counter()
        result = store.hybrid(query)
        times.append((time.perf_counter() - t) * 1000)
        sentence_ids.append([i for i, _ in result.nearest_sentences])
    # The chunk vector ranking alone, for its recall (the hybrid result mixes in the other rankings).
    for vector in queries:
        if kind == "faiss":
            chunk_ids.append(store.dense.search(vector[None, :], 10)[1][0].tolist())
        else:
            v = [float(x) for x in vector]
            fused, _ = store._open().search([("dense", "chunk", v, 1.0)], 10, 60, v, 1)
            chunk_ids.append([i for i, _ in fused])
    out.write_text(json.dumps({"load_seconds": load_seconds, "loaded_rss_mb": round(_rss() - rss0),
                               "times": times, "chunk_ids": chunk_ids, "sentence_ids": sentence_ids}), encoding="utf-8")


def run(n: int, per_chunk: int, n_queries: int) -> dict:
    report = {"kind": "stores", "chunks": n, "sentences": n * per_chunk, "queries": n_queries,
              "machine": machine_info(), "rows": []}
    data = make_data(n, per_chunk, n_queries)
    t0 = time.perf_counter()
    truth = {"chunks": exact(data["chunk_vectors"], data["queries"], 10),
             "sentences": exact(data["sentence_vectors"], data["queries"], SENTENCE_DEPTH)}
    _log(f"exact search for the ground truth: {time.perf_counter() - t0:.1f} s")
    work = Path(tempfile.mkdtemp(prefix="rag-bench-stores-"))
    try:
        for kind in ("faiss", "qdrant"):
            report["rows"].append(bench_store(kind, data, work, truth))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report["peak_rss_mb"] = proc_memory_mb().get("peak_rss_mb")
    return report


def render(report: dict) -> str:
    lines = [f"# Stores at {report['chunks']:,} chunks ({report['sentences']:,} sentences; "
             f"{report['machine']['started_at']}, load {report['machine']['load_avg']})", "",
             "Synthetic Arabic chunks (the seeds' sentences and made-up names) and clustered 384-d unit vectors; "
             f"{report['queries']} hybrid queries one at a time (30 chunks a ranking, 120 nearest sentences); recall "
             "of the chunk vector ranking (@10) and of the nearest sentences (@120) against exact search.", "",
             "| store | build s (+ write s) | RSS while building MB | on disk MB | load s | RSS loaded + queried MB "
             "| hybrid p50 ms | p95 ms | chunk recall@10 | sentence recall@120 |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in report["rows"]:
        q = r["hybrid_query_ms"]
        lines.append(f"| {r['store']} | {r['build_seconds']} (+ {r['write_seconds']}) | {r['build_rss_mb']:.0f} | "
                     f"{r['disk_mb']} | {r['load_seconds']} | {r['loaded_rss_mb']:.0f} | {q['p50']} | {q['p95']} | "
                     f"{r['chunk_recall_at_10']} | {r['sentence_recall_at_120']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.bench_stores", description=__doc__.split("\n\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--sentences-per-chunk", type=int, default=2)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--out", type=Path, default=None, help="JSON report (a .md table beside it); default "
                                                              "bench/results/stores-<chunks>.json")
    parser.add_argument("--measure", nargs=4, metavar=("KIND", "FOLDER", "WORK", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.measure:
        kind, folder, work, out = args.measure
        measure(kind, Path(folder), Path(work), Path(out))
        return 0
    report = run(args.chunks, args.sentences_per_chunk, args.queries)
    out = args.out or PROJECT_ROOT / "bench" / "results" / f"stores-{args.chunks}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    table = render(report)
    out.with_suffix(".md").write_text(table, encoding="utf-8")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
