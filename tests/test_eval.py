"""The evaluation module: metric functions on hand-made records, and one end-to-end run of app.eval's main."""

from __future__ import annotations

import json

import pytest

from app import eval as ev
from app.eval import Span

A, B, C = "000_a", "001_b", "002_c"


# --- quotes and spans ------------------------------------------------------------------------------------------


def test_overlap_is_half_open():
    assert ev.overlaps(Span(A, 0, 10), Span(A, 9, 20))
    assert not ev.overlaps(Span(A, 0, 10), Span(A, 10, 20))
    assert not ev.overlaps(Span(A, 0, 10), Span(B, 0, 10))


def test_find_quote_exact_and_no_break_space():
    raw = "قال الوزير إن\u00a0الاتفاق مهم. وأضاف شيئاً آخر."
    assert ev.find_quote(raw, "إن\u00a0الاتفاق مهم") == (11, 25)
    # A quote typed with an ordinary space still finds the span that holds U+00A0.
    assert ev.find_quote(raw, "إن الاتفاق مهم") == (11, 25)
    assert ev.find_quote(raw, "غير موجود") is None


def test_locate_quotes_reports_missing():
    raws = {A: "one two three", B: "four five"}
    spans, missing = ev.locate_quotes(
        [{"article": A, "quote": "two"}, {"article": B, "quote": "six"}, {"article": C, "quote": "x"}], raws)
    assert spans == [Span(A, 4, 7)]
    assert [m["article"] for m in missing] == [B, C]


# --- metric families -------------------------------------------------------------------------------------------


def test_retrieval_metrics_quote_article_and_rank():
    gold = [Span(A, 100, 150), Span(B, 0, 40)]
    hits = [Span(C, 0, 500), Span(A, 120, 400), Span(B, 500, 900)]
    m = ev.retrieval_metrics(gold, 2, [A, B], hits)
    assert m["quotes_retrieved"] == 1  # B's hit is the wrong part of the article
    assert m["retrieval_recall_at_k"] == 0.5
    assert m["retrieval_article_recall_at_k"] == 1.0
    assert m["reciprocal_rank"] == 0.5 and m["first_gold_rank"] == 2
    # An unlocatable gold quote still counts in the denominator.
    assert ev.retrieval_metrics(gold, 3, [A, B], hits)["retrieval_recall_at_k"] == pytest.approx(1 / 3)
    assert ev.retrieval_metrics(gold, 2, [A, B], [Span(C, 0, 9)])["reciprocal_rank"] == 0.0


def test_citation_metrics_by_cited_chunk():
    gold = [Span(A, 100, 150), Span(B, 0, 40)]
    cited = [Span(A, 0, 120), Span(A, 300, 700), Span(C, 0, 50)]
    m = ev.citation_metrics(gold, 2, [A, B], cited)
    assert m == {"n_citations": 3, "citations_in_gold_article": 2, "citations_on_gold_quote": 1,
                 "citation_recall": 0.5, "quote_recall": 0.5}


def test_abstention_metrics():
    assert ev.abstention_metrics(False, True, 0) == {"abstention_correct": True, "false_abstention": None}
    assert ev.abstention_metrics(False, True, 1)["abstention_correct"] is False  # abstained but cited
    assert ev.abstention_metrics(False, False, 0)["abstention_correct"] is False
    assert ev.abstention_metrics(True, True, 0) == {"abstention_correct": None, "false_abstention": True}
    assert ev.abstention_metrics(True, False, 2)["false_abstention"] is False


def test_language_match_ignores_quotes_and_markers():
    english = 'Here is what the sources say: «روسيا وإيران تعمقان علاقاتهما العسكرية في تحد مشترك» [1]'
    assert ev.prose_language(english) == "en"
    assert ev.language_match(english, "en") and not ev.language_match(english, "ar")
    curly = "He said “هذه هي أول مذكرة تفاهم من هذا النوع ويمكن اعتبارها نقطة تحول” [2]."
    assert ev.language_match(curly, "en")
    straight = 'Officials said "إيران تخطط لإرسال المزيد من المسيرات إلى روسيا" [1, 2]'
    assert ev.language_match(straight, "en")
    arabic = "بحسب واشنطن بوست: «Iran plans to send more drones» [1]"
    assert ev.language_match(arabic, "ar") and not ev.language_match(arabic, "en")
    assert ev.language_match("«روسيا» [1]", "en")  # no prose letters left: counts as matching
    assert not ev.language_match("The answer is روسيا وإيران والصين معاً في المناورات", "en")


