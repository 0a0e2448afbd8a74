"""Evaluation: run a gold question set through RagService.ask and score retrieval, citations, abstention and answers.

    python -m app.eval GOLD.jsonl [--mode extractive|llm] [--top-k K] [--out DIR] [--baseline langchain]

Gold format and metric definitions: eval/README.md. Writes report.json and report.md into --out (default
eval/runs/<timestamp>), logs progress on stderr and prints the summary as one JSON object on the last line of
stdout.

How the metrics are pooled (the README's wording, made exact):
- retrieval recall@k (quote / article level): gold quotes (articles) of answerable questions that overlap (appear
  in) the top-k hits, over all gold quotes (articles) of answerable questions — pooled, not averaged per question.
- MRR: mean over answerable questions of 1/rank of the first hit from a gold article (0 when none in the top k).
- citation precision (and strict): pooled over all citations given on answerable questions; None when none.
- citation recall, quote recall: per answerable question, then averaged (an abstention scores 0).
- abstention accuracy: over unanswerable questions; false abstention rate, must_include rate: over answerable.
- language match: over all questions; unsupported citation rate: pooled over all citations of all questions.
A metric with nothing to average over (e.g. abstention accuracy of factoid questions) is None.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from app.answer.models import CITATION_MARKER
from app.text.arabic import normalize

METRIC_KEYS = (
    "n",
    "retrieval_recall_at_k",
    "retrieval_article_recall_at_k",
    "mrr",
    "citation_precision",
    "citation_precision_strict",
    "citation_recall",
    "quote_recall",
    "abstention_accuracy",
    "false_abstention_rate",
    "language_match",
    "must_include_rate",
    "unsupported_citation_rate",
    "seconds",
)
RETRIEVAL_KEYS = ("retrieval_recall_at_k", "retrieval_article_recall_at_k", "mrr")


# ---------------------------------------------------------------------------------------------------------------
# Gold data


# The two development corpora, (gold questions, articles) relative to the project root: what `make eval` scores, and
# what the scripts fitting rules on one and scoring them on the other read (scripts/*_across_corpora.py).
DEV_CORPORA = {"seeds": (Path("eval/dev.jsonl"), Path("seeds")),
               "corpus-b": (Path("eval/corpus-b/questions.jsonl"), Path("eval/corpus-b"))}


class GoldError(ValueError):
    pass


@dataclass(frozen=True)
class Span:
    """A character span [start, end) of one article's raw text."""

    article_id: str
    start: int
    end: int


def overlaps(a: Span, b: Span) -> bool:
    return a.article_id == b.article_id and max(a.start, b.start) < min(a.end, b.end)


def load_gold(path: Path) -> list[dict]:
    """Read a gold JSONL file; checks the fields every question needs and fills optional ones."""
    rows: list[dict] = []
    seen: set[str] = set()
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise GoldError(f"cannot read gold file {path}: {exc}") from exc
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise GoldError(f"{path}:{number}: not valid JSON ({exc})") from exc
        if not isinstance(row, dict):
            raise GoldError(f"{path}:{number}: expected a JSON object")
        missing = [key for key in ("id", "lang", "type", "question", "answerable") if key not in row]
        if missing:
            raise GoldError(f"{path}:{number}: missing field(s) {', '.join(missing)}")
        if row["lang"] not in ("ar", "en"):
            raise GoldError(f"{path}:{number}: lang must be ar or en, not {row['lang']!r}")
        if not isinstance(row["question"], str) or not row["question"].strip():
            raise GoldError(f"{path}:{number}: question must be a non-empty string")
        if row["id"] in seen:
            raise GoldError(f"{path}:{number}: duplicate id {row['id']!r}")
        seen.add(row["id"])
        row.setdefault("gold_articles", [])
        row.setdefault("gold_quotes", [])
        row.setdefault("must_include", [])
        row.setdefault("answer", "")
        for quote in row["gold_quotes"]:
            if not isinstance(quote, dict) or "article" not in quote or "quote" not in quote:
                raise GoldError(f"{path}:{number}: each gold quote needs 'article' and 'quote'")
        rows.append(row)
    if not rows:
        raise GoldError(f"{path} holds no questions")
    return rows


def find_quote(raw: str, quote: str) -> tuple[int, int] | None:
    """The span of `quote` in `raw`: exact first, then with any run of whitespace (incl. U+00A0) matching any."""
    if not quote:
        return None
    found = raw.find(quote)
    if found >= 0:
        return found, found + len(quote)
    parts = [re.escape(p) for p in quote.split()]
    if not parts:
        return None
    match = re.search(r"\s+".join(parts), raw)
    return (match.start(), match.end()) if match else None


def locate_quotes(gold_quotes: Iterable[Mapping], raws: Mapping[str, str]) -> tuple[list[Span], list[dict]]:
    """Spans of the gold quotes in the raw articles, and the quotes that could not be found."""
    spans: list[Span] = []
    missing: list[dict] = []
    for quote in gold_quotes:
        raw = raws.get(quote["article"])
        where = find_quote(raw, quote["quote"]) if raw is not None else None
        if where is None:
            missing.append(dict(quote))
        else:
            spans.append(Span(quote["article"], *where))
    return spans, missing


