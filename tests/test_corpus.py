"""Corpus loading and cleaning, and chunking whose spans index the raw article."""

import json

import pytest
from conftest import DEV_SET, SEEDS

from app.chunking import Chunker
from app.corpus import load_corpus, make_article
from app.errors import CorpusError


@pytest.fixture(scope="module")
def corpus():
    return load_corpus(SEEDS)


def _body(article) -> str:
    return "\n".join(article.raw[s:e] for s, e in article.blocks)


def test_seed_corpus_has_five_articles_with_metadata(corpus):
    assert len(corpus) == 5
    hawar = corpus.get("001_e678962533ece1ec")
    assert hawar.meta.source_en == "Hawar News Agency"
    assert hawar.meta.original_en == "Al-Monitor"
    assert hawar.title.startswith("روسيا تُعمّق العلاقات العسكرية")
    assert corpus.get("004_73bfb09cf5028971").meta.date == "2021-06-05"


def test_cleaning_removes_boilerplate(corpus):
    bodies = {article_id: _body(a) for article_id, a in corpus.articles.items()}
    assert "انضم إلى قناتنا" not in bodies["000_362a69a8ed804e80"]
    assert "Google News" not in bodies["000_362a69a8ed804e80"]
    assert "تأسست عام 2011" not in bodies["001_e678962533ece1ec"]
    cnbc = bodies["003_80e451bcdcbcdac5"]
    for furniture in ("صور جيتي", "Continue reading", "اترك تعليقاً", "مقالات ذات صلة", "اشترك"):
        assert furniture not in cnbc
    jamestown = bodies["004_73bfb09cf5028971"]
    assert "كلمات مفتاحية" not in jamestown
    assert "دروس التاريخ تكشف هشاشة التقارب الروسي الإيراني" not in jamestown  # a "related" headline


def test_cleaning_keeps_every_body_paragraph(corpus):
    for article in corpus.articles.values():
        body = _body(article)
        for paragraph in article.raw.split("\n"):
            paragraph = paragraph.strip()
            # Body paragraphs are long sentences; furniture lines are short.
            if len(paragraph) > 200:
                assert paragraph in body, f"{article.id} lost a paragraph: {paragraph[:60]}"
    # A caption standing on its photo credit goes with it; a caption written as a sentence stays; the source line
    # ("المصدر | ...") is furniture, and what it says is read into the metadata (app/text/metadata.py).
    cnbc = _body(corpus.get("003_80e451bcdcbcdac5"))
    assert "منظر جوي لمعالم الكرملين" not in cnbc and "صور جيتي" not in cnbc
    assert "الرئيس الروسي فلاديمير بوتين (على اليمين) يصافح" in cnbc
    assert "المصدر | باول جوبل" not in _body(corpus.get("004_73bfb09cf5028971"))


def test_chunk_spans_index_the_raw_text(corpus):
    chunker = Chunker(500, 250)
    for article in corpus.articles.values():
        chunks = chunker.split(article)
        assert chunks
        for chunk in chunks:
            assert article.raw[chunk.start : chunk.end] == chunk.text
            assert len(chunk.text) <= 500
        # Consecutive chunks overlap, so no passage falls between two chunks.
        for a, b in zip(chunks, chunks[1:]):
            same_block = any(s <= a.start and b.end <= e for s, e in article.blocks)
            if same_block:
                assert b.start < a.end


def test_every_gold_quote_lies_inside_a_chunk(corpus):
    chunker = Chunker(500, 250)
    chunks = {article_id: chunker.split(a) for article_id, a in corpus.articles.items()}
    quotes = [q for line in DEV_SET.read_text(encoding="utf-8").splitlines() for q in json.loads(line)["gold_quotes"]]
    assert len(quotes) > 40
    for q in quotes:
        raw = corpus.get(q["article"]).raw
        start = raw.find(q["quote"])
        assert start >= 0
        end = start + len(q["quote"])
        assert any(c.start <= start and end <= c.end for c in chunks[q["article"]]), q["quote"][:50]


def test_diacritics_in_raw_text_keep_offsets_exact():
    raw = "عنوان المقال\nقالَ المُتَحَدِّثُ إنَّ الاتفاقَ سيُوَقَّعُ قريباً. وأضاف أن المحادثات مستمرة.\n"
    article = make_article("x", raw)
    for chunk in Chunker(100, 50).split(article):
        assert raw[chunk.start : chunk.end] == chunk.text


def test_unknown_article_and_missing_folder_are_clear_errors(corpus, tmp_path):
    with pytest.raises(CorpusError, match="unknown article id"):
        corpus.get("nope")
    with pytest.raises(CorpusError, match="does not exist"):
        load_corpus(tmp_path / "missing")
    (tmp_path / "empty.txt").write_text("   \n", encoding="utf-8")
    (tmp_path / "binary.txt").write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(CorpusError, match="no readable"):
        load_corpus(tmp_path)
