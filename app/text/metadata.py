"""Metadata an article states in its own text: the outlet that published it, the publication it translates or quotes,
and its date, for articles that come without (or with incomplete) metadata.

Where each is read, most trusted first:
- outlet: a source line ("المصدر: X + Y", "المصدر | ORIGINAL - ترجمة X"); the site name at the top of the page when
  the page names itself again ("لـ«X»", "تابعوا «X» على", a byline "المدينة - «X»"); otherwise those self-references.
- original: the source line; otherwise the publication the article keeps attributing to ("قالت صحيفة «X»",
  "بحسب موقع X" ... "وأضافت الصحيفة"), named in its headline or first paragraphs. Its Latin name only when the
  text gives it in brackets: «هاربر لاين ديلي» (Harbour Line Daily).
- date: the dateline.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from app.text.arabic import normalize
from app.text.clean import Line, classify
from app.text.dates import find_date

_SOURCE_LINE = re.compile(r"^(?:ال)?مصدر\s*[:|]\s*(?P<value>.+)$")
_TRANSLATED = re.compile(r"^(?P<original>.+?)\s*[-–]\s*(?:ترجمة|تعريب)(?:\s+و(?:تحرير|إعداد|اعداد))?\s+(?P<source>.+)$")
# Entries of a source line that name no outlet: "المصدر: مدار الخبر + وكالات".
_NO_OUTLET = {normalize(w) for w in ("وكالات", "وكالات الأنباء", "مواقع", "صحف", "مصادر", "متابعات", "agencies")}
_QUOTED = re.compile(r"[«\"“]([^«»\"“”\n]{2,40})[»\"”]")
_SELF_REFERENCE_IN_BODY = re.compile(  # "وقال مصدر ... لـ«المشهد الإقليمي»": someone told this outlet
    r"(?:قال|قالت|صرح|صرّح|تحدث|تحدّث|أكد|أكّد|أوضح)[^.«»\n]{0,80}?(?<!\w)لـ?\s?«([^«»\n]{2,40})»")
_SELF_REFERENCE = [  # in the page's furniture
    re.compile(r"تابعوا\s+«([^«»\n]{2,40})»"),
    re.compile(r"المزيد من(?: ترجمات)?\s+«?([^«»\n]{2,40}?)»?\s*$"),
    re.compile(r"^\S+(?:\s\S+)?\s+[-–]\s+(?:خاص\s+)?«?([^«»\n]{2,40}?)»?$"),  # byline "المدينة - «X»"
    re.compile(r"^([^-–\n]{2,40}?)\s*-$"),  # byline "وكالة هاوار-"
    re.compile(r"©.*?(?<!\w)(?:لموقع|لصحيفة|لـ?)\s?«?([^«»\n©]{2,40}?)»?\s*[\d٠-٩]*$"),
    re.compile(r"©\s*(?:[\d٠-٩]{4}\s*)?([^\d٠-٩©]{2,40}?)\s*$"),
]
# A publication named by its kind: "صحيفة «X»", "موقع X الأمريكي". The kind word alone later ("الصحيفة") refers back.
_KINDS = {"صحيفة": "صحيفة", "جريدة": "صحيفة", "مجلة": "مجلة", "نشرة": "نشرة", "موقع": "موقع", "وكالة": "وكالة",
          "شبكة": "شبكة", "قناة": "قناة", "مؤسسة": "مؤسسة"}
_KIND_RE = "|".join(_KINDS)
_NAMED_QUOTED = re.compile(rf"(?<!\w)[وبل]?({_KIND_RE})\s+[«\"“]([^«»\"“”\n]{{2,40}})[»\"”]")
# Unquoted, only after words that name nothing but publications, and only when an adjective of origin follows the
# name ("موقع المنيتور الأمريكي", "صحيفة كوميرسانت الروسية"): "قناة السويس" and "شبكة الكهرباء" are not outlets.
_NAMED_PLAIN = re.compile(
    r"(?<!\w)[وبل]?(صحيفة|جريدة|مجلة|موقع)\s+((?:[^\s«»\"“”،,.:؛()]+\s){1,3}?)(ال\w+ي(?:ة|ه)?)(?!\w)")
_BACK_REFERENCE = re.compile(rf"(?<!\w)(?:[وبف]?ال|[وف]?لل)({_KIND_RE})(?!\w)")  # الصحيفة، وللصحيفة
_LATIN_AFTER = re.compile(r"^[»\"”]?\s*\(([A-Za-z][A-Za-z0-9 .&'’-]{1,60})\)")
_LEAD_CHARS = 700  # the headline and first paragraphs: where an article says whom it follows
_MIN_ATTRIBUTIONS = 3  # mentions plus back-references before a publication counts as the article's original


@dataclass(frozen=True)
class TextMeta:
    """ArticleMeta fields read from an article's text; empty when the text does not say."""

    source: str = ""
    original: str = ""
    original_en: str = ""
    date: str | None = None


def _name(text: str) -> str:
    return " ".join(text.strip(" \t\"'«»“”()[]:|-–.،,").split())