# ---------------------------------------------------------------------------------------------------------------
# Metric families: pure functions of one question's gold and system output


def retrieval_metrics(gold_spans: Sequence[Span], n_gold_quotes: int, gold_articles: Sequence[str],
                      hits: Sequence[Span]) -> dict:
    """Quote- and article-level recall of the ranked hits (already cut to k) and the reciprocal rank of the
    first hit from a gold article. `n_gold_quotes` counts unlocatable quotes too (they are never retrieved)."""
    gold_set = set(gold_articles)
    quotes_hit = sum(1 for g in gold_spans if any(overlaps(g, h) for h in hits))
    articles_hit = len(gold_set & {h.article_id for h in hits})
    rank = next((i for i, h in enumerate(hits, 1) if h.article_id in gold_set), None)
    return {
        "quotes_total": n_gold_quotes,
        "quotes_retrieved": quotes_hit,
        "articles_total": len(gold_set),
        "articles_retrieved": articles_hit,
        "retrieval_recall_at_k": _ratio(quotes_hit, n_gold_quotes),
        "retrieval_article_recall_at_k": _ratio(articles_hit, len(gold_set)),
        "reciprocal_rank": 1.0 / rank if rank else 0.0,
        "first_gold_rank": rank,
    }


def citation_metrics(gold_spans: Sequence[Span], n_gold_quotes: int, gold_articles: Sequence[str],
                     cited_chunks: Sequence[Span]) -> dict:
    """Citations judged by the chunk each points at: in a gold article? overlapping a gold quote? And how much of
    the gold (articles, quotes) the citations cover."""
    gold_set = set(gold_articles)
    in_gold = sum(1 for c in cited_chunks if c.article_id in gold_set)
    on_quote = sum(1 for c in cited_chunks if any(overlaps(c, g) for g in gold_spans))
    cited_articles = {c.article_id for c in cited_chunks}
    quotes_cited = sum(1 for g in gold_spans if any(overlaps(g, c) for c in cited_chunks))
    return {
        "n_citations": len(cited_chunks),
        "citations_in_gold_article": in_gold,
        "citations_on_gold_quote": on_quote,
        "citation_recall": _ratio(len(gold_set & cited_articles), len(gold_set)),
        "quote_recall": _ratio(quotes_cited, n_gold_quotes),
    }


def abstention_metrics(answerable: bool, abstained: bool, n_citations: int) -> dict:
    """Unanswerable: correct when the system abstained and cited nothing. Answerable: abstaining is false."""
    if answerable:
        return {"abstention_correct": None, "false_abstention": bool(abstained)}
    return {"abstention_correct": bool(abstained) and n_citations == 0, "false_abstention": None}


_QUOTED = re.compile(r"“[^”]*”|\"[^\"]*\"", re.DOTALL)
_ARABIC_LETTER = re.compile(
    "[\u0620-\u064a\u066e-\u06d3\u06fa-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufefc]"
)
_LATIN_LETTER = re.compile("[A-Za-z\u00c0-\u024f]")


def _without_guillemets(text: str) -> str:
    """`text` without what stands inside «…», nested pairs included: a verbatim Arabic quote often quotes
    someone itself («قال إن «…» ...»), and the first » must not end the outer quote."""
    out: list[str] = []
    depth = 0
    for char in text:
        if char == "«":
            depth += 1
            if depth == 1:
                out.append(" ")
        elif char == "»" and depth:
            depth -= 1
        elif not depth:
            out.append(char)
    return "".join(out)


def prose(answer: str) -> str:
    """The answer's own words: text inside «…» (nested too), “…” and "…" and the [n] markers removed."""
    return CITATION_MARKER.sub(" ", _QUOTED.sub(" ", _without_guillemets(answer)))


def prose_language(answer: str) -> str | None:
    """'ar' or 'en' by the majority script of the prose's letters; None when no letters are left or on a tie."""
    text = prose(answer)
    arabic = len(_ARABIC_LETTER.findall(text))
    latin = len(_LATIN_LETTER.findall(text))
    if arabic == latin:
        return None
    return "ar" if arabic > latin else "en"


def language_match(answer: str, lang: str) -> bool:
    text = prose(answer)
    if not _ARABIC_LETTER.search(text) and not _LATIN_LETTER.search(text):
        return True
    return prose_language(answer) == lang


# A thousands separator between digit groups: "1,900" and "١٬٩٠٠" compare as "1900" (digits are unified by normalize).
_THOUSANDS = re.compile(r"(?<=\d)[,\u066c](?=\d{3}(?!\d))")


def _comparable(text: str) -> str:
    return " ".join(_THOUSANDS.sub("", normalize(text)).split())


def must_include_check(answer: str, must_include: Sequence[str]) -> tuple[bool, list[str]]:
    """Whether the answer holds every must_include string (Arabic-normalised, case-insensitive); and the missing."""
    text = _comparable(answer)
    missing = [s for s in must_include if _comparable(s) not in text]
    return not missing, missing


