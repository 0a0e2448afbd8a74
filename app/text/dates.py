"""Calendar dates as Arabic news pages write them ("الخميس ٢٠ آذار/مارس ٢٠٢٥", "2025/04/02") read as ISO dates."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from app.text.arabic import normalize

# Month names after app.text.arabic.normalize (so أبريل and ابريل, ٢٠٢٥ and 2025 are one spelling each): the
# Egyptian/Gulf names, the Levantine and Iraqi ones (often written together: "آذار/مارس"), the Maghreb ones, English.
_MONTHS = {
    1: ("يناير", "كانون الثاني", "جانفي", "january", "jan"),
    2: ("فبراير", "شباط", "فيفري", "february", "feb"),
    3: ("مارس", "اذار", "march", "mar"),
    4: ("ابريل", "نيسان", "افريل", "april", "apr"),
    5: ("مايو", "ايار", "ماي", "may"),
    6: ("يونيو", "يونيه", "حزيران", "جوان", "june", "jun"),
    7: ("يوليو", "يوليه", "تموز", "جويليه", "july", "jul"),
    8: ("اغسطس", "اب", "اوت", "august", "aug"),
    9: ("سبتمبر", "ايلول", "september", "sept", "sep"),
    10: ("اكتوبر", "تشرين الاول", "october", "oct"),
    11: ("نوفمبر", "تشرين الثاني", "november", "nov"),
    12: ("ديسمبر", "كانون الاول", "december", "dec"),
}
_MONTH_OF = {name: number for number, names in _MONTHS.items() for name in names}
_MONTH = "|".join(sorted((re.escape(n).replace(r"\ ", r"\s+") for n in _MONTH_OF), key=len, reverse=True))
_EDGE_L, _EDGE_R = r"(?<![\w])", r"(?![\w])"
_NAMED = re.compile(  # 20 آذار/مارس 2025, 16 مارس، 2025
    rf"{_EDGE_L}(?P<day>\d{{1,2}})\s*(?P<month>{_MONTH})(?:\s*[/-]\s*(?:{_MONTH}))?"
    rf"\s*[،,]?\s*(?P<year>\d{{4}}){_EDGE_R}")
_NAMED_EN = re.compile(  # March 16, 2025
    rf"{_EDGE_L}(?P<month>{_MONTH})\s+(?P<day>\d{{1,2}}),?\s+(?P<year>\d{{4}}){_EDGE_R}")
_YMD = re.compile(r"(?<![\d/.-])(?P<year>\d{4})[/.-](?P<month>\d{1,2})[/.-](?P<day>\d{1,2})(?![\d/.-])")
_DMY = re.compile(r"(?<![\d/.-])(?P<day>\d{1,2})[/.-](?P<month>\d{1,2})[/.-](?P<year>\d{4})(?![\d/.-])")
# Clock times and weekdays: what a dateline holds besides the date.
TIME_RE = re.compile(r"(?<!\d)\d{1,2}:\d{2}(?!\d)")
WEEKDAYS = frozenset(normalize(d) for d in ("السبت", "الأحد", "الإثنين", "الاثنين", "الثلاثاء", "الأربعاء", "الخميس",
                                            "الجمعة", "saturday", "sunday", "monday", "tuesday", "wednesday",
                                            "thursday", "friday"))


def find_date(text: str) -> dt.date | None:
    """The first full date (day, month, year) written in `text`; None when it holds none."""
    plain = normalize(text)
    found: list[tuple[int, dt.date]] = []
    for pattern in (_NAMED, _NAMED_EN, _YMD, _DMY):
        for match in pattern.finditer(plain):
            month = match["month"]
            number = int(month) if month.isdigit() else _MONTH_OF[" ".join(month.split())]
            try:
                found.append((match.start(), dt.date(int(match["year"]), number, int(match["day"]))))
            except ValueError:
                continue
            break
    return min(found)[1] if found else None


def date_words(text: str) -> int:
    """How many words of `text` belong to a date, a weekday or a clock time (so the rest can be counted)."""
    plain = normalize(text)
    count = sum(len(m[0].split()) for p in (_NAMED, _NAMED_EN, _YMD, _DMY) for m in p.finditer(plain))
    count += sum(1 for w in re.findall(r"\w+", plain) if w in WEEKDAYS)
    return count + len(TIME_RE.findall(plain))


# Weekdays after normalize, Monday first (datetime's weekday()).
WEEKDAY_NUMBERS = {normalize(name): number for number, names in enumerate((
    ("الإثنين", "الاثنين"), ("الثلاثاء",), ("الأربعاء",), ("الخميس",), ("الجمعة",), ("السبت",), ("الأحد",)))
    for name in names}
_WEEKDAY = "|".join(sorted(WEEKDAY_NUMBERS, key=len, reverse=True))
_MENTION = re.compile(  # (الخميس) 20 آذار/مارس (2025), آذار/مارس 2025, 2025/04/02
    rf"{_EDGE_L}(?:(?:يوم\s+)?(?P<weekday>{_WEEKDAY})\s+)?(?P<day>\d{{1,2}})\s*(?P<month>{_MONTH})"
    rf"(?:\s*[/-]\s*(?:{_MONTH}))?(?:\s*[،,]?\s*(?P<year>\d{{4}}))?{_EDGE_R}"
    rf"|{_EDGE_L}(?P<month_only>{_MONTH})(?:\s*[/-]\s*(?:{_MONTH}))?\s*[،,]?\s*(?P<month_year>\d{{4}}){_EDGE_R}")


@dataclass(frozen=True)
class DateMention:
    """A calendar date as a text writes it, perhaps without its year or day ("23 تموز", "آذار/مارس 2025")."""

    month: int
    day: int | None = None
    year: int | None = None
    weekday: int | None = None  # Monday = 0, when the text names the day of the week


def date_mentions(text: str) -> list[DateMention]:
    """Every date `text` writes with a month name (a day, a year or both beside it) or in digits, in order."""
    plain = normalize(text)
    found: list[tuple[int, DateMention]] = []
    for match in _MENTION.finditer(plain):
        month = match["month"] or match["month_only"]
        number = _MONTH_OF[" ".join(month.split())]
        day = int(match["day"]) if match["day"] else None
        year = int(match["year"] or match["month_year"]) if (match["year"] or match["month_year"]) else None
        if day is not None and not 1 <= day <= 31:
            continue
        weekday = WEEKDAY_NUMBERS[match["weekday"]] if match["weekday"] else None
        found.append((match.start(), DateMention(number, day, year, weekday)))
    for pattern in (_YMD, _DMY):
        for match in pattern.finditer(plain):
            try:
                date = dt.date(int(match["year"]), int(match["month"]), int(match["day"]))
            except ValueError:
                continue
            found.append((match.start(), DateMention(date.month, date.day, date.year)))
    return [mention for _, mention in sorted(found, key=lambda f: f[0])]


# Month names of one word, as tokens of normalised text hold them (so a figure beside one is a date's day or year).
MONTH_NAMES = frozenset(name for name in _MONTH_OF if " " not in name)
