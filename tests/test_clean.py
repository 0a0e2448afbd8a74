"""Cleaning by shape: every gold quote of both corpora stays in the body, the page furniture of both corpora is
dropped line by line, and pages from a made-up site are cleaned by the same rules (no site's wording needed)."""

import json
import re

import pytest
from conftest import REPO, SEEDS

from app.text.clean import body_blocks, classify
from app.text.dates import find_date

DATA = REPO / "tests" / "data"
CORPUS_B = REPO / "eval" / "corpus-b"
# The gold files of both corpora: their quotes must survive cleaning.
GOLD_FILES = (REPO / "eval" / "dev.jsonl", CORPUS_B / "questions.jsonl")
# The lines of each article of both corpora that are not body text (read through by eye): mastheads, breadcrumbs,
# datelines, bylines, share lines, photo captions and credits, source lines, related headlines, tags.
BOILERPLATE = DATA / "boilerplate_lines.json"


def _raw(article_id: str) -> str:
    folder = CORPUS_B if article_id.startswith("b") else SEEDS
    return (folder / f"{article_id}.txt").read_text(encoding="utf-8")


def _find(raw: str, text: str) -> tuple[int, int]:
    """Span of `text` in `raw`, whitespace-insensitive (some quotes hold U+00A0 where the article has a space)."""
    match = re.search(r"\s+".join(map(re.escape, text.split())), raw)
    assert match, text[:60]
    return match.span()


def _inside_body(raw: str, start: int, end: int) -> bool:
    return any(s <= start and end <= e for s, e in body_blocks(raw))


def _body(raw: str) -> str:
    return "\n".join(raw[s:e] for s, e in body_blocks(raw))


def test_every_gold_quote_of_both_corpora_lies_inside_one_body_block():
    spans = [quote for path in GOLD_FILES for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
             for quote in json.loads(line)["gold_quotes"]]
    assert {s["article"][0] for s in spans} == {"0", "b"} and len(spans) > 100  # seeds and corpus B
    lost = []
    for span in spans:
        raw = _raw(span["article"])
        if not _inside_body(raw, *_find(raw, span["quote"])):
            lost.append((span["article"], span["quote"][:60]))
    assert lost == []


def _lines(raw: str) -> list[tuple[str, int, int]]:
    """Each non-blank line of `raw` with its span."""
    out, offset = [], 0
    for line in raw.splitlines(keepends=True):
        if line.strip():
            start = offset + len(line) - len(line.lstrip())
            out.append((line.strip(), start, start + len(line.strip())))
        offset += len(line)
    return out


@pytest.mark.parametrize("article_id", sorted(json.loads(BOILERPLATE.read_text(encoding="utf-8"))))
def test_the_furniture_of_each_article_is_dropped_and_nothing_else(article_id):
    furniture = json.loads(BOILERPLATE.read_text(encoding="utf-8"))[article_id]
    raw = _raw(article_id)
    lines = _lines(raw)
    assert set(furniture) <= {text for text, _, _ in lines}
    misplaced = [text for text, start, end in lines if _inside_body(raw, start, end) == (text in furniture)]
    assert misplaced == []


def test_both_corpora_have_every_shape_of_furniture_listed():
    furniture = json.loads(BOILERPLATE.read_text(encoding="utf-8"))
    corpus_b = [line for article_id, lines in furniture.items() if article_id.startswith("b") for line in lines]
    shapes = {
        "hashtags": r"^#\w+( #\w+)+$",
        "dateline": r"^الخميس 20 آذار/مارس 2025",
        "source line": r"^المصدر[:|]? ",
        "share line": r"^تابعوا «.+» على",
        "breadcrumb": r"^الرئيسية / ",
        "section label at the top": r"^المشهد الإقليمي$",
        "bare photo credit": r"^وكالة أوسترا$",
        "photo credit": r"^تصوير: ",
        "related heading": r"^(مقالات ذات صلة|اقرأ أيضاً|الأكثر قراءة)",
    }
    for shape, pattern in shapes.items():
        assert any(re.search(pattern, line) for line in corpus_b), shape


def test_the_headline_is_the_first_body_line_and_subheadings_stay():
    for article_id in ("b01_d5d68c38", "b08_338ecddc", "003_80e451bcdcbcdac5"):
        raw = _raw(article_id)
        first = next(line for line in classify(raw) if line.is_body)
        assert len(first.text.split()) >= 6 and not first.text.endswith(".")
    jamestown = _body(_raw("004_73bfb09cf5028971"))
    assert "\nتحالف كامل\n" in jamestown and "\nمعوقات الشراكة" in jamestown


# A made-up site with wording of its own: what finds its furniture is the shape of the lines.
PAGE = """شبكة الواحة
أخبار > محليات > بيئة
مزارعو الواحة الغربية يبدؤون موسم الحصاد مبكراً بعد شتاء دافئ
الأربعاء 3 تشرين الأول/أكتوبر 2029 - 09:30 ص
الواحة الغربية - «شبكة الواحة»

بدأ مزارعو الواحة الغربية حصاد التمور قبل موعده المعتاد بثلاثة أسابيع، بعد شتاء هو الأدفأ منذ عقدين.

وقال رئيس الجمعية سليم البرّاق لـ«شبكة الواحة» إن المحصول هذا العام «أوفر من المتوقع».
عمال يجمعون التمور في بستان قرب البلدة القديمة
وكالة الرمال

ويخشى المزارعون من تراجع الأسعار بسبب وفرة العرض، إذ انخفض سعر الطن في السوق المحلية بنحو عشرة في المئة.

تحديات التسويق

وأضاف البرّاق أن الجمعية تدرس إنشاء مخازن مبرّدة جديدة لتمكين المزارعين من تأخير البيع حتى تتحسن الأسعار.
سوق التمور المركزية في البلدة صباح الأحد
تصوير: منى الخطيب
واختتم الموسم الماضي بخسائر قدّرتها الجمعية بمليوني دينار، بعد موجة حر أتلفت جزءاً من المحصول قبل نضجه.
شاركوا الخبر: إنستغرام | واتساب
ننصحك بقراءة
أسعار التمور تتراجع في الأسواق الإقليمية
كيف تؤثر موجات الحر على النخيل؟
المصدر: شبكة الواحة + وكالة الرمال
#الواحة_الغربية #التمور #الحصاد
"""