def citation_verified(citation: Mapping, raw: str | None, chunk: Span | None) -> tuple[bool, str | None]:
    """A citation is supported when its flag says so, its quote is raw[start:end] and that span lies inside the
    cited chunk. Returns (ok, reason it is not)."""
    if raw is None:
        return False, "unknown article"
    if chunk is None:
        return False, "unknown chunk"
    start, end = citation["start"], citation["end"]
    if raw[start:end] != citation["quote"]:
        return False, "quote is not raw[start:end]"
    if chunk.article_id != citation["article_id"] or not (chunk.start <= start and end <= chunk.end):
        return False, "span outside the cited chunk"
    if not citation["supported"]:
        return False, "flagged unsupported"
    return True, None


# ---------------------------------------------------------------------------------------------------------------
# Aggregation


def _ratio(num: float, den: float) -> float | None:
    return num / den if den else None


def _mean(values: Iterable[Any]) -> float | None:
    values = [float(v) for v in values if v is not None]
    return sum(values) / len(values) if values else None


def aggregate(records: Sequence[Mapping]) -> dict:
    """Every metric over a group of per-question metric dicts (see `score_question`)."""
    answerable = [r for r in records if r["answerable"]]
    unanswerable = [r for r in records if not r["answerable"]]
    out = {
        "n": len(records),
        "retrieval_recall_at_k": _ratio(sum(r["quotes_retrieved"] for r in answerable),
                                        sum(r["quotes_total"] for r in answerable)),
        "retrieval_article_recall_at_k": _ratio(sum(r["articles_retrieved"] for r in answerable),
                                                sum(r["articles_total"] for r in answerable)),
        "mrr": _mean(r["reciprocal_rank"] for r in answerable),
        "citation_precision": _ratio(sum(r["citations_in_gold_article"] for r in answerable),
                                     sum(r["n_citations"] for r in answerable)),
        "citation_precision_strict": _ratio(sum(r["citations_on_gold_quote"] for r in answerable),
                                            sum(r["n_citations"] for r in answerable)),
        "citation_recall": _mean(r["citation_recall"] for r in answerable),
        "quote_recall": _mean(r["quote_recall"] for r in answerable),
        "abstention_accuracy": _mean(r["abstention_correct"] for r in unanswerable),
        "false_abstention_rate": _mean(r["false_abstention"] for r in answerable),
        "language_match": _mean(r["language_match"] for r in records),
        "must_include_rate": _mean(r["must_include"] for r in answerable),
        "unsupported_citation_rate": _ratio(sum(r["unsupported_citations"] for r in records),
                                            sum(r["n_citations"] for r in records)),
        # LLM mode: the share of cited quotes that carry a machine translation, and must_include counted over the
        # answer together with those translations (what a reader of the answer and its citation panel sees).
        "translated_quote_rate": _ratio(sum(r.get("translated_citations", 0) for r in records),
                                        sum(r["n_citations"] for r in records)),
        "must_include_with_translations_rate": _mean(r.get("must_include_with_translations") for r in answerable),
        "seconds": sum(r.get("seconds", 0.0) for r in records),
    }
    return {key: _round(value) for key, value in out.items()}


def aggregate_retrieval(records: Sequence[Mapping]) -> dict:
    """Only the retrieval metrics (for the baseline comparison), over answerable questions."""
    answerable = [r for r in records if r["answerable"]]
    return {
        "n": len(answerable),
        "retrieval_recall_at_k": _round(_ratio(sum(r["quotes_retrieved"] for r in answerable),
                                               sum(r["quotes_total"] for r in answerable))),
        "retrieval_article_recall_at_k": _round(_ratio(sum(r["articles_retrieved"] for r in answerable),
                                                       sum(r["articles_total"] for r in answerable))),
        "mrr": _round(_mean(r["reciprocal_rank"] for r in answerable)),
    }


def breakdown(records: Sequence[Mapping], key: str, summarize=aggregate) -> dict:
    groups: dict[str, list[Mapping]] = {}
    for record in records:
        groups.setdefault(str(record[key]), []).append(record)
    return {name: summarize(group) for name, group in sorted(groups.items())}


def _round(value: Any, digits: int = 4) -> Any:
    return round(value, digits) if isinstance(value, float) else value


# ---------------------------------------------------------------------------------------------------------------
# Scoring one question