def _is_outlet(name: str) -> bool:
    words = name.split()
    return 0 < len(words) <= 5 and not re.search(r"[\d٠-٩:؟?!،,]", name) and normalize(name) not in _NO_OUTLET


def _source_line(lines: list[Line]) -> tuple[str, str]:
    """(outlet, original) from a line such as "المصدر: X + Y" or "المصدر | ORIGINAL - ترجمة X"."""
    for line in lines:
        match = None if line.is_body else _SOURCE_LINE.match(line.text)
        if match is None:
            continue
        value = match["value"].split("|")[-1].strip()  # "المصدر | الكاتب | الصحيفة - ترجمة ..." ends with the paper
        translated = _TRANSLATED.match(value)
        if translated:
            return _name(translated["source"]), _name(translated["original"])
        parts = [_name(p) for p in re.split(r"\s[+&،]\s|،", value)]
        parts = [p for p in parts if _is_outlet(p)]
        if parts:
            return parts[0], next((p for p in parts[1:] if p != parts[0]), "")
    return "", ""


def _self_references(lines: list[Line]) -> Counter:
    """Names the page gives itself: in its furniture (bylines, share and copyright lines) and in "told «X»"."""
    found: Counter = Counter()
    for line in lines:
        for pattern in [_SELF_REFERENCE_IN_BODY] if line.is_body else _SELF_REFERENCE:
            for match in pattern.finditer(line.text):
                name = _name(match[1])
                if _is_outlet(name):
                    found[name] += 1
    return found


def _masthead(lines: list[Line]) -> str:
    """The site name on the page's first line, if the page names itself so again (in quotes, or in its furniture):
    a section label ("اقتصاد") at the top is not named again."""
    if not lines or lines[0].is_body:
        return ""
    name = _name(re.split(r"\s[|–-]\s", lines[0].text)[0])
    words = name.split()
    if not _is_outlet(name) or len(words) > 4:
        return ""
    core = normalize(" ".join(words[1:]) if len(words) > 1 and words[0] in _KINDS else name)  # "صحيفة المرفأ"
    for line in lines[1:]:
        text = normalize(line.text)
        if core in text and (not line.is_body or any(core in normalize(q) for q in _QUOTED.findall(line.text))):
            return name
    return ""


def _attributed(lines: list[Line], source: str) -> str:
    """The publication the article keeps attributing to, if its lead names it."""
    body = [line.text for line in lines if line.is_body]
    scores: Counter = Counter()
    kind_of: dict[str, str] = {}
    lead: set[str] = set()
    last_of_kind: dict[str, str] = {}
    offset = 0
    for text in body:
        events = []  # (position, name or None for a back-reference, kind)
        for match in _NAMED_QUOTED.finditer(text):
            events.append((match.start(), _name(match[2]), _KINDS[match[1]]))
        for match in _NAMED_PLAIN.finditer(text):
            if not any(start == match.start() for start, _, _ in events):
                events.append((match.start(), _name(match[2]), _KINDS[match[1]]))
        for match in _BACK_REFERENCE.finditer(text):
            events.append((match.start(), None, _KINDS[match[1]]))
        for match in _QUOTED.finditer(text):  # "وتختم «ذا ميريديان بوست»": a known name, quoted on its own
            name = _name(match[1])
            if name in kind_of and not any(start < match.start() <= start + 12 for start, _, _ in events):
                events.append((match.start(), name, kind_of[name]))
        for position, name, kind in sorted(events, key=lambda e: e[0]):
            if name is None:
                name = last_of_kind.get(kind) or next((k for k, v in kind_of.items() if v == kind), None)
                if name is None:
                    continue
            elif not _is_outlet(name):
                continue
            kind_of.setdefault(name, kind)
            last_of_kind[kind] = name
            scores[name] += 1
            if offset + position < _LEAD_CHARS:
                lead.add(name)
        offset += len(text) + 1
    ranked = [(score, name) for name, score in scores.items()
              if name in lead and score >= _MIN_ATTRIBUTIONS and normalize(name) != normalize(source)]
    return max(ranked)[1] if ranked else ""


def _latin_name(raw: str, name: str) -> str:
    """The Latin name the text gives in brackets right after `name`: «هاربر لاين ديلي» (Harbour Line Daily)."""
    for match in re.finditer(re.escape(name), raw):
        latin = _LATIN_AFTER.match(raw[match.end():match.end() + 80])
        if latin:
            return latin[1].strip()
    return ""


def read_meta(raw: str) -> TextMeta:
    lines = classify(raw)
    masthead = _masthead(lines)
    source, original = _source_line(lines)
    if source and not original and masthead and normalize(source) != normalize(masthead):
        source, original = masthead, source  # "المصدر: رويترز" on another outlet's page
    if not source:
        references = _self_references(lines)
        source = masthead or (references.most_common(1)[0][0] if references else "")
    original = original or _attributed(lines, source)
    dateline = next((line for line in lines if line.kind == "dateline"), None)
    date = find_date(dateline.text) if dateline else None
    return TextMeta(source=source, original=original, original_en=_latin_name(raw, original) if original else "",
                    date=date.isoformat() if date else None)
