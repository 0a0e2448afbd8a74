"""The `rag` command: index, add, remove, list, ask, search, serve, mcp — the same service the API uses."""

from __future__ import annotations

import json
import logging
import os

import typer

from app.config import get_settings

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Question answering over Arabic news articles, with citations.")


def _service(rebuild: bool = False, vectors_from: list[str] | None = None):
    from pathlib import Path

    from app.service import RagService

    # Progress on stderr: a bar on a terminal, else a line every few seconds (app/progress.py).
    return RagService(get_settings(), rebuild=rebuild, progress=True,
                      vectors_from=[Path(p) for p in vectors_from or ()])


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="log what the service does")) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("bm25s").setLevel(logging.WARNING)  # it logs every build step at DEBUG


@app.command()
def index(
    rebuild: bool = typer.Option(False, "--rebuild", help="rebuild even if the stored index matches"),
    vectors_from: list[str] | None = typer.Option(
        None, "--vectors-from", help="folder of vector shards made elsewhere by the same embedder (app/embed_cache.py)"),
    ray: bool = typer.Option(False, "--ray", help="embed on Ray first (RAG_RAY_ADDRESS, unset: a local Ray)"),
    ray_workers: int | None = typer.Option(None, "--ray-workers", min=1,
                                           help="Ray actors, one embedder each (default: one per core Ray has)"),
    ray_address: str | None = typer.Option(None, "--ray-address", envvar="RAG_RAY_ADDRESS",
                                           help="the Ray cluster (ray://head:10001, auto); unset: a local Ray"),
) -> None:
    """Build the index under index/ (or reuse it when config and corpus are unchanged).

    An interrupted build resumes: vectors are checkpointed under index/.embed-cache-*/ as they are made. With
    --ray the passages are embedded by Ray workers into that folder first (app/ray_embed.py)."""
    from app.errors import RagError

    try:
        if ray:
            _embed_on_ray(rebuild, ray_address, ray_workers)
        service = _service(rebuild, vectors_from)
    except RagError as exc:
        _fail(exc.message)
    manifest = service.index.manifest
    typer.echo(f"index {service.index_status}: {manifest['counts']} "
               f"(embedder {manifest['embedder']['model']}, built {manifest['built_at']} "
               f"in {manifest['build_seconds']} s)")


def _embed_on_ray(rebuild: bool, address: str | None, workers: int | None) -> None:
    from app.corpus import load_corpus
    from app.embeddings import make_backend
    from app.index import expected_manifest, read_manifest
    from app.ray_embed import embed_with_ray

    settings = get_settings()
    corpus = load_corpus(settings.corpus_dir)
    stored = read_manifest(settings.index_dir)
    if not rebuild and stored is not None and all(stored.get(k) == v for k, v in
                                                  expected_manifest(settings, corpus).items()):
        return  # the stored index is current: nothing to embed
    run = embed_with_ray(settings, corpus, make_backend(settings), address=address or None, workers=workers)
    typer.echo(f"ray: {run.passages} passages embedded on {run.workers} workers in {run.embed_seconds:.1f} s "
               f"(Ray ready in {run.start_seconds:.1f} s; {run.resumed} already embedded)", err=True)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def train(ctx: typer.Context) -> None:
    """Train the evidence model on gold questions: --data GOLD=CORPUS (repeatable) --out FILE (see app/train.py)."""
    from app.train import main as train_main

    raise typer.Exit(train_main(ctx.args))


@app.command()
def passages(out: str = typer.Argument(..., help="JSON-lines file to write, one {\"text\": ...} a line")) -> None:
    """List the distinct passage texts a full build embeds (each sentence, its clauses marked to be read inside it,
    and the sentence once more marked to be embedded in question form), for embedding them elsewhere with this
    package's `embed_passages`."""
    from pathlib import Path

    from app.corpus import load_corpus
    from app.index import passage_texts

    settings = get_settings()
    texts = passage_texts(list(load_corpus(settings.corpus_dir).articles.values()), settings)
    with Path(out).open("w", encoding="utf-8") as handle:
        for text in texts:
            handle.write(json.dumps({"text": text}, ensure_ascii=False) + "\n")
    typer.echo(f"wrote {len(texts)} passages to {out}")