def score_question(gold: Mapping, answer: Mapping, gold_spans: Sequence[Span], n_gold_quotes: int,
                   chunk_spans: Mapping[str, Span], raws: Mapping[str, str], k: int) -> dict:
    """All per-question metric values from the gold row and the answer (Answer.model_dump())."""
    hits = [Span(h["article_id"], h["start"], h["end"]) for h in answer["hits"][:k]]
    citations = answer["citations"]
    cited_chunks = [chunk_spans.get(c["chunk_id"]) or Span(c["article_id"], c["start"], c["end"])
                    for c in citations]
    checks = [citation_verified(c, raws.get(c["article_id"]), chunk_spans.get(c["chunk_id"])) for c in citations]
    included, missing = must_include_check(answer["answer"], gold["must_include"])
    translations = [c["translation"]["text"] for c in citations if c.get("translation")]
    answerable = bool(gold["answerable"])
    record = {
        "answerable": answerable,
        "lang": gold["lang"],
        "type": gold["type"],
        "abstained": bool(answer["abstained"]),
        **retrieval_metrics(gold_spans, n_gold_quotes, gold["gold_articles"], hits),
        **citation_metrics(gold_spans, n_gold_quotes, gold["gold_articles"], cited_chunks),
        **abstention_metrics(answerable, answer["abstained"], len(citations)),
        "language_match": language_match(answer["answer"], gold["lang"]),
        "prose_language": prose_language(answer["answer"]),
        "must_include": included if answerable else None,
        "must_include_missing": missing if answerable else [],
        "translated_citations": len(translations),
        "must_include_with_translations": (
            must_include_check(" ".join([answer["answer"], *translations]), gold["must_include"])[0]
            if answerable and translations else (included if answerable else None)),
        "unsupported_citations": sum(1 for ok, _ in checks if not ok),
        "unsupported_reasons": [reason for _, reason in checks if reason],
    }
    if not answerable:  # no gold: retrieval and citation coverage are undefined, and aggregate() skips them
        for key in ("retrieval_recall_at_k", "retrieval_article_recall_at_k", "citation_recall", "quote_recall"):
            record[key] = None
    record["failures"] = failure_reasons(record)
    return record


def failure_reasons(m: Mapping) -> list[str]:
    """Why a question counts as failed (empty: it passed every check)."""
    reasons: list[str] = []
    if m["answerable"]:
        if m["false_abstention"]:
            reasons.append("abstained on an answerable question")
        if m["must_include"] is False:
            reasons.append("missing must_include: " + ", ".join(m["must_include_missing"]))
        if m["quotes_retrieved"] < m["quotes_total"]:
            reasons.append(f"retrieval found {m['quotes_retrieved']}/{m['quotes_total']} gold quotes")
        if m["n_citations"] > m["citations_in_gold_article"]:
            reasons.append(f"{m['n_citations'] - m['citations_in_gold_article']} citation(s) outside gold articles")
        if not m["abstained"] and m["citation_recall"] is not None and m["citation_recall"] < 1:
            reasons.append("not every gold article cited")
    elif not m["abstention_correct"]:
        reasons.append("answered an unanswerable question" if not m["abstained"] else "abstained but cited")
    if not m["language_match"]:
        reasons.append(f"answer language {m['prose_language']} != {m['lang']}")
    if m["unsupported_citations"]:
        reasons.append(f"{m['unsupported_citations']} unsupported citation(s)")
    return reasons


# ---------------------------------------------------------------------------------------------------------------
# Running


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def corpus_fingerprint(corpus_dir: Path) -> str:
    """A digest of a corpus folder's articles and metadata: the key of its evaluation index."""
    digest = hashlib.sha256()
    for path in sorted(Path(corpus_dir).glob("*")):
        if path.is_file() and (path.suffix == ".txt" or path.name == "articles.json"):
            digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def eval_index_dir(corpus_dir: Path, store: str = "faiss") -> Path:
    """Where `--corpus DIR` keeps DIR's index: a cache folder keyed by DIR's content (and the store, RAG_STORE, so
    evaluating both stores does not rebuild one over the other), never `index/`."""
    from app.config import PROJECT_ROOT

    key = corpus_fingerprint(corpus_dir)
    return PROJECT_ROOT / ".cache" / "eval-index" / (key if store == "faiss" else f"{key}-{store}")


def build_service(mode: str, settings=None, corpus_dir: Path | None = None, **overrides):
    """The service to evaluate; `overrides` replace settings (e.g. `evidence_model=None`)."""
    from app.config import Settings
    from app.embeddings import make_embedder
    from app.service import RagService

    embedder = None
    if settings is None:
        settings = Settings().model_copy(update=overrides)
        if corpus_dir is not None:
            if not Path(corpus_dir).is_dir():
                raise GoldError(f"--corpus {corpus_dir}: not a folder")
            settings = settings.model_copy(update={"corpus_dir": Path(corpus_dir),
                                                   "index_dir": eval_index_dir(corpus_dir, settings.store)})
        if mode == "extractive":
            settings = settings.model_copy(update={"llm_model": None})
        elif not settings.llm_model:
            raise GoldError("--mode llm needs a model: set RAG_LLM_MODEL (e.g. RAG_LLM_MODEL=ollama/qwen2.5)")
        # Every question pays its own embedding: the baseline comparison re-runs each query, and cached vectors
        # would time both systems without the step that costs most.
        embedder = make_embedder(settings, query_cache_size=0)
    return RagService(settings, embedder=embedder, progress=sys.stderr.isatty())


def _top_evidence(service, question: str, retrieval) -> dict:
    """The extractive answerer's best evidence score (after its answer-type filter), when it has a scorer."""
    answerer = service.answerer
    scorer = getattr(answerer, "scorer", None)
    if scorer is None:
        return {"top_evidence_score": None, "top_evidence_score_any": None}
    from app.answer.evidence import answer_type, has_answer_type

    evidence = scorer.score(retrieval)
    kind = answer_type(question)
    typed = [e for e in evidence if has_answer_type(e.text, kind, question)]
    return {
        "top_evidence_score": round(typed[0].score, 4) if typed else None,
        "top_evidence_score_any": round(evidence[0].score, 4) if evidence else None,
        "answer_type": kind,
    }


