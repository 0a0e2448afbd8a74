"""Metadata read from an article's own text (outlet, original publication, date) fills what articles.json leaves
empty, never what it states; outlets so found name their articles in questions, in Arabic or Latin script."""

import json
import shutil

import pytest
from conftest import REPO, SEEDS

from app.corpus import ArticleMeta, load_corpus, make_article
from app.text.metadata import TextMeta, read_meta
from app.text.sources import SourceNames

CORPUS_B = REPO / "eval" / "corpus-b"

# Corpus B has no articles.json: everything here is read from the pages (invented outlets).
CORPUS_B_META = {
    "b00_c539d96d": TextMeta(source="الأفق العربي", date="2025-03-15"),
    "b01_d5d68c38": TextMeta(source="نافذة الشرق", original="ذا ميريديان بوست", date="2025-03-16"),
    "b02_e7ab49d3": TextMeta(source="صدى الوسنان", date="2025-03-16"),
    "b03_30e9401a": TextMeta(source="المشهد الإقليمي", original="وكالة أوسترا", date="2025-03-20"),
    "b04_7e2855e6": TextMeta(source="مدار الخبر", date="2025-04-02"),  # "المصدر: مدار الخبر + وكالات"
    "b05_33f76e16": TextMeta(source="صحيفة المرفأ", date="2025-02-03"),
    "b06_38addfab": TextMeta(source="البوصلة الاقتصادية", original="هاربر لاين ديلي",
                             original_en="Harbour Line Daily", date="2025-03-12"),
    "b07_154d7160": TextMeta(source="مرافئ نت", date="2025-04-08"),
    "b08_338ecddc": TextMeta(source="عين أوروبا", original="نوردهافن تسايتونغ", date="2025-04-14"),
    # It quotes «ذا ميريديان بوست» once, late: that does not make it a translation of it.
    "b09_e0c84b56": TextMeta(source="مرصد الخليج الاقتصادي", date="2025-04-17"),
}


@pytest.mark.parametrize("article_id", sorted(CORPUS_B_META))
def test_corpus_b_outlet_original_and_date_are_read_from_the_page(article_id):
    raw = (CORPUS_B / f"{article_id}.txt").read_text(encoding="utf-8")
    assert read_meta(raw) == CORPUS_B_META[article_id]


def test_seed_metadata_read_from_the_text_agrees_with_articles_json():
    given = json.loads((SEEDS / "articles.json").read_text(encoding="utf-8"))
    found = {article_id: read_meta((SEEDS / f"{article_id}.txt").read_text(encoding="utf-8")) for article_id in given}
    for article_id, meta in found.items():
        assert meta.source == given[article_id]["source"], article_id  # "" where the text names no outlet
        assert meta.date == given[article_id]["date"], article_id
    assert found["000_362a69a8ed804e80"].original == "واشنطن بوست"
    assert found["002_f4d87a8ec8c5d099"].original == "نيويورك تايمز"
    # The text's own spellings of what articles.json calls المونيتور and مؤسسة جيمس تاون.
    assert found["001_e678962533ece1ec"].original == "المنيتور"
    assert found["004_73bfb09cf5028971"].original == "ذا جيمس تاون فونديشين"
    # CNBC is named twice, in two scripts, and never referred back to: too little to call it the original.
    assert found["003_80e451bcdcbcdac5"].original == ""


def test_metadata_given_explicitly_wins_and_only_empty_fields_are_filled():
    raw = (CORPUS_B / "b06_38addfab.txt").read_text(encoding="utf-8")
    meta = make_article("b06", raw, ArticleMeta(source="مصدر آخر", date="2025-01-01")).meta
    assert (meta.source, meta.date) == ("مصدر آخر", "2025-01-01")
    assert (meta.original, meta.original_en) == ("هاربر لاين ديلي", "Harbour Line Daily")
    other = make_article("b06", raw, ArticleMeta(original="نشرة أخرى")).meta
    assert (other.original, other.original_en) == ("نشرة أخرى", "")  # a Latin name only beside its own Arabic one
    assert make_article("x", "قال المجلس إن الجلسة ستعقد غداً.\n").meta == ArticleMeta()


def test_a_corpus_without_articles_json_gets_outlets_and_dates(tmp_path):
    for path in CORPUS_B.glob("*.txt"):
        shutil.copy(path, tmp_path)
    corpus = load_corpus(tmp_path)
    assert corpus.get("b03_30e9401a").meta.source == "المشهد الإقليمي"
    assert corpus.get("b08_338ecddc").source_label == "عين أوروبا, after نوردهافن تسايتونغ"
    assert corpus.get("b01_d5d68c38").title.startswith("«ذا ميريديان بوست»: صفقة «الماء مقابل الطاقة»")


@pytest.fixture(scope="module")
def corpus_b_sources():
    return SourceNames.from_corpus(load_corpus(CORPUS_B))


@pytest.mark.parametrize("question, named", [
    ("ماذا كتبت ميريديان بوست عن كلفة الخط؟", {"b01_d5d68c38"}),
    ("What did The Meridian Post report about the cost of the line?", {"b01_d5d68c38"}),
    ("بحسب نشرة هاربر لاين ديلي، كم حاوية ناول الميناء؟", {"b06_38addfab"}),
    ("How many containers did the port handle, according to Harbour Line Daily?", {"b06_38addfab"}),
    ("ما الذي نقلته عين أوروبا عن الصحيفة الألمانية؟", {"b08_338ecddc"}),
    ("How many ships waited off the port during the strike?", set()),
    ("What is the Post office's view of the Meridian line?", set()),  # the words, but not the name in a row
])
def test_questions_naming_an_outlet_of_corpus_b_find_its_articles(corpus_b_sources, question, named):
    assert corpus_b_sources.named_articles(question) == named