def test_must_include_normalises_arabic_and_case():
    answer = "أجرى الجانبان مناورتين في بَحْر قَزْوين وفي المحيط الهندي"
    ok, missing = ev.must_include_check(answer, ["بحر قزوين", "المحيط الهندى"])
    assert ok and missing == []
    assert ev.must_include_check("Iran sent DRONES", ["drones"]) == (True, [])
    assert ev.must_include_check("المدرسة", ["المدرسه"]) == (True, [])
    assert ev.must_include_check("Iran sent drones", ["drones", "missiles"]) == (False, ["missiles"])
    assert ev.must_include_check("100,000 troops", ["100,000"]) == (True, [])


def test_language_match_skips_a_quote_that_quotes_someone():
    answer = "- The outlet reports: «وقال الوزير إن «الملء الثالث سيتم في موعده» أمام البرلمان» [1]"
    assert ev.language_match(answer, "en") and not ev.language_match(answer, "ar")


def test_must_include_unifies_digits_and_drops_thousands_separators():
    for answer in ("nearly 1,900 workers", "nearly 1900 workers", "نحو ١٩٠٠ عامل", "نحو ١٬٩٠٠ عامل"):
        assert ev.must_include_check(answer, ["1,900"]) == (True, []), answer
        assert ev.must_include_check(answer, ["١٩٠٠"]) == (True, []), answer
    assert ev.must_include_check("a 2.4 billion line", ["2.4"]) == (True, [])
    assert ev.must_include_check("costs 1,25 and 19", ["125"])[0] is False  # a decimal comma is no separator


def test_corpus_cache_is_keyed_by_content_and_never_the_service_index(tmp_path):
    from app.config import Settings

    (tmp_path / "a.txt").write_text("نص المقال الأول", encoding="utf-8")
    first = ev.eval_index_dir(tmp_path)
    assert first == ev.eval_index_dir(tmp_path)
    assert first.resolve() != Settings().index_dir.resolve() and Settings().index_dir not in first.parents
    (tmp_path / "a.txt").write_text("نص المقال الأول، معدلاً", encoding="utf-8")
    assert ev.eval_index_dir(tmp_path) != first
    (tmp_path / "notes.md").write_text("not an article", encoding="utf-8")
    assert ev.corpus_fingerprint(tmp_path) == ev.eval_index_dir(tmp_path).name


def test_table_puts_runs_side_by_side_with_their_mean(tmp_path, capsys):
    for name, recall in (("one", 0.5), ("two", 1.0)):
        (tmp_path / name).mkdir()
        report = {"summary": {"overall": {"retrieval_recall_at_k": recall, "abstention_accuracy": None}}}
        (tmp_path / name / "report.json").write_text(json.dumps(report))
    assert ev.main(["table", str(tmp_path / "one"), str(tmp_path / "two")]) == 0
    table = capsys.readouterr().out
    assert "| metric | one | two | mean |" in table
    assert "| retrieval_recall_at_k | 0.500 | 1.000 | 0.750 |" in table
    assert ev.main(["table", str(tmp_path / "missing")]) == 2


def test_citation_verified():
    raw = "abcdefghijklmnopqrstuvwxyz"
    chunk = Span(A, 2, 12)
    good = {"article_id": A, "start": 3, "end": 6, "quote": "def", "supported": True}
    assert ev.citation_verified(good, raw, chunk) == (True, None)
    assert ev.citation_verified({**good, "quote": "xyz"}, raw, chunk)[0] is False
    assert ev.citation_verified({**good, "start": 10, "end": 14, "quote": "klmn"}, raw, chunk)[1] == \
        "span outside the cited chunk"
    assert ev.citation_verified({**good, "supported": False}, raw, chunk) == (False, "flagged unsupported")
    assert ev.citation_verified(good, None, chunk)[0] is False
    assert ev.citation_verified(good, raw, None)[0] is False


# --- one question end to end, and aggregation ------------------------------------------------------------------


def _answer(text, citations, hits, abstained=False):
    return {"answer": text, "abstained": abstained, "citations": citations,
            "hits": [{"article_id": a, "start": s, "end": e} for a, s, e in hits]}


def _citation(article, chunk_id, start, end, raws, supported=True):
    return {"article_id": article, "chunk_id": chunk_id, "start": start, "end": end,
            "quote": raws[article][start:end], "supported": supported}


RAWS = {A: "x" * 1000, B: "y" * 1000, C: "z" * 1000}
CHUNKS = {f"{A}#0": Span(A, 0, 200), f"{A}#1": Span(A, 150, 400), f"{B}#0": Span(B, 0, 300),
          f"{C}#0": Span(C, 0, 300)}