def run_questions(service, gold_rows: Sequence[dict], k: int) -> list[dict]:
    """Ask every question through RagService.ask_with_retrieval; returns per-question records (gold, output,
    metrics). Evidence scores are read from the retrieval the service returns with each answer."""
    raws = {article_id: article.raw for article_id, article in service.corpus.articles.items()}
    chunk_spans = {c.chunk_id: Span(c.article_id, c.start, c.end) for c in service.index.chunks}
    records: list[dict] = []
    for i, gold in enumerate(gold_rows, 1):
        gold_spans, missing = locate_quotes(gold["gold_quotes"], raws)
        for quote in missing:
            _log(f"warning: {gold['id']}: gold quote not found in {quote['article']}: {quote['quote'][:60]!r}")
        started = time.perf_counter()
        result = service.ask_with_retrieval(gold["question"], None, k)
        seconds = time.perf_counter() - started
        error = result.error.message if result.error is not None else None
        if result.answer is not None:
            answer = result.answer.model_dump()
        else:  # e.g. the LLM provider failed after retrieving: score an empty, non-abstaining answer on those hits
            answer = {"answer": "", "language": gold["lang"], "abstained": False, "citations": [],
                      "hits": [h.model_dump() for h in result.retrieval.hits], "mode": service.answerer.mode,
                      "timings_ms": {}}
        metrics = score_question(gold, answer, gold_spans, len(gold["gold_quotes"]), chunk_spans, raws, k)
        metrics["seconds"] = round(seconds, 4)
        records.append({
            "id": gold["id"],
            "gold": gold,
            "gold_spans": [{"article": s.article_id, "start": s.start, "end": s.end} for s in gold_spans],
            "gold_quotes_missing": missing,
            "answer": answer["answer"],
            "language": answer["language"],
            "abstained": answer["abstained"],
            "mode": answer["mode"],
            "error": error,
            "citations": answer["citations"],
            "hits": [_slim_hit(h) for h in answer["hits"][:k]],
            "timings_ms": answer.get("timings_ms", {}),
            "translated_question": result.retrieval.translated_question,
            **_top_evidence(service, gold["question"], result.retrieval),
            "metrics": metrics,
            "failures": metrics.pop("failures"),
        })
        status = "ok" if not records[-1]["failures"] else "FAIL: " + "; ".join(records[-1]["failures"])
        _log(f"[{i}/{len(gold_rows)}] {gold['id']} ({gold['lang']}, {gold['type']}) "
             f"{seconds * 1000:.0f} ms {status}")
    return records


def _slim_hit(hit: Mapping) -> dict:
    keys = ("rank", "chunk_id", "article_id", "start", "end", "score", "dense_score", "dense_rank", "bm25_score",
            "bm25_rank")
    return {key: hit.get(key) for key in keys} | {"text": hit.get("text", "")}


def summarize(records: Sequence[dict]) -> dict:
    metrics = [r["metrics"] for r in records]
    return {
        "overall": aggregate(metrics),
        "by_lang": breakdown(metrics, "lang"),
        "by_type": breakdown(metrics, "type"),
    }