@app.command()
def add(
    paths: list[str] = typer.Argument(..., help="files (.txt, .md, .html) or folders (searched recursively)"),
    title: str | None = typer.Option(None, "--title", help="article title (one file only)"),
    source: str | None = typer.Option(None, "--source", help="the outlet that published it (one file only)"),
    url: str | None = typer.Option(None, "--url", help="URL of the original (one file only)"),
    date: str | None = typer.Option(None, "--date", help="publication date YYYY-MM-DD (one file only)"),
    language: str | None = typer.Option(None, "--language", help="language code, e.g. ar (default: detected)"),
) -> None:
    """Add articles to the corpus and the index in one crash-safe update (only new passages are embedded).

    Exit status 0 when every file was added or already present, 1 when some were skipped (the rest are added)."""
    from pathlib import Path

    from app.errors import RagError
    from app.ingest import IngestError, collect_files, read_file

    settings = get_settings()
    if (title or source or url or date) and (len(paths) != 1 or Path(paths[0]).is_dir()):
        _fail("--title, --source, --url and --date describe one article: give exactly one file")
    files, notes = collect_files([Path(p) for p in paths])
    meta = {"title": title, "source": source, "url": url, "date": date, "language": language}
    prepared, skipped = [], list(notes)
    for path in files:
        try:
            prepared.append(read_file(path, settings, **meta))
        except IngestError as exc:
            skipped.append(exc.message)
    for message in skipped:
        typer.secho(f"skipped {message}", fg=typer.colors.YELLOW, err=True)
    if not prepared:
        _fail("nothing to add" + (f" ({len(skipped)} skipped)" if skipped else ""))
    try:
        result = _service().add_articles(prepared)
    except RagError as exc:
        _fail(exc.message)
    for outcome in result.outcomes:
        if outcome.status == "added":
            typer.echo(f"added {outcome.id}: {outcome.title} ({outcome.chars} chars) from {outcome.origin}")
        else:
            typer.echo(f"duplicate {outcome.origin}: {outcome.message}")
    if result.added:
        typer.echo(f"index {result.build}: {result.counts}, embedded {result.embedded_passages} passages "
                   f"in {result.seconds:.1f} s")
    else:
        typer.echo("nothing changed")
    if skipped:
        raise typer.Exit(1)


@app.command()
def remove(article_id: str = typer.Argument(..., help="the article id (see GET /articles or rag list)")) -> None:
    """Take one article out of the corpus folder and the index."""
    from app.errors import RagError

    try:
        result = _service().remove_article(article_id)
    except RagError as exc:
        _fail(exc.message)
    outcome = result.outcomes[0]
    typer.echo(f"removed {outcome.id}: {outcome.title}")
    typer.echo(f"index {result.build}: {result.counts}")


@app.command("list")
def list_() -> None:
    """List the articles: id, characters, date, title."""
    service = _service()
    for article in service.corpus.articles.values():
        typer.echo(f"{article.id}\t{len(article.raw)}\t{article.meta.date or '-'}\t{article.title}")


@app.command()
def ask(
    question: str = typer.Argument(..., help="the question, Arabic or English"),
    lang: str | None = typer.Option(None, "--lang", help="answer language: ar or en (default: the question's)"),
    top_k: int | None = typer.Option(None, "--top-k", min=1, max=50),
    as_json: bool = typer.Option(False, "--json", help="print the full response as JSON"),
) -> None:
    """Answer a question with numbered sources."""
    from app.answer.models import defuse_markers
    from app.errors import RagError

    if lang not in (None, "ar", "en"):
        _fail("--lang must be ar or en")
    try:
        answer = _service().ask(question, lang, top_k)
    except RagError as exc:
        _fail(exc.message)
    if as_json:
        typer.echo(json.dumps(answer.model_dump(), ensure_ascii=False, indent=2))
        return
    typer.echo(answer.answer)
    if answer.citations:
        typer.echo("\nSources:" if answer.language == "en" else "\nالمصادر:")
        for c in answer.citations:
            mark = "" if c.supported else "  (unsupported)"
            who = defuse_markers(f"{c.title} — {c.source or c.article_id}")  # article text: no forged [n]
            typer.echo(f"[{c.n}] {who} ({c.article_id}, chars {c.start}-{c.end}){mark}")
    typer.echo(f"\n({answer.mode}, {answer.timings_ms.get('total_ms', 0):.0f} ms)", err=True)


