"""Boilerplate detection: which lines of a raw article are body text. Offsets always stay in the raw file.

A page is read by the shape of its lines, not by any one site's wording. Body text is paragraphs: long lines, or
lines that end a sentence. Everything before the first paragraph is the page head (site name, section, breadcrumb,
headline, dateline, byline), of which only the headline is kept; everything after the last one is the page foot
(source line, share buttons, related headlines, tags). Between them a short line is kept (a subheading) unless its
own shape gives it away: separators, hashtags, a date, a "label: value" credit, social-network names, or a photo
caption standing on a credit line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.text.arabic import normalize
from app.text.dates import find_date

# Stored indexes record this: chunks cut from the body blocks of another version of these rules are not reused.
CLEANER_VERSION = "2"

# Fallback: lines that are nothing but one of these are page furniture, wherever they stand. The shape rules below
# find most of them anyway; the list keeps the ones that read like a sentence ("تابع آخر الأخبار ... المهمة.").
_FURNITURE = [
    r"انضم (الآن|إلى قناتنا).*",
    r"تابع آخر الأخبار.*عبر قناتنا.*",
    r"شاركنا رأيك.*",
    r"تابعونا على.*",
    r"(youtube|google news|facebook|twitter|instagram|telegram|whatsapp)( *\| *(youtube|google news|facebook|twitter|instagram|telegram|whatsapp|x))* *\|?",
    r"اشترك.*(بريدك|للاستمرار|النشرة|الآن).*",
    r"اترك تعليق(اً|ا)?",
    r"لن يتم نشر عنوان بريدك الإلكتروني.*",
    r"زر الذهاب إلى الأعلى",
    r"(continue reading|read more|share this( article)?|related articles?|subscribe.*)",
    r"(اقرأ|إقرأ) (أيضا|أيضاً|المزيد).*",
    r"(مقالات|أخبار|مواضيع) ذات صلة",
    r"الأكثر (قراءة|مشاهدة)",
    r"كلمات مفتاحية",
    r"اكتشاف المزيد من .{1,40}",
    r".{0,60}تأسست عام \d{4}",
]
_FURNITURE_RE = re.compile(r"^\s*(?:" + "|".join(_FURNITURE) + r")\s*:?\s*$", re.IGNORECASE)
# Headings that open a list of related headlines.
_RELATED_RE = re.compile(r"^\s*((اقرأ|إقرأ) (أيضا|أيضاً|المزيد)|(مقالات|أخبار|مواضيع) ذات صلة|الأكثر (قراءة|مشاهدة)"
                         r"|related|read more)", re.IGNORECASE)

_WORD = re.compile(r"\w+")
# A sentence ends in . ! … (a closing quote or bracket may follow); a question mark ends one only in a long line,
# since related headlines are often short questions.
_SENTENCE_END = re.compile(r"[.!…][\"'»”)\]]*$")
_QUESTION_END = re.compile(r"[?؟][\"'»”)\]]*$")
_PARAGRAPH_WORDS = 25  # a line this long is prose whatever its end
_QUESTION_WORDS = 12
_SHORT_WORDS = 14  # the longest line a dateline, share line or credit can be
_CAPTION_WORDS = 30
_BARE_CREDIT_WORDS = 4  # "وكالة أوسترا" under a caption
_STANDFIRST_WORDS = 8  # a head line after the headline this long is a standfirst, and kept

_BREADCRUMB_SEP = re.compile(r"\s[/>›»]\s")
_SLASH = re.compile(r"\s/\s")
_LABEL = re.compile(r"^(?P<label>[^\W\d_]\w*(?:\s+\w+){0,2})\s*:\s*(?P<value>\S.*)$")
_LIST_SEP = re.compile(r"[،,|/]")
_QUOTES = re.compile(r"[«»\"“”]")
_SOCIAL = {normalize(w) for w in ("فيسبوك", "فيس بوك", "تويتر", "إكس", "واتساب", "واتس اب", "تلغرام", "تليغرام",
                                  "تلجرام", "لينكدإن", "لينكد إن", "إنستغرام", "انستجرام", "يوتيوب", "تيك توك",
                                  "facebook", "twitter", "whatsapp", "telegram", "linkedin", "instagram", "youtube",
                                  "tiktok")}
_SOCIAL_RE = re.compile(r"(?<!\w)(" + "|".join(sorted(map(re.escape, _SOCIAL), key=len, reverse=True)) + r")(?!\w)")
_SHARE_VERBS = {normalize(w) for w in ("شارك", "شاركوا", "انشر", "تابعوا", "تابعونا", "انضم", "انضموا", "share",
                                       "follow")}

BODY = "body"


@dataclass(frozen=True)
class Line:
    """One non-blank line of an article: its span in the raw text (without surrounding space) and what it is,
    `body` or the kind of page furniture it was taken for (masthead, headline's neighbours, credits, ...)."""

    start: int
    end: int
    text: str
    kind: str

    @property
    def is_body(self) -> bool:
        return self.kind == BODY


def _words(text: str) -> int:
    return len(_WORD.findall(text))


def _is_paragraph(text: str) -> bool:
    words = _words(text)
    return (words >= _PARAGRAPH_WORDS
            or (words >= 4 and bool(_SENTENCE_END.search(text)))
            or (words >= _QUESTION_WORDS and bool(_QUESTION_END.search(text))))


def _shape(text: str) -> str | None:
    """What a short line is by its own shape alone; None when it could be a subheading (or a headline)."""
    words = _words(text)
    plain = normalize(text)
    if not _WORD.search(text):
        return "separator"
    if "©" in text:
        return "copyright"
    hashtags = len(re.findall(r"#\w", text))
    if hashtags >= 2 or (hashtags and hashtags * 2 >= words):
        return "tags"
    if words <= _SHORT_WORDS and find_date(text):
        return "dateline"
    social = len(_SOCIAL_RE.findall(plain))
    first = " ".join(plain.split()[:2])
    opens_with_share = any(first == v or first.startswith(v + " ") or first.startswith(v + ":")
                           for v in _SHARE_VERBS)
    if words <= _SHORT_WORDS and (social >= 2 or (opens_with_share and (social or words <= 3))):
        return "share"
    if len(_BREADCRUMB_SEP.split(text)) >= 3:
        return "breadcrumb"
    if "|" in text:
        return "menu"  # items between pipes: a site menu, share icons, "Name | Agency" credits
    label = _LABEL.match(text)
    if label and words <= _SHORT_WORDS:
        value = label["value"]
        if len(_LIST_SEP.findall(value)) >= 2:
            return "tags"  # "الوسوم: أ، ب، ج"
        if _words(value) <= 8 and not _QUOTES.search(value):
            return "label"  # "تصوير: ...", "ترجمة: ...", "المصدر: ..."
    if words <= 8 and (text.startswith("(") and text.endswith(")") or _SLASH.search(text)):
        return "credit"  # "(وكالة الأنباء)", "مرافئ نت / خاص"
    return None


def classify(raw: str) -> list[Line]:
    """Every non-blank line of `raw` with its kind (see the module docstring for the rules)."""
    spans = []
    offset = 0
    for line in raw.splitlines(keepends=True):
        text = line.strip()
        if text:
            start = offset + len(line) - len(line.lstrip())
            spans.append((start, start + len(text), text))
        offset += len(line)
    texts = [t for _, _, t in spans]
    n = len(texts)
    kind: list[str | None] = [None] * n
    paragraph = [False] * n
    for i, text in enumerate(texts):
        if _FURNITURE_RE.match(text):
            kind[i] = "related" if _RELATED_RE.match(text) else "furniture"
        elif _is_paragraph(text):
            paragraph[i] = True
        else:
            kind[i] = _shape(text)

    def short_free(i: int) -> bool:  # a short line no rule has claimed yet
        return 0 <= i < n and kind[i] is None and not paragraph[i]

    # A related-articles heading takes the short headlines under it (some read "Outlet: headline").
    for i in range(n):
        if kind[i] == "related":
            j = i + 1
            while j < n and not paragraph[j] and kind[j] in (None, "label"):
                kind[j] = "related"
                j += 1
    paragraphs = [i for i in range(n) if paragraph[i] and kind[i] is None]
    if not paragraphs:  # no prose at all (a note, a list): keep whatever no shape rule claimed
        return [Line(s, e, t, k or BODY) for (s, e, t), k in zip(spans, kind)]
    first, last = paragraphs[0], paragraphs[-1]

    # A caption stands on its credit: "Name | Agency", "(Agency)", "تصوير: ...", "Outlet / Name".
    for i in range(1, last):
        if kind[i] in ("menu", "label", "credit") and short_free(i - 1) and _words(texts[i - 1]) <= _CAPTION_WORDS:
            kind[i - 1], kind[i] = "caption", "credit"
    # ... or on a bare credit right under it ("وكالة أوسترا"), the pair standing alone between paragraphs.
    for i in range(first + 1, last - 1):
        adjacent = raw.count("\n", spans[i][1], spans[i + 1][0]) == 1
        if (adjacent and short_free(i) and short_free(i + 1) and paragraph[i - 1] and paragraph[i + 2]
                and _words(texts[i]) <= _CAPTION_WORDS and _words(texts[i + 1]) <= _BARE_CREDIT_WORDS):
            kind[i], kind[i + 1] = "caption", "credit"

    # The page head keeps its headline (the longest line no rule claimed) and a standfirst after it.
    for i in range(first):
        if short_free(i) and _words(texts[i]) <= 6 and re.search(r"\s[-–]\s|-$", texts[i]):
            kind[i] = "byline"  # "السدرة - «الأفق العربي»", "وكالة هاوار-"
    head = [i for i in range(first) if kind[i] is None]
    headline = max(head, key=lambda i: len(texts[i])) if head else first
    for i in range(first):
        if i < headline and kind[i] in (None, "caption", "credit"):
            kind[i] = "masthead"
        elif i > headline and kind[i] is None and _words(texts[i]) < _STANDFIRST_WORDS:
            kind[i] = "head"
    for i in range(last + 1, n):
        kind[i] = kind[i] or "foot"
    return [Line(s, e, t, k or BODY) for (s, e, t), k in zip(spans, kind)]


def body_blocks(raw: str) -> list[tuple[int, int]]:
    """Spans of raw text that hold the article body, each a run of consecutive body lines (blank lines between
    body lines stay inside a block; any other line ends it)."""
    blocks: list[tuple[int, int]] = []
    current: list[int] | None = None
    for line in classify(raw):
        if line.is_body:
            if current is None:
                current = [line.start, line.end]
            else:
                current[1] = line.end
        elif current is not None:
            blocks.append((current[0], current[1]))
            current = None
    if current is not None:
        blocks.append((current[0], current[1]))
    return blocks