def run_baseline(service, gold_rows: Sequence[dict], k: int, records: Sequence[dict]) -> dict:
    """LangChain's recipe on the same chunks and embedder vs our retriever: retrieval metrics and latency."""
    from tools.baseline import LangChainBaseline

    _log("building the langchain baseline (FAISS + BM25Retriever + EnsembleRetriever) ...")
    baseline = LangChainBaseline.build(service.index.chunks, service.embedder, k=k)
    # Warm both up once so neither pays first-call costs inside the timings.
    baseline.search(gold_rows[0]["question"], k)
    service.search(gold_rows[0]["question"], k)

    ours_m, theirs_m, ours_ms, theirs_ms, per_question = [], [], [], [], []
    for gold, record in zip(gold_rows, records):
        gold_spans = [Span(s["article"], s["start"], s["end"]) for s in record["gold_spans"]]
        started = time.perf_counter()
        theirs = [Span(*span) for span in baseline.search(gold["question"], k)]
        theirs_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        ours_hits = service.search(gold["question"], k).hits
        ours_ms.append((time.perf_counter() - started) * 1000)
        # Our metrics come from the hits the answer was built on (the same retrieval as service.search).
        ours = [Span(h["article_id"], h["start"], h["end"]) for h in record["hits"][:k]]
        if [(h.article_id, h.start, h.end) for h in ours_hits] != [(s.article_id, s.start, s.end) for s in ours]:
            _log(f"warning: {gold['id']}: service.search and ask retrieved different hits")
        base = {"answerable": bool(gold["answerable"]), "lang": gold["lang"], "type": gold["type"]}
        ours_m.append(base | retrieval_metrics(gold_spans, len(gold["gold_quotes"]), gold["gold_articles"], ours))
        theirs_m.append(base | retrieval_metrics(gold_spans, len(gold["gold_quotes"]), gold["gold_articles"], theirs))
        per_question.append({"id": gold["id"], "hits": [[s.article_id, s.start, s.end] for s in theirs],
                             "quotes_retrieved": theirs_m[-1]["quotes_retrieved"],
                             "reciprocal_rank": theirs_m[-1]["reciprocal_rank"], "ms": round(theirs_ms[-1], 2)})

    def compare(ours_group: Sequence[Mapping], theirs_group: Sequence[Mapping], ours_lat, theirs_lat) -> dict:
        a, b = aggregate_retrieval(ours_group), aggregate_retrieval(theirs_group)
        a["median_latency_ms"] = round(statistics.median(ours_lat), 2)
        b["median_latency_ms"] = round(statistics.median(theirs_lat), 2)
        ratio = {key: (_round(a[key] / b[key]) if a[key] is not None and b[key] else None)
                 for key in (*RETRIEVAL_KEYS, "median_latency_ms")}
        return {"ours": a, "theirs": b, "ratio_ours_over_theirs": ratio}

    by_lang = {}
    for lang in sorted({g["lang"] for g in gold_rows}):
        idx = [i for i, g in enumerate(gold_rows) if g["lang"] == lang]
        by_lang[lang] = compare([ours_m[i] for i in idx], [theirs_m[i] for i in idx],
                                [ours_ms[i] for i in idx], [theirs_ms[i] for i in idx])
    return {
        "name": "langchain",
        "recipe": "langchain_community FAISS.from_texts + BM25Retriever.from_texts (default preprocessing), "
                  f"langchain_classic EnsembleRetriever weights 0.5/0.5, each k={k}",
        "k": k,
        "build_seconds": round(baseline.build_seconds, 2),
        "latency": "wall-clock ms per query: RagService.search vs LangChainBaseline.search (after one warm-up)",
        "overall": compare(ours_m, theirs_m, ours_ms, theirs_ms),
        "by_lang": by_lang,
        "per_question": per_question,
    }


# ---------------------------------------------------------------------------------------------------------------
# Reports


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _table(rows: Mapping[str, Mapping], keys: Sequence[str], first: str) -> list[str]:
    short = {"retrieval_recall_at_k": "R@k quote", "retrieval_article_recall_at_k": "R@k article",
             "citation_precision": "cit P", "citation_precision_strict": "cit P strict", "citation_recall": "cit R",
             "quote_recall": "quote R", "abstention_accuracy": "abstain acc", "false_abstention_rate": "false abst",
             "language_match": "lang match", "must_include_rate": "must_include",
             "unsupported_citation_rate": "unsupported", "median_latency_ms": "median ms"}
    lines = ["| " + " | ".join([first, *(short.get(k, k) for k in keys)]) + " |",
             "|" + "---|" * (len(keys) + 1)]
    for name, values in rows.items():
        lines.append("| " + " | ".join([name, *(_fmt(values.get(k)) for k in keys)]) + " |")
    return lines