@app.command()
def search(
    query: str = typer.Argument(...),
    top_k: int | None = typer.Option(None, "--top-k", min=1, max=50),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Show the ranked chunks for a query."""
    from app.errors import RagError

    try:
        result = _service().search(query, top_k)
    except RagError as exc:
        _fail(exc.message)
    if as_json:
        typer.echo(json.dumps(result.model_dump(), ensure_ascii=False, indent=2))
        return
    for hit in result.hits:
        dense = f"{hit.dense_score:.3f}#{hit.dense_rank}" if hit.dense_rank else "-"
        bm25 = f"{hit.bm25_score:.2f}#{hit.bm25_rank}" if hit.bm25_rank else "-"
        typer.echo(f"{hit.rank}. {hit.chunk_id} [{hit.start}:{hit.end}] fused {hit.score:.4f} dense {dense} bm25 {bm25}")
        typer.echo("   " + " ".join(hit.text.split())[:200])


@app.command("mcp")
def mcp_server() -> None:
    """Serve the MCP tools (search, ask, get_article) over stdio, for an assistant that starts this command.
    `rag serve` serves the same tools over streamable HTTP at /mcp."""
    import threading

    from app.api.mcp_server import build_server
    from app.errors import RagError

    # The index loads (or builds) in the background, so the client's handshake is answered at once; a tool call
    # waits for it.
    loaded = threading.Event()
    state: dict = {}

    def load() -> None:
        try:
            state["service"] = _service()
        except RagError as exc:
            state["error"] = exc
        except Exception as exc:  # noqa: BLE001 - reported to every tool call instead of a dead server
            state["error"] = RagError(f"the service failed to start: {type(exc).__name__}: {exc}", status=503)
        finally:
            loaded.set()

    def service():
        loaded.wait()
        if "error" in state:
            raise state["error"]
        return state["service"]

    threading.Thread(target=load, name="load-index", daemon=True).start()
    build_server(service).run("stdio")


# glibc gives each thread that contends for malloc an arena of its own (up to 8 a core): the server's request threads
# then scatter what an update frees over a dozen arenas, where later allocations rarely reuse it (`make soak`: ~0.5 MB
# more RSS an added article; with 2 arenas ~0.1 MB, docs/indexing-cost.md). MALLOC_ARENA_MAX, when set, wins.
MALLOC_ARENAS = 2


def _limit_malloc_arenas(arenas: int) -> None:
    import ctypes

    if "MALLOC_ARENA_MAX" in os.environ:
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc: its allocator has no such setting
        return
    libc.mallopt(-8, arenas)  # M_ARENA_MAX


@app.command()
def serve(
    host: str | None = typer.Option(None, "--host", help="default RAG_HOST or 127.0.0.1"),
    port: int | None = typer.Option(None, "--port", help="default RAG_PORT or 8000"),
    workers: int = typer.Option(1, "--workers", min=1,
                                help="server processes sharing the port; each sees every committed update"),
) -> None:
    """Serve the REST API, the chat page at /, the OpenAI-compatible API at /v1 and MCP at /mcp, with uvicorn."""
    import uvicorn

    from app.api import create_app

    _limit_malloc_arenas(MALLOC_ARENAS)
    settings = get_settings()
    host, port = host or settings.host, port or settings.port
    # The app knows where it listens: MCP's DNS-rebinding check depends on whether that is loopback.
    settings = settings.model_copy(update={"host": host, "port": port})
    if workers == 1:
        uvicorn.run(create_app(settings), host=host, port=port, log_level="info")
        return
    if settings.store == "qdrant" and settings.qdrant_path:
        _fail("RAG_QDRANT_PATH (qdrant-client's local mode) opens in one process only: serve several workers from "
              "the embedded engine (unset RAG_QDRANT_PATH) or a Qdrant server (RAG_QDRANT_URL)")
    # Each worker builds its app from the same RAG_* environment (RAG_HOST / RAG_PORT set from the options); the first
    # to start builds a missing index under the update lock and the others load it.
    os.environ["RAG_HOST"], os.environ["RAG_PORT"] = host, str(port)
    uvicorn.run("app.api.main:create_app", factory=True, workers=workers, host=host, port=port, log_level="info")


@app.command("eval")
def eval_(
    gold: str = typer.Argument(..., help="gold questions, one JSON object a line (format: eval/README.md)"),
    mode: str = typer.Option("extractive", "--mode", help="extractive or llm (the model in RAG_LLM_MODEL)"),
    top_k: int | None = typer.Option(None, "--top-k", min=1, max=50),
    out: str | None = typer.Option(None, "--out", help="report folder (default eval/runs/<timestamp>)"),
    baseline: str | None = typer.Option(None, "--baseline", help="langchain: also compare LangChain's retriever"),
) -> None:
    """Score a gold question set (same as python -m app.eval); summary JSON on the last stdout line."""
    from app.eval import main as eval_main

    argv = [gold, "--mode", mode]
    if top_k is not None:
        argv += ["--top-k", str(top_k)]
    if out is not None:
        argv += ["--out", out]
    if baseline is not None:
        argv += ["--baseline", baseline]
    raise typer.Exit(eval_main(argv))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