@pytest.mark.parametrize("line, kind", [
    ("شبكة الواحة", "masthead"),
    ("أخبار > محليات > بيئة", "breadcrumb"),
    ("الأربعاء 3 تشرين الأول/أكتوبر 2029 - 09:30 ص", "dateline"),
    ("الواحة الغربية - «شبكة الواحة»", "byline"),
    ("عمال يجمعون التمور في بستان قرب البلدة القديمة", "caption"),
    ("وكالة الرمال", "credit"),
    ("سوق التمور المركزية في البلدة صباح الأحد", "caption"),
    ("تصوير: منى الخطيب", "credit"),
    ("شاركوا الخبر: إنستغرام | واتساب", "share"),
    ("ننصحك بقراءة", "foot"),  # a related-list heading no list knows: it is in the page foot
    ("كيف تؤثر موجات الحر على النخيل؟", "foot"),
    ("المصدر: شبكة الواحة + وكالة الرمال", "label"),
    ("#الواحة_الغربية #التمور #الحصاد", "tags"),
])
def test_a_made_up_sites_furniture_is_found_by_its_shape(line, kind):
    kinds = {line.text: line.kind for line in classify(PAGE)}
    assert kinds[line] == kind


def test_a_made_up_sites_body_keeps_headline_paragraphs_and_subheading():
    body = [line.text for line in classify(PAGE) if line.is_body]
    assert body[0] == "مزارعو الواحة الغربية يبدؤون موسم الحصاد مبكراً بعد شتاء دافئ"
    assert "تحديات التسويق" in body
    assert len(body) == 7 and all(line.endswith(".") for line in body[1:] if line != "تحديات التسويق")
    blocks = body_blocks(PAGE)
    assert len(blocks) == 4  # the caption/credit pairs split the body; the subheading does not
    assert all(PAGE[s:e].strip() == PAGE[s:e] for s, e in blocks)


@pytest.mark.parametrize("page, dropped", [
    ("بيان المجلس\nقرر المجلس تأجيل الجلسة إلى الأسبوع المقبل بعد خلاف على جدول الأعمال بين الكتل.\n"
     "#المجلس #الجلسة\n", "#المجلس #الجلسة"),
    ("قرر المجلس تأجيل الجلسة إلى الأسبوع المقبل بعد خلاف على جدول الأعمال بين الكتل.\nتابعونا «نبض المدينة» على "
     "تيك توك\nوأكد رئيس المجلس أن الجلسة المقبلة ستخصص لمناقشة الموازنة العامة للدولة.\n",
     "تابعونا «نبض المدينة» على تيك توك"),
    ("قرر المجلس تأجيل الجلسة إلى الأسبوع المقبل بعد خلاف على جدول الأعمال بين الكتل.\nرئيس المجلس في قاعة الجلسات\n"
     "أحمد ناصر | نبض المدينة\nوأكد رئيس المجلس أن الجلسة المقبلة ستخصص لمناقشة الموازنة العامة للدولة.\n",
     "رئيس المجلس في قاعة الجلسات"),
    ("قرر المجلس تأجيل الجلسة إلى الأسبوع المقبل بعد خلاف على جدول الأعمال بين الكتل.\n"
     "(أرشيف نبض المدينة)\nوأكد رئيس المجلس أن الجلسة المقبلة ستخصص لمناقشة الموازنة العامة للدولة.\n",
     "(أرشيف نبض المدينة)"),
])
def test_one_furniture_line_between_paragraphs_is_dropped(page, dropped):
    assert dropped not in _body(page)
    assert "ستخصص لمناقشة الموازنة" in _body(page) or "تأجيل الجلسة" in _body(page)


def test_lines_without_any_prose_are_kept_unless_their_shape_is_furniture():
    assert _body("سطر أول\nسطر ثان\n") == "سطر أول\nسطر ثان"
    assert body_blocks("اترك تعليقاً\nزر الذهاب إلى الأعلى\n") == []


@pytest.mark.parametrize("text, iso", [
    ("الخميس ٢٠ آذار/مارس ٢٠٢٥ - ٠٤:١٠ م", "2025-03-20"),
    ("الأحد، 16 آذار 2025 | آخر تحديث: 09:15", "2025-03-16"),
    ("الثلاثاء ٨ نيسان/أبريل ٢٠٢٥", "2025-04-08"),
    ("3 تشرين الأول/أكتوبر 2029", "2029-10-03"),
    ("2025/04/02 - 14:20", "2025-04-02"),
    ("السبت 5 يونيو 2021 01:02 م", "2021-06-05"),
    ("12 جوان 2024", "2024-06-12"),
    ("March 16, 2025", "2025-03-16"),
])
def test_datelines_are_read_as_iso_dates(text, iso):
    assert find_date(text).isoformat() == iso


def test_a_day_and_month_without_a_year_is_no_date():
    assert find_date("مساء الجمعة ١٤ آذار/مارس") is None
    assert find_date("31 فبراير 2025") is None