def _one_line(text: str, limit: int = 220) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_markdown(report: Mapping) -> str:
    s = report["summary"]
    lines = [f"# Evaluation: {report['gold_file']}", "",
             f"{report['created_at']} · mode {report['config']['mode']} · top_k {report['config']['top_k']} · "
             f"{s['overall']['n']} questions · {report['total_seconds']:.1f} s"
             + (f" · commit {report['git_commit'][:10]}" if report.get("git_commit") else "")
             + (" (uncommitted changes)" if report.get("git_dirty") else ""), ""]
    lines += ["## Overall, by language, by type", ""]
    rows = {"overall": s["overall"], **{f"lang={k}": v for k, v in s["by_lang"].items()},
            **{f"type={k}": v for k, v in s["by_type"].items()}}
    lines += _table(rows, METRIC_KEYS, "group") + [""]
    lines += ["Retrieval and citation metrics count answerable questions only; abstention accuracy unanswerable "
              "ones; `–` means there is nothing to count. Definitions: eval/README.md and app/eval.py.", ""]

    if report.get("baseline"):
        b = report["baseline"]
        lines += [f"## Baseline: {b['name']} (k={b['k']}, built in {b['build_seconds']} s)", "", b["recipe"], "",
                  b["latency"], ""]
        keys = (*RETRIEVAL_KEYS, "median_latency_ms")
        for group, cmp in [("overall", b["overall"]), *((f"lang={k}", v) for k, v in b["by_lang"].items())]:
            lines += [f"**{group}** (n answerable = {cmp['ours']['n']})", ""]
            lines += _table({"ours": cmp["ours"], "langchain": cmp["theirs"],
                             "ours / langchain": cmp["ratio_ours_over_theirs"]}, keys, "system") + [""]

    scored = [r for r in report["questions"] if r.get("top_evidence_score") is not None]
    ans = [r["top_evidence_score"] for r in scored if r["metrics"]["answerable"]]
    una = [r["top_evidence_score"] for r in scored if not r["metrics"]["answerable"]]
    if ans or una:
        lines += ["## Top evidence scores (extractive abstention threshold "
                  f"{report['config'].get('abstain_threshold')})", "",
                  f"- answerable: n={len(ans)}" + (f", min {min(ans):.3f}, median {statistics.median(ans):.3f}"
                                                  if ans else ""),
                  f"- unanswerable: n={len(una)}" + (f", max {max(una):.3f}, values "
                                                    + ", ".join(f"{v:.3f}" for v in sorted(una)) if una else ""),
                  ""]

    failed = [r for r in report["questions"] if r["failures"]]
    lines += [f"## Failed questions ({len(failed)} of {len(report['questions'])})", ""]
    for r in failed:
        g = r["gold"]
        tag = "" if g["answerable"] or g["type"] == "unanswerable" else " · not answerable"
        lines += [f"### {r['id']} · {g['lang']} · {g['type']}{tag}", "",
                  f"**Q:** {g['question']}", "",
                  "**Why:** " + "; ".join(r["failures"]), ""]
        if g.get("answer"):
            lines += [f"**Gold answer:** {_one_line(g['answer'], 400)}", ""]
        if g.get("must_include"):
            lines += ["**must_include:** " + ", ".join(g["must_include"]), ""]
        if r.get("error"):
            lines += [f"**Error:** {r['error']}", ""]
        lines += ["**System answer** (" + ("abstained" if r["abstained"] else "answered")
                  + (f", top evidence {r['top_evidence_score']:.3f}" if r.get("top_evidence_score") is not None
                     else "") + "):", "", "> " + _one_line(r["answer"], 600), ""]
        spans = [(s["article"], s["start"], s["end"]) for s in r["gold_spans"]]
        if g["gold_quotes"]:
            lines += ["Gold quotes:", ""]
            for q in g["gold_quotes"]:
                lines.append(f"- `{q['article']}` {_one_line(q['quote'], 160)}")
            lines += [f"- spans: {', '.join(f'{a}[{s}:{e}]' for a, s, e in spans) or '(none located)'}", ""]
        gold_spans = [Span(*span) for span in spans]

        def mark(article: str, start: int, end: int, gold_spans=gold_spans, gold_articles=g["gold_articles"]) -> str:
            if any(overlaps(Span(article, start, end), span) for span in gold_spans):
                return "quote"
            return "article" if article in gold_articles else "–"

        lines += ["| rank | chunk | span | gold | dense# | bm25# | text |", "|---|---|---|---|---|---|---|"]
        for h in r["hits"]:
            lines.append(f"| {h['rank']} | `{h['chunk_id']}` | {h['start']}–{h['end']} | "
                         f"{mark(h['article_id'], h['start'], h['end'])} | {_fmt(h['dense_rank'])} | "
                         f"{_fmt(h['bm25_rank'])} | {_one_line(h['text'], 110).replace('|', '¦')} |")
        lines.append("")
        if r["citations"]:
            lines += ["| [n] | chunk | quote span | gold (chunk) | supported | quote |", "|---|---|---|---|---|---|"]
            for c in r["citations"]:
                chunk = report["_chunks"].get(c["chunk_id"])
                where = mark(*chunk) if chunk else "?"
                lines.append(f"| [{c['n']}] | `{c['chunk_id']}` | {c['start']}–{c['end']} | {where} | "
                             f"{'yes' if c['supported'] else 'no'} ({c['support']:.2f}) | "
                             f"{_one_line(c['quote'], 110).replace('|', '¦')} |")
            lines.append("")
    return "\n".join(lines) + "\n"


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=Path(__file__).resolve().parent, capture_output=True, text=True,
                             timeout=5)
        return out.stdout.strip() if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def _default_out() -> Path:
    from app.config import PROJECT_ROOT

    return PROJECT_ROOT / "eval" / "runs" / datetime.now().strftime("%Y%m%dT%H%M%S")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m app.eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("gold", type=Path, help="gold questions, one JSON object a line (format: eval/README.md)")
    parser.add_argument("--mode", choices=("extractive", "llm"), default="extractive",
                        help="extractive (offline) or llm (the model in RAG_LLM_MODEL)")
    parser.add_argument("--corpus", type=Path, default=None,
                        help="score against the articles in this folder (indexed into a cache keyed by its content; "
                             "default: the service's corpus, RAG_CORPUS_DIR)")
    parser.add_argument("--lang", choices=("ar", "en"), default=None,
                        help="only the questions in this language (e.g. the generative mode's English questions)")
    parser.add_argument("--top-k", type=int, default=None, help="chunks to retrieve (default: the service's top_k)")
    parser.add_argument("--out", type=Path, default=None, help="report folder (default eval/runs/<timestamp>)")
    parser.add_argument("--baseline", choices=("langchain",), default=None,
                        help="also run LangChain's stock hybrid retriever and compare retrieval")
    args = parser.parse_args(argv)
    if args.top_k is not None and not 1 <= args.top_k <= 50:
        parser.error("--top-k must be between 1 and 50")
    return args