def _score(gold, answer, k=5):
    spans = [Span(q["article"], q["start"], q["end"]) for q in gold.pop("_spans", [])]
    return ev.score_question(gold, answer, spans, len(gold["gold_quotes"]), CHUNKS, RAWS, k)


def _gold(answerable=True, lang="en", qtype="factoid", articles=(A,), spans=((A, 10, 50),), must=()):
    return {"id": "q", "lang": lang, "type": qtype, "answerable": answerable, "gold_articles": list(articles),
            "gold_quotes": [{"article": a, "quote": "?"} for a, _, _ in spans],
            "_spans": [{"article": a, "start": s, "end": e} for a, s, e in spans], "must_include": list(must)}


def test_non_gold_citation_lowers_precision_by_its_share():
    # Question 1 cites its gold article twice (one chunk on the quote) and one other article once.
    q1 = _score(_gold(must=["answer"]), _answer(
        "The answer [1][2][3]",
        [_citation(A, f"{A}#0", 20, 30, RAWS), _citation(A, f"{A}#1", 300, 310, RAWS),
         _citation(C, f"{C}#0", 0, 10, RAWS)],
        [(A, 0, 200), (C, 0, 300)]))
    # Question 2 (Arabic) cites only its gold article's quote chunk.
    q2 = _score(_gold(lang="ar", articles=(B,), spans=((B, 100, 120),)), _answer(
        "هذا ما تقوله المصادر: «…» [1]", [_citation(B, f"{B}#0", 100, 120, RAWS)], [(C, 0, 300), (B, 0, 300)]))
    # An unanswerable question that the system answered anyway, with a citation flagged unsupported.
    q3 = _score(_gold(answerable=False, qtype="unanswerable", articles=(), spans=()), _answer(
        "Something [1]", [_citation(C, f"{C}#0", 0, 10, RAWS, supported=False)], [(C, 0, 300)]))
    assert q1["citation_recall"] == 1.0 and q1["quote_recall"] == 1.0 and q1["must_include"] is True
    assert "1 citation(s) outside gold articles" in q1["failures"]
    assert q2["failures"] == []
    assert q3["failures"] == ["answered an unanswerable question", "1 unsupported citation(s)"]

    overall = ev.aggregate([q1, q2, q3])
    assert overall["n"] == 3
    assert overall["citation_precision"] == 0.75  # 3 of 4 citations on answerable questions are in gold articles
    assert overall["citation_precision_strict"] == 0.5  # A#0 and B#0 overlap a gold quote; A#1 and C#0 do not
    assert overall["citation_recall"] == 1.0
    assert overall["retrieval_recall_at_k"] == 1.0
    assert overall["mrr"] == 0.75  # ranks 1 and 2
    assert overall["abstention_accuracy"] == 0.0
    assert overall["false_abstention_rate"] == 0.0
    assert overall["must_include_rate"] == 1.0
    assert overall["language_match"] == 1.0
    assert overall["unsupported_citation_rate"] == 0.2  # 1 of all 5 citations
    assert set(ev.METRIC_KEYS) <= set(overall)

    by_type = ev.breakdown([q1, q2, q3], "type")
    assert by_type["factoid"]["abstention_accuracy"] is None
    assert by_type["unanswerable"]["citation_precision"] is None
    assert by_type["unanswerable"]["retrieval_recall_at_k"] is None
    assert ev.breakdown([q1, q2, q3], "lang")["ar"]["citation_precision"] == 1.0


def test_abstaining_on_answerable_question_scores_zero_recall():
    m = _score(_gold(must=["x"]), _answer("The sources do not answer this question.", [], [(A, 0, 200)],
                                          abstained=True))
    assert m["false_abstention"] is True and m["citation_recall"] == 0.0 and m["quote_recall"] == 0.0
    assert m["must_include"] is False
    agg = ev.aggregate([m])
    assert agg["citation_precision"] is None and agg["false_abstention_rate"] == 1.0


def test_load_gold_validates(tmp_path):
    path = tmp_path / "g.jsonl"
    path.write_text('{"id": "a", "lang": "ar", "type": "factoid", "question": "س؟", "answerable": true}\n\n',
                    encoding="utf-8")
    rows = ev.load_gold(path)
    assert rows[0]["gold_quotes"] == [] and rows[0]["must_include"] == []
    path.write_text('{"id": "a", "lang": "fr", "type": "x", "question": "q", "answerable": true}\n', encoding="utf-8")
    with pytest.raises(ev.GoldError, match="lang"):
        ev.load_gold(path)
    path.write_text('{"id": "a"}\n', encoding="utf-8")
    with pytest.raises(ev.GoldError, match="missing field"):
        ev.load_gold(path)


