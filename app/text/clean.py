"""Boilerplate detection: which lines of a raw article are body text. Offsets always stay in the raw file."""

from __future__ import annotations

import re

# A line that is nothing but one of these is page furniture, wherever it stands.
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
    r"مقالات ذات صلة",
    r"كلمات مفتاحية",
    r"اكتشاف المزيد من .{1,40}",
    r".{0,60}تأسست عام \d{4}",
    r"[-|_=*•·][-|_=*•·\s]*",  # separators: ---|, lone dashes, pipes
]
_FURNITURE_RE = re.compile(r"^\s*(?:" + "|".join(_FURNITURE) + r")\s*$", re.IGNORECASE)

# Photo credits: "Name | Agency | Getty Images" — short, pipe-separated, naming a photo agency.
_CREDIT_RE = re.compile(
    r"(صور جيتي|جيتي إيمجز|getty|رويترز|reuters|أ ف ب|afp|associated press|سبوتنيك|تصوير|الصورة|photo)",
    re.IGNORECASE,
)

# Lines that open the trailing block of a page (related links, keywords, newsletter, comments).
_TAIL_MARKER_RE = re.compile(
    r"^\s*(مقالات ذات صلة|كلمات مفتاحية|اكتشاف المزيد من|انضم إلى قناتنا|related articles|read more|tags)\b",
    re.IGNORECASE,
)
_TAIL_LINE_MAX = 200  # a trailing block holds only short lines (headlines, buttons), never body paragraphs


def _is_credit(line: str) -> bool:
    stripped = line.strip()
    return len(stripped) < 100 and "|" in stripped and bool(_CREDIT_RE.search(stripped))


def _lines(raw: str) -> list[tuple[int, int]]:
    spans, start = [], 0
    for line in raw.splitlines(keepends=True):
        spans.append((start, start + len(line)))
        start += len(line)
    return spans


def body_blocks(raw: str) -> list[tuple[int, int]]:
    """Spans of raw text that hold the article body, each a run of consecutive body lines."""
    lines = _lines(raw)
    keep = [not (_FURNITURE_RE.match(raw[s:e]) or _is_credit(raw[s:e])) for s, e in lines]
    for i, (s, e) in enumerate(lines):
        if _TAIL_MARKER_RE.match(raw[s:e]) and all(len(raw[a:b].strip()) <= _TAIL_LINE_MAX for a, b in lines[i:]):
            keep[i:] = [False] * (len(lines) - i)
            break

    blocks: list[tuple[int, int]] = []
    current: list[int] | None = None
    for (s, e), kept in zip(lines, keep):
        if kept and raw[s:e].strip():
            text = raw[s:e]
            start = s + len(text) - len(text.lstrip())
            end = s + len(text.rstrip())
            if current is None:
                current = [start, end]
            else:
                current[1] = end
        elif not kept:
            if current is not None:
                blocks.append((current[0], current[1]))
            current = None
    if current is not None:
        blocks.append((current[0], current[1]))
    return blocks