TABLE_KEYS = ("retrieval_recall_at_k", "citation_precision", "citation_precision_strict", "citation_recall",
              "quote_recall", "abstention_accuracy", "false_abstention_rate", "language_match", "must_include_rate",
              "unsupported_citation_rate", "translated_quote_rate", "must_include_with_translations_rate",
              "median_ask_ms")


def side_by_side(reports: Mapping[str, Mapping]) -> str:
    """A Markdown table of the overall figures of several reports (name -> report.json), with their mean."""
    names = list(reports)
    rows = ["| metric | " + " | ".join(names) + " | mean |", "| --- |" + " --- |" * (len(names) + 1)]
    for key in TABLE_KEYS:
        values = [reports[name]["summary"]["overall"].get(key) for name in names]
        known = [v for v in values if v is not None]
        mean = sum(known) / len(known) if len(known) == len(values) else None
        rows.append(f"| {key} | " + " | ".join(_fmt(v) for v in values) + f" | {_fmt(mean)} |")
    return "\n".join(rows)


def table_main(paths: Sequence[str]) -> int:
    """`python -m app.eval table RUN_DIR...`: the runs' overall figures side by side."""
    reports = {}
    for path in paths:
        report = Path(path) / "report.json" if Path(path).is_dir() else Path(path)
        try:
            reports[report.parent.name] = json.loads(report.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            _log(f"error: cannot read {report}: {exc}")
            return 2
    print(side_by_side(reports))
    return 0


def main(argv: Sequence[str] | None = None, *, service=None) -> int:
    """Run the evaluation; `service` lets tests pass a ready RagService. Returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["table"]:
        return table_main(argv[1:])
    args = parse_args(argv)
    started = time.perf_counter()
    try:
        gold_rows = [row for row in load_gold(args.gold) if args.lang is None or row["lang"] == args.lang]
        if service is None:
            service = build_service(args.mode, corpus_dir=args.corpus)
    except GoldError as exc:
        _log(f"error: {exc}")
        return 2
    if service.answerer.mode != args.mode:
        _log(f"error: the service answers in {service.answerer.mode} mode, not {args.mode}")
        return 2
    k = args.top_k or service.settings.top_k
    out_dir = args.out or _default_out()
    out_dir.mkdir(parents=True, exist_ok=True)

    _log(f"evaluating {len(gold_rows)} questions from {args.gold} (mode {args.mode}, top_k {k}) ...")
    t_questions = time.perf_counter()
    records = run_questions(service, gold_rows, k)
    questions_seconds = time.perf_counter() - t_questions
    summary = summarize(records)
    summary["overall"]["seconds"] = round(questions_seconds, 2)
    summary["overall"]["median_ask_ms"] = round(statistics.median(r["metrics"]["seconds"] for r in records) * 1000, 2)
    summary["overall"]["errors"] = sum(1 for r in records if r["error"])
    summary["overall"]["failed_questions"] = sum(1 for r in records if r["failures"])

    baseline = run_baseline(service, gold_rows, k, records) if args.baseline == "langchain" else None

    from dataclasses import asdict, is_dataclass

    from app.answer.llm import MAX_SENTENCES, SUPPORT_THRESHOLD

    s = service.settings
    # The rules the answers were chosen by (an LLM answerer's are its selector's); flat, as report.md reads them.
    rules = getattr(getattr(service.answerer, "selector", service.answerer), "rules", None)
    answer_rules = asdict(rules) if is_dataclass(rules) else {}
    report = {
        "gold_file": str(args.gold),
        "gold_sha256": hashlib.sha256(Path(args.gold).read_bytes()).hexdigest(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_commit": _git("rev-parse", "HEAD") or None,
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "config": {"mode": args.mode, "top_k": k, "llm_model": s.llm_model,
                   "llm_strategy": getattr(service.answerer, "strategy", None), "embedder": service.embedder.name,
                   "evidence_model": str(s.evidence_model) if s.evidence_model else None,
                   "chunk_size": s.chunk_size, "chunk_overlap": s.chunk_overlap,
                   **asdict(service.retriever.rules), **answer_rules,
                   "answer_max_sentences": MAX_SENTENCES, "support_threshold": SUPPORT_THRESHOLD,
                   "index_built_at": service.index.manifest.get("built_at"),
                   "index_counts": service.index.manifest.get("counts")},
        "summary": summary,
        "baseline": baseline,
        "questions": records,
        "total_seconds": round(time.perf_counter() - started, 2),
    }
    (out_dir / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    chunks = {c.chunk_id: (c.article_id, c.start, c.end) for c in service.index.chunks}
    (out_dir / "report.md").write_text(render_markdown({**report, "_chunks": chunks}), encoding="utf-8")
    _log(f"wrote {out_dir / 'report.json'} and {out_dir / 'report.md'} in {report['total_seconds']} s")

    line = {**summary["overall"], "by_lang": summary["by_lang"], "by_type": summary["by_type"],
            "mode": args.mode, "top_k": k, "report": str(out_dir / "report.json")}
    if baseline:
        line["baseline"] = {key: baseline[key] for key in ("name", "k", "build_seconds", "overall", "by_lang")}
    sys.stdout.flush()
    print(json.dumps(line, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