def test_llm_mode_without_model_fails_clearly(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.delenv("RAG_LLM_MODEL", raising=False)
    gold = tmp_path / "g.jsonl"
    gold.write_text('{"id": "a", "lang": "en", "type": "factoid", "question": "q?", "answerable": false}\n')
    assert ev.main([str(gold), "--mode", "llm", "--out", str(tmp_path / "out")]) == 2
    assert "RAG_LLM_MODEL" in capsys.readouterr().err


# --- the baseline adapter, on three tiny chunks ----------------------------------------------------------------


def test_langchain_baseline_on_tiny_chunks():
    pytest.importorskip("langchain_community")
    pytest.importorskip("rank_bm25")
    import numpy as np

    from app.chunking import Chunk
    from tools.baseline import LangChainBaseline

    vocab = ["drones", "missiles", "caspian", "navy", "oil"]

    class BagEmbedder:
        name, dim = "bag", len(vocab)

        def _embed(self, texts):
            v = np.array([[t.lower().split().count(w) + 0.01 for w in vocab] for t in texts], dtype=np.float32)
            return v / np.linalg.norm(v, axis=1, keepdims=True)

        def embed_queries(self, texts):
            return self._embed(texts)

        def embed_passages(self, texts, *, progress=False):
            return self._embed(texts)

    chunks = [Chunk(f"{A}#0", A, 0, 20, "iran sent drones drones"), Chunk(f"{B}#0", B, 5, 30, "navy in the caspian"),
              Chunk(f"{C}#0", C, 7, 40, "oil and missiles")]
    baseline = LangChainBaseline.build(chunks, BagEmbedder(), k=2)
    assert baseline.search("caspian navy", 1) == [(B, 5, 30)]
    top = baseline.search("drones", 2)
    assert top[0] == (A, 0, 20) and len(top) == 2


# --- the whole command on three questions ----------------------------------------------------------------------

# Quotes copied from seeds/001_e678962533ece1ec.txt and seeds/004_73bfb09cf5028971.txt.
MINI_GOLD = [
    {"id": "t-ar", "lang": "ar", "type": "factoid",
     "question": "أين كان قائد البحرية الإيرانية حسين خانزادي عند توقيع مذكرة التفاهم العسكرية؟",
     "answerable": True, "gold_articles": ["001_e678962533ece1ec"],
     "gold_quotes": [{"article": "001_e678962533ece1ec",
                      "quote": "خلال زيارة قائد البحرية الإيرانية حسين خانزادي إلى سان بطرسبرج الروسية"}],
     "answer": "في سان بطرسبرج.", "must_include": ["سان بطرسبرج"]},
    {"id": "t-en", "lang": "en", "type": "cross_lingual_factoid",
     "question": "What did Moscow and Tehran decide on 1 June about military cooperation and arms sales?",
     "answerable": True, "gold_articles": ["004_73bfb09cf5028971"],
     "gold_quotes": [{"article": "004_73bfb09cf5028971",
                      "quote": "والتي بلغت ذروتها في قرار صدر قبل يومين (1 يونيو/حزيران) لتوسيع محادثات التعاون "
                               "العسكري الثنائي ومبيعات الأسلحة الروسية لإيران"}],
     "answer": "To expand bilateral military cooperation talks and Russian arms sales to Iran.", "must_include": ["1"]},
    {"id": "t-un", "lang": "en", "type": "unanswerable",
     "question": "Which team won the 1998 football World Cup final, according to the articles?", "answerable": False,
     "gold_articles": [], "gold_quotes": [], "answer": "The articles do not say.", "must_include": []},
]


def test_main_writes_reports_and_prints_summary_last(service, tmp_path, capsys):
    gold = tmp_path / "mini.jsonl"
    gold.write_text("\n".join(json.dumps(row, ensure_ascii=False) for row in MINI_GOLD) + "\n", encoding="utf-8")
    out = tmp_path / "run"
    assert ev.main([str(gold), "--out", str(out), "--top-k", "5"], service=service) == 0

    captured = capsys.readouterr()
    summary = json.loads(captured.out.strip().splitlines()[-1])
    for key in ev.METRIC_KEYS:
        assert key in summary, key
        for group in ("ar", "en"):
            assert key in summary["by_lang"][group]
        for group in ("factoid", "cross_lingual_factoid", "unanswerable"):
            assert key in summary["by_type"][group]
    assert summary["n"] == 3 and summary["by_lang"]["en"]["n"] == 2
    assert "[3/3]" in captured.err  # progress goes to stderr

    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert [q["id"] for q in report["questions"]] == ["t-ar", "t-en", "t-un"]
    first = report["questions"][0]
    assert first["gold_spans"] and not first["gold_quotes_missing"]  # the quote was located in the raw text
    assert len(first["hits"]) <= 5 and "metrics" in first and "failures" in first
    assert report["summary"]["overall"] == {k: v for k, v in summary.items()
                                            if k not in ("by_lang", "by_type", "mode", "top_k", "report")}
    markdown = (out / "report.md").read_text(encoding="utf-8")
    assert "## Overall, by language, by type" in markdown and "type=unanswerable" in markdown


def _llm_service(service, **answerer_kwargs):
    """The shared service with a generative answerer whose model is mocked (no network). The "passages" strategy
    by default: the model (the mock) is asked every question, so [1] is the top hit."""
    import copy

    from app.answer.llm import LLMAnswerer

    settings = service.settings.model_copy(update={"llm_model": "openai/mock-model"})
    llm = copy.copy(service)
    llm.settings = settings
    llm.answerer = LLMAnswerer(service.index, service.corpus, service.embedder, settings,
                               **{"strategy": "passages", **answerer_kwargs})
    return llm


def _write_gold(tmp_path):
    gold = tmp_path / "mini.jsonl"
    gold.write_text("\n".join(json.dumps(row, ensure_ascii=False) for row in MINI_GOLD) + "\n", encoding="utf-8")
    return gold


def test_main_llm_mode_scores_generated_answers(service, tmp_path, capsys):
    llm = _llm_service(service, mock_response="Iran and Russia signed a memorandum in St Petersburg [1].")
    assert ev.main([str(_write_gold(tmp_path)), "--mode", "llm", "--out", str(tmp_path / "run")], service=llm) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["mode"] == "llm" and summary["errors"] == 0
    assert summary["abstention_accuracy"] == 0.0  # the mock answers the unanswerable question too
    report = json.loads((tmp_path / "run" / "report.json").read_text(encoding="utf-8"))
    assert all(len(q["citations"]) == 1 and q["mode"] == "llm" for q in report["questions"])
    # [1] is the top hit; its citation is judged by that chunk.
    assert report["questions"][0]["citations"][0]["chunk_id"] == report["questions"][0]["hits"][0]["chunk_id"]
    # The extractive mode is refused for a generative service rather than silently mislabelled.
    assert ev.main([str(_write_gold(tmp_path)), "--out", str(tmp_path / "x")], service=llm) == 2


def test_main_llm_provider_failure_is_recorded(service, tmp_path, capsys):
    def broken(**_):
        raise RuntimeError("provider down")

    llm = _llm_service(service, completion=broken)
    assert ev.main([str(_write_gold(tmp_path)), "--mode", "llm", "--out", str(tmp_path / "run")], service=llm) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["errors"] == 3 and summary["must_include_rate"] == 0.0
    report = json.loads((tmp_path / "run" / "report.json").read_text(encoding="utf-8"))
    first = report["questions"][0]
    assert "provider down" in first["error"] and first["hits"]  # retrieval still scored
    assert "**Error:**" in (tmp_path / "run" / "report.md").read_text(encoding="utf-8")


def test_evidence_scores_come_from_the_questions_own_retrieval_not_a_concurrent_search(service, monkeypatch):
    """The service's start-up warm-up searches from another thread; a search finishing between a question's
    retrieval and the reading of its evidence scores must not stand in for the question's."""
    import threading

    original_ask = service.ask_with_retrieval

    def ask_then_search_elsewhere(question, lang=None, top_k=None):
        result = original_ask(question, lang, top_k)
        other = threading.Thread(target=lambda: service.retriever.search("روسيا وإيران", 1))
        other.start()
        other.join()
        return result

    monkeypatch.setattr(service, "ask_with_retrieval", ask_then_search_elsewhere)
    gold = MINI_GOLD[1]  # English: its evidence score has no lexical part, the Arabic warm-up query's has
    (record,) = ev.run_questions(service, [gold], 5)
    own = service.answerer.scorer.score(service.retriever.search(gold["question"], 5))
    assert record["top_evidence_score_any"] == round(own[0].score, 4)
