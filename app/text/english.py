"""English for a reader of Arabic quotes who reads no Arabic: an outlet's name in Latin letters, dates and figures in
English, and a digest of each quote (the people and places it names, its figures and dates, a few key terms glossed
from the dictionary) to stand before it. What cannot be rendered is left to the quote: nothing here guesses.
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from app.text.arabic import STOPWORDS, normalize, tokenize
from app.text.dates import MONTH_NAMES, WEEKDAY_NUMBERS, DateMention, date_mentions
from app.text.romanize import Romanizer, fits

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def english_date(mention: DateMention) -> str:
    """'Thursday 20 March 2025', '23 July', 'March 2025': as much as the text gave."""
    parts = [WEEKDAYS[mention.weekday]] if mention.weekday is not None else []
    if mention.day is not None:
        parts.append(str(mention.day))
    parts.append(MONTHS[mention.month - 1])
    if mention.year is not None:
        parts.append(str(mention.year))
    return " ".join(parts)


def iso_date_in_english(iso: str) -> str:
    """An ISO date with its day of the week: '2025-03-20' → 'Thursday 20 March 2025'."""
    date = dt.date.fromisoformat(iso)
    return english_date(DateMention(date.month, date.day, date.year, date.weekday()))


# --- figures -------------------------------------------------------------------------------------------------------

# One (واحد) is left out: "يوم واحد" says "a day", not a figure.
_UNITS = {2: "اثنان اثنين اثنتان اثنتين اثنا اثني اثنتا اثنتي", 3: "ثلاث ثلاثة", 4: "اربع اربعة",
          5: "خمس خمسة", 6: "ست ستة", 7: "سبع سبعة", 8: "ثمان ثماني ثمانية", 9: "تسع تسعة", 10: "عشر عشرة"}
_TENS = {20: "عشرون عشرين", 30: "ثلاثون ثلاثين", 40: "اربعون اربعين", 50: "خمسون خمسين", 60: "ستون ستين",
         70: "سبعون سبعين", 80: "ثمانون ثمانين", 90: "تسعون تسعين"}
_HUNDREDS = {100: "مئة مائة", 200: "مئتان مئتين مئتا مئتي مائتان مائتين", 300: "ثلاثمئة ثلاثمائة",
             400: "اربعمئة اربعمائة", 500: "خمسمئة خمسمائة", 600: "ستمئة ستمائة", 700: "سبعمئة سبعمائة",
             800: "ثمانمئة ثمانمائة ثمانيمئة", 900: "تسعمئة تسعمائة"}
_NUMBER_WORDS = {normalize(w): value for table in (_UNITS, _TENS, _HUNDREDS) for value, words in table.items()
                 for w in words.split()}
_TEEN = {normalize(w) for w in ("عشر", "عشرة")}  # ثلاثة عشر: 13
_SCALES = {**{normalize(w): 1000 for w in ("ألف", "آلاف", "ألفا", "ألفاً", "ألفي", "ألفين")},
           **{normalize(w): "million" for w in ("مليون", "ملايين", "مليونا", "مليوني", "مليونين")},
           **{normalize(w): "billion" for w in ("مليار", "مليارات", "مليارا", "ملياري", "مليارين", "بليون")}}
# Units a figure is counted in, by the word(s) after it (normalised, without their case endings).
_UNIT_WORDS = [
    (("في", "المئة"), "%"), (("في", "المائة"), "%"), (("بالمئة",), "%"), (("بالمائة",), "%"), (("%",), "%"),
    (("متر", "مكعب"), "cubic metres"), (("متر", "مربع"), "square metres"),
    (("دولار",), "dollars"), (("يورو",), "euros"), (("ريال",), "riyals"), (("جنيه",), "pounds"), (("درهم",), "dirhams"),
    (("دينار",), "dinars"), (("كيلومتر",), "km"), (("كلم",), "km"), (("كم",), "km"), (("متر",), "metres"),
    (("ميغاواط",), "MW"), (("ميغاوات",), "MW"), (("غيغاواط",), "GW"), (("كيلوواط",), "kW"), (("كيلوفولت",), "kV"),
    (("طن",), "tonnes"), (("برميل",), "barrels"), (("ساعة",), "hours"), (("ساعات",), "hours"), (("يوم",), "days"),
    (("ايام",), "days"), (("اسبوع",), "weeks"), (("اسابيع",), "weeks"), (("شهر",), "months"), (("اشهر",), "months"),
    (("سنة",), "years"), (("سنوات",), "years"), (("عام",), "years"), (("اعوام",), "years"),
]
_UNIT_WORDS = [(tuple(normalize(w) for w in phrase), english) for phrase, english in _UNIT_WORDS]
_SINGULAR = {"dollars": "dollar", "euros": "euro", "riyals": "riyal", "pounds": "pound", "dirhams": "dirham",
             "dinars": "dinar", "tonnes": "tonne", "barrels": "barrel", "hours": "hour", "days": "day",
             "weeks": "week", "months": "month", "years": "year", "metres": "metre"}
# Words before a figure that qualify it.
_QUALIFIERS = [(("نحو",), "about"), (("حوالي",), "about"), (("حوالى",), "about"), (("قرابة",), "about"),
               (("زهاء",), "about"), (("اكثر", "من"), "more than"), (("اقل", "من"), "less than"),
               (("لا", "يقل", "عن"), "at least"), (("تجاوز",), "over"), (("تجاوزت",), "over"),
               (("يتجاوز",), "over"), (("تتجاوز",), "over")]
_QUALIFIERS = [(tuple(normalize(w) for w in phrase), english) for phrase, english in _QUALIFIERS]
_ORDINALS = {normalize(w): english for english, words in (
    ("first", "أول الأول الأولى أولى"), ("second", "الثاني الثانية ثاني"), ("third", "الثالث الثالثة ثالث"),
    ("fourth", "الرابع الرابعة رابع"), ("fifth", "الخامس الخامسة"), ("sixth", "السادس السادسة"),
    ("seventh", "السابع السابعة"), ("eighth", "الثامن الثامنة"), ("ninth", "التاسع التاسعة"),
    ("tenth", "العاشر العاشرة")) for w in words.split()}
_CLITICS = ("و", "ب", "ل", "ف", "ك")
_MONTH_FIRST_WORDS = {"كانون", "تشرين"}  # كانون الثاني: a month, not "second"
# Numbers (not the digits of a Latin code such as "A2"), Arabic words, and punctuation, which no phrase spans.
_TOKEN = re.compile(r"(?<![a-z\d])\d+(?:[.,]\d+)*(?![a-z])|[\u0621-\u064a]+|%|[،,.;:؛()«»\"“”!?؟]")


# An Arabic word with tanween (fathatan, dammatan, kasratan) anywhere in it, alif after the mark or before it.
_DECLINED = re.compile("[\u0621-\u0652\u0640]*[\u064b-\u064d][\u0621-\u0652\u0640]*")


# A reference marker in an article ([9], or ［9］ as the answer shows it once defused).
_REFERENCE = re.compile(r"[\[［]\s*[\d\u0660-\u0669]+\s*[\]］]")


def _tokens(text: str) -> list[str]:
    return _TOKEN.findall(normalize(text))


def _without_clitic(word: str, known: Iterable[str]) -> str | None:
    """`word`, or `word` without a leading conjunction/preposition, if that is in `known`."""
    known = known if isinstance(known, (set, dict, frozenset)) else set(known)
    return next((form for form in _clitic_forms(word) if form in known), None)


@lru_cache(maxsize=200_000)
def _clitic_forms(word: str) -> tuple[str, ...]:
    """`word`, then `word` without each leading conjunction or preposition it may carry, in the order they are
    tried (every figure and place lookup of a quote's words goes through these)."""
    forms = [word, *(word[len(clitic):] for clitic in _CLITICS if word.startswith(clitic))]
    if word.startswith(("وب", "ول", "فب", "فل")):
        forms.append(word[2:])
    return tuple(forms)


def _stem_case(word: str) -> str:
    """A unit word without its accusative or plural endings: كيلومتراً → كيلومتر, دولارات → دولار."""
    for ending in ("ات", "ا"):
        if word.endswith(ending) and len(word) - len(ending) >= 3:
            return word[: -len(ending)]
    return word


def _format_number(value: float) -> str:
    if value == int(value):
        number = int(value)
        return f"{number:,}" if number >= 10000 else str(number)
    return f"{value:g}"


def _number_words(tokens: list[str], i: int) -> tuple[float, int] | None:
    """The value of the number written in words at tokens[i] ("اثنين وعشرين" → 22) and how many tokens it takes."""
    total, n = 0.0, i
    while n < len(tokens):
        word = tokens[n] if n == i else (tokens[n][1:] if tokens[n].startswith("و") else None)
        if word is None:
            break
        if n == i:
            word = _without_clitic(word, _NUMBER_WORDS) or ""
        value = _NUMBER_WORDS.get(word)
        if value is None:
            break
        if n + 1 < len(tokens) and value < 10 and tokens[n + 1] in _TEEN:
            value, n = value + 10, n + 1  # ثلاثة عشر
        total += value
        n += 1
    return (total, n - i) if n > i else None


def _match(tokens: list[str], i: int, phrase: tuple[str, ...]) -> bool:
    window = tokens[i : i + len(phrase)]
    if len(phrase) == 1 and window:
        return _word_is(window[0], phrase[0])
    return tuple(window) == phrase


@lru_cache(maxsize=200_000)
def _loose_forms(word: str) -> frozenset[str]:
    """Every one-word phrase `word` may be (_word_is is true only for some of these): a quick test first."""
    return frozenset(form for bare in _clitic_forms(word) for form in (bare, _stem_case(bare)))


@lru_cache(maxsize=200_000)
def _word_is(word: str, target: str) -> bool:
    """Whether `word` is the one-word phrase `target`, with a clitic or a case ending (بالدولار, دولارات)."""
    bare = _without_clitic(word, {target, _stem_case(word)}) or word
    return target in (bare, _stem_case(bare))


def figure_spans(tokens: list[str]) -> list[tuple[int, int, str]]:
    """The figures among `tokens` (normalised words) as (first token, end token, English)."""
    out: list[tuple[int, int, str]] = []
    i = 0
    while i < len(tokens):
        start, token = i, tokens[i]
        qualifier = ""
        forms = _loose_forms(token)
        for phrase, english in _QUALIFIERS:
            if (phrase[0] in forms and _match(tokens, i, phrase[:1])
                    and tuple(tokens[i + 1 : i + len(phrase)]) == phrase[1:]):
                after = i + len(phrase)
                if after < len(tokens) and (tokens[after][0].isdigit() or _number_words(tokens, after)):
                    qualifier, i, token = english, after, tokens[after]
                break
        value: float | None = None
        size = 1
        if token[0].isdigit():
            if (i + 1 < len(tokens) and tokens[i + 1] in MONTH_NAMES) or (i and tokens[i - 1] in MONTH_NAMES):
                i += 1  # a date's day or year
                continue
            value = float(token.replace(",", ""))
        else:
            words = _number_words(tokens, i)
            ordinal = _without_clitic(token, _ORDINALS)
            if words:
                value, size = words
            elif ordinal and not (i and tokens[i - 1] in _MONTH_FIRST_WORDS):
                out.append((i, i + 1, _ORDINALS[ordinal]))
                i += 1
                continue
            elif _without_clitic(token, _SCALES) and i + 1 < len(tokens) and any(
                    _match(tokens, i + 1, phrase) for phrase, _ in _UNIT_WORDS):
                value, size = 1.0, 0  # مليون متر مكعب: a million
        if value is None:
            i += 1
            continue
        j = i + size
        scale = ""
        if j < len(tokens) and _without_clitic(tokens[j], _SCALES):
            factor = _SCALES[_without_clitic(tokens[j], _SCALES)]
            if factor == 1000:
                value *= 1000
            else:
                scale = f" {factor}"
            j += 1
        unit = ""
        for phrase, english in _UNIT_WORDS:
            if _match(tokens, j, phrase):
                unit = english if english == "%" else " " + (
                    _SINGULAR.get(english, english) if value == 1 and not scale else english)
                j += len(phrase)
                break
        out.append((start, max(j, i + 1), " ".join(p for p in (qualifier, _format_number(value) + scale + unit) if p)))
        i = max(j, i + 1)
    return out


def figures(text: str) -> list[str]:
    """The figures of `text` in English with Western digits, in order: '2.1 billion dollars', 'about 650 km',
    '100,000', '18%', 'first'. Days and years of dates are left to the dates."""
    return [english for _, _, english in figure_spans(_tokens(text))]


# --- names, places and glossed terms --------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _places() -> dict[tuple[str, ...], str]:
    """Country names, and the adjectives of their languages (الإسبانية, الإسباني → Spanish), Arabic (normalised
    words) → English, from CLDR."""
    from babel import Locale

    arabic, english = Locale("ar"), Locale("en")
    out: dict[tuple[str, ...], str] = {}
    for table, adjectives in ((arabic.territories, False), (arabic.languages, True)):
        names = english.languages if adjectives else english.territories
        for code, name in table.items():
            if code not in names or code.isdigit() or "(" in name:
                continue
            words = tuple(normalize(name).split())
            if adjectives and not (len(words) == 1 and words[0].endswith("يه")):
                # Only a language named by its adjective (الإسبانية); the others are short words of their own that
                # ordinary text uses (شان, "matter", after ب is not Shan; اني is not Anii).
                continue
            forms = [words]
            if len(words) == 1:
                word = words[0]
                bare = word[2:] if word.startswith("ال") and len(word) > 4 else word
                forms.append((bare,))
                if adjectives and bare.endswith("يه"):
                    forms += [(word[:-1],), (bare[:-1],)]
            for form in forms:
                out.setdefault(form, names[code])
    return out


def _first_words(table: dict[tuple[str, ...], str]) -> dict[int, set[str]]:
    """The first words of a phrase table's entries by entry length, and under 0 those of every length. Worked out
    once per table: the places table holds a few thousand entries, and building this for every quote was most of
    an English answer's time."""
    starts: dict[int, set[str]] = {0: set()}
    for words in table:
        starts.setdefault(len(words), set()).add(words[0])
        starts[0].add(words[0])
    return starts


@lru_cache(maxsize=1)
def _place_first_words() -> dict[int, set[str]]:
    return _first_words(_places())


_TITLES = {normalize(w) for w in (
    "الرئيس", "رئيس", "وزير", "وزيرة", "الوزير", "الوزيرة", "الدكتور", "الدكتورة", "السفير", "السفيرة", "المتحدث",
    "المتحدثة", "الخبير", "الخبيرة", "الباحث", "الباحثة", "مدير", "مديرة", "الأمير", "الأميرة", "الملك", "الشيخ",
    "السيد", "السيدة", "النائب", "النائبة", "المحلل", "المحللة", "مراسل", "مراسلة", "العاصمة", "مدينة", "ميناء",
    "نهر", "سد", "شركة", "وكالة", "صحيفة", "موقع", "مجموعة", "معهد", "مؤسسة")}
# Titles that a person's name follows (الأمير بدر بن ناصر, المهندسة ليلى بنت حمد الصقري), and the words of lineage.
_PERSON_TITLES = {normalize(w) for w in (
    "الأمير", "الأميرة", "الملك", "الملكة", "السلطان", "الشيخ", "الشيخة", "السيد", "السيدة", "الدكتور", "الدكتورة",
    "المهندس", "المهندسة", "الرئيس", "الجنرال", "اللواء", "العميد", "العقيد", "الإمام", "القاضي")}
_LINEAGE = {normalize(w) for w in ("بن", "بنت", "ابن")}
# Words that name a kind of organisation, a name following them (حركة حماس, جماعتا حماس): that name is often an
# everyday word (حماس, "zeal"), which only the designator shows to be a name.
_ORGANISATIONS = {normalize(w) for w in (
    "حركة", "حركتا", "جماعة", "جماعتا", "جماعات", "منظمة", "منظمتا", "تنظيم", "تنظيما", "جبهة", "ميليشيا",
    "ميليشيات", "فصيل", "فصيلا", "فصائل", "حزب", "حزبا")}
_NAME_ZIPF_AR = 3.0  # below this Arabic word frequency a word the dictionary does not know is taken for a name
_NAME_PART_ZIPF = 4.0  # ...and below this one, beside such a word, for another word of the same name
_COMMON_ZIPF_AR = 3.3  # a form this frequent, once its affixes are taken off, shows an ordinary word
_MAX_TERMS = 5  # glossed terms per quote: enough to say what it is about, few enough to read
_GLOSS_ZIPF = 3.0  # a gloss an English reader knows
_MAX_SENSES = 3  # a word the dictionary gives more senses for is not translated clearly
_COMMON_IN_CORPUS = 0.6  # a word in this share of the articles (at least 5) is the corpus's frame, not a quote's point
_QUOTED = re.compile(r"[«\"“]([^«»\"“”]{2,60})[»\"”](?:\s*\(([A-Za-z][A-Za-z0-9 .&'’-]{1,60})\))?")
# Affixes whose removal shows an ordinary word under a rare form. Not those that names often begin or end with
# (بيلسان, ليفان, آغالي, نادية): a single ب, ل or ك, and -ان, -ي, -ة.
_PREFIXES = ("وال", "بال", "فال", "كال", "لل", "ال", "وس", "و", "ف", "ست", "سي", "سن")
_VERB_PREFIXES = ("ي", "ت", "ن")
_SUFFIXES = ("هما", "ها", "هم", "كم", "نا", "ات", "ون", "ين", "وا", "تم")


@lru_cache(maxsize=200_000)
def _zipf(word: str, language: str) -> float:
    from wordfreq import zipf_frequency

    if language != "ar":
        return zipf_frequency(word, language)
    return max(zipf_frequency(form, language) for form in _written_forms(word))


def _written_forms(word: str) -> set[str]:
    """The ways a normalised Arabic word (app.text.arabic.normalize: ة→ه, أ/إ/آ→ا, ى→ي) may be written: the word
    list counts مناورة, not مناوره (Zipf 3.6 against 1.9), so a normalised form alone reads as a rare word."""
    forms = {word}
    if len(word) > 3 and word.endswith("ه"):
        forms.add(word[:-1] + "ة")
    if word.endswith("ي"):
        forms |= {f[:-1] + "ى" for f in forms}
    for article in ("وال", "بال", "لل", "ال", "و", "ب", "ل", "ف", ""):  # longest first: the alef after them
        rest = word[len(article):]
        if word.startswith(article) and rest.startswith("ا") and len(rest) >= 3:
            forms |= {f[: len(article)] + hamza + f[len(article) + 1 :] for f in forms for hamza in "أإ"}
            break
    return forms


def _singular(word: str) -> str:
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def _affix_variants(word: str) -> set[str]:
    """`word` with its likely clitics and inflections taken off, each way at most once (وتستخدم → تستخدم, ستخدم;
    بأكمله → اكمل): forms the word list may know when it does not know the word."""
    stems = {word}
    for _ in range(2):  # فستنفذها: a conjunction, then the future
        stems |= {s[len(p):] for s in stems for p in _PREFIXES if s.startswith(p) and len(s) - len(p) >= 3}
    stems |= {s[1:] for s in stems if s.startswith(_VERB_PREFIXES) and len(s) >= 6}
    stems |= {s[: -len(x)] for s in stems for x in _SUFFIXES if s.endswith(x) and len(s) - len(x) >= 3}
    # A feminine relative adjective (استثمارية → استثمار, "investment"); the masculine -ي ends too many names.
    stems |= {s[:-2] for s in stems if s.endswith("يه") and len(s) >= 6}
    # A feminine (مؤكدة → مؤكد) or a past verb's (حشدت → حشد) ending, on a word long enough not to be a short name.
    stems |= {s[:-1] for s in stems if s.endswith(("ه", "ت")) and len(s) >= 5}
    for pronoun in ("ه", "ها", "هم"):  # بأكمله → اكمل: a preposition with a pronoun, not a name
        if word.startswith(("ب", "ل", "ك")) and word.endswith(pronoun) and len(word) - len(pronoun) >= 4:
            stems.add(word[1 : -len(pronoun)])
    return stems


@dataclass
class Digest:
    """What one quote says that an English reader can take in: names, figures, dates and glossed terms."""

    names: list[str] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    dates: list[str] = field(default_factory=list)
    terms: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        parts = [f"{label}: {', '.join(items)}" for label, items in (
            ("names", self.names), ("figures", self.figures), ("dates", self.dates), ("terms", self.terms)) if items]
        return "; ".join(parts)


class EnglishRenderer:
    """Renders Arabic text for an English reader.

    `vocabulary` counts the corpus's words (normalised) and `spread` in how many of its `articles` each appears: they
    tell a name with a leading conjunction (وبيلسان) from a name that begins with that letter (بيلسان), and a word
    every article uses from one that says what a quote is about. `outlets` maps the Arabic names of outlets the
    corpus's metadata names in English to those names. `dictionaries` (Arabic–English, English–Arabic) are
    app.text.translate's FreeDict readers, the installed ones by default; without them nothing is glossed.
    `english_words`: spell names as English text does (app.text.romanize; the word list takes a second or two to
    load)."""

    def __init__(self, vocabulary: Counter | None = None, spread: Counter | None = None, articles: int = 0,
                 outlets: dict[tuple[str, ...], str] | None = None, dictionaries=None, english_words: bool = True):
        self.vocabulary = vocabulary or Counter()
        self.spread = spread or Counter()
        self.articles = articles
        self.outlets = outlets or {}
        if dictionaries is None:
            from app.text.translate import installed_translator

            translator = installed_translator()
            dictionaries = (translator.dictionary("ar"), translator.dictionary("en"))
        self.arabic, self.english = dictionaries
        self._senses: dict[str, tuple[str, ...]] = {}
        # Each word's verdicts are pure functions of the corpus and the dictionaries: decided once per word (the
        # spelling patterns behind them cost about a millisecond a new word).
        for name in ("is_name", "_in_name", "_ordinary", "_is_ordinary", "gloss"):
            setattr(self, name, lru_cache(maxsize=1 << 16)(getattr(self, name)))
        self.romanizer = Romanizer(known=self.senses, is_ordinary=self._is_ordinary, english_words=english_words)
        self._outlet_first_words = _first_words(self.outlets)

    @classmethod
    def for_corpus(cls, corpus, dictionaries=None, english_words: bool = True) -> EnglishRenderer:
        vocabulary: Counter = Counter()
        spread: Counter = Counter()
        outlets: dict[tuple[str, ...], str] = {}
        for article in corpus.articles.values():
            tokens = _tokens(article.raw)
            vocabulary.update(tokens)
            spread.update(set(tokens))
            meta = article.meta
            for arabic, english in ((meta.source, meta.source_en), (meta.original, meta.original_en)):
                english = re.sub(r"\s*\([^)]*\)", "", english).strip()
                if arabic and english:
                    outlets[tuple(_tokens(arabic))] = english
        return cls(vocabulary, spread, len(corpus.articles), outlets, dictionaries, english_words)

    # -- the dictionary --

    def senses(self, word: str) -> tuple[str, ...]:
        """The English senses the dictionary gives for this word form (its article and a leading conjunction or
        preposition aside), in the dictionary's order."""
        plain = normalize(word)
        if plain in self._senses:
            return self._senses[plain]
        found: tuple[str, ...] = ()
        if self.arabic is not None:
            forms = [plain]
            for clitic in ("وال", "بال", "فال", "كال", "لل", "و", "ب", "ل", "ف", "ك"):
                if plain.startswith(clitic) and len(plain) - len(clitic) >= 3:
                    rest = plain[len(clitic):]
                    forms.append("ال" + rest if clitic.endswith("ال") or clitic == "لل" else rest)
            forms += ["ال" + f for f in list(forms) if not f.startswith("ال")]
            forms += [f[2:] for f in list(forms) if f.startswith("ال") and len(f) > 4]
            for form in dict.fromkeys(forms):
                entries = self.arabic.entries.get(tuple(tokenize(form, keep_stopwords=True)), [])
                found = tuple(dict.fromkeys(t for e in entries if e.headword == form for t in e.translations))
                if found:
                    break
        self._senses[plain] = found
        return found

    def _is_ordinary(self, latin: str) -> bool:
        """Whether the Latin word is an ordinary English word (the dictionary translates it, and not by writing it
        in Arabic letters as it does a name)."""
        if self.english is None:
            return _zipf(latin.lower(), "en") >= _GLOSS_ZIPF
        stems = tuple(tokenize(latin, keep_stopwords=True))
        translations = self.english.lookup(stems, latin.lower()) if stems else []
        return bool(translations) and not any(" " not in t.strip() and fits(t, latin) for t in translations)

    def gloss(self, word: str) -> str | None:
        """The word's English translation when the dictionary gives one clearly: at most a few senses, one of them a
        common English word clearly ahead of the rest, or two near-equal ones ("missiles/rockets"); None otherwise.
        Names (senses the dictionary writes as the Arabic sounds), abbreviations, adverbs and verb forms are not
        glosses."""
        candidates: dict[str, tuple[float, str]] = {}
        for sense in self.senses(word):
            sense = sense.strip().lower()
            if (not re.fullmatch(r"[a-z][a-z-]+(?: [a-z][a-z-]+)?", sense) or not re.search("[aeiouy]", sense)
                    or sense.endswith(("ly", "ing", "ed")) or not self._is_ordinary(sense.split()[-1])):
                continue
            zipf = min(_zipf(w, "en") for w in sense.split())
            key = _singular(sense)
            if zipf > candidates.get(key, (0.0, ""))[0]:
                candidates[key] = (zipf, sense)
        ranked = sorted(candidates.values(), reverse=True)
        if not ranked or len(ranked) > _MAX_SENSES or ranked[0][0] < _GLOSS_ZIPF:
            return None
        if len(ranked) == 1 or ranked[0][0] - ranked[1][0] >= 0.5:
            return ranked[0][1]
        if len(ranked) == 2:
            return f"{ranked[0][1]}/{ranked[1][1]}"
        return None

    # -- names --

    def _bare(self, word: str) -> str:
        """The word without a leading conjunction or preposition, when the corpus uses it without one."""
        for clitic in ("وب", "ول", "فب", "فل", *_CLITICS):
            rest = word[len(clitic):]
            if word.startswith(clitic) and len(rest) >= 3 and self.vocabulary[rest] > self.vocabulary[word]:
                return rest
        return word

    def _ordinary(self, word: str) -> bool:
        """A form of an ordinary Arabic word: the dictionary knows it, or the word list knows it well once its
        affixes are off."""
        return any(_zipf(v, "ar") >= _COMMON_ZIPF_AR or self.senses(v) for v in _affix_variants(word) - {word})

    def is_name(self, word: str, adjective: bool = True) -> bool:
        """A name-like word: not a function word, not a word the dictionary translates (unless by a spelling of the
        word itself, as it does names), rare as an Arabic word and not a form of a common one; or the adjective of
        such a name that the corpus uses (الزمرانية from زمران)."""
        if (word in STOPWORDS or len(word) < 3 or word in WEEKDAY_NUMBERS or word in MONTH_NAMES
                or not word[0].isalpha() or word in _TITLES):
            return False
        bare = word[2:] if word.startswith("ال") and len(word) > 4 else word
        senses = self.senses(word)
        if senses:
            return any(fits(bare, s) for s in senses if " " not in s)
        base = _adjective_base(bare, self.vocabulary) if adjective else None
        if base:
            return self.is_name(base, adjective=False)  # زمرانية is a name's adjective, إيرانية a common word's
        if self._ordinary(bare):
            return False
        zipf = _zipf(bare, "ar")
        # A commoner word is still a name when English spells it as a name of its own (فوغل → Vogel).
        return zipf < _NAME_ZIPF_AR or (zipf < _NAME_PART_ZIPF and bare == word
                                       and self.romanizer.english_spelling(bare) is not None)

    def _in_name(self, word: str) -> bool:
        """A word that may continue a name beside a name-like word: not as rare, but unknown to the dictionary."""
        if self.is_name(word, adjective=False):
            return True
        return (word not in STOPWORDS and len(word) >= 3 and word[0].isalpha() and not self.senses(word)
                and _zipf(word, "ar") < _NAME_PART_ZIPF and word not in _TITLES and not self._ordinary(word)
                and not _adjective_base(word[2:] if word.startswith("ال") else word, self.vocabulary))

    def names_in(self, tokens: list[str], text: str, taken: set[int], spellings: list[str]) -> list[tuple[int, str]]:
        """The names among `tokens` (not at the positions `taken`) as (position, Latin): outlets the metadata names
        in English, countries and peoples (CLDR), names quoted with their Latin form in brackets or quoted alone,
        and runs of name-like words."""
        found: list[tuple[int, str]] = []
        for table, starts in ((self.outlets, self._outlet_first_words), (_places(), _place_first_words())):
            # The positions whose word (or the word without its clitic) opens some entry: most words open none.
            openers = [i for i, token in enumerate(tokens) if not starts[0].isdisjoint(_clitic_forms(token))]
            for size in sorted(starts, reverse=True):
                if not size:
                    continue
                for i in openers:
                    if i > len(tokens) - size:
                        break
                    first = _without_clitic(tokens[i], starts[size])
                    key = (first, *tokens[i + 1 : i + size]) if first else None
                    if key in table and not taken & set(range(i, i + size)):
                        found.append((i, table[key]))
                        taken |= set(range(i, i + size))
        for match in _QUOTED.finditer(normalize(text)):  # «يونهوا سولار» (Yeonhwa Solar), "محمد جواد ظريف"
            words = [w for w in _tokens(match[1]) if w[0].isalpha()]
            start = _find_run(tokens, words, taken) if 1 <= len(words) <= 4 else None
            if start is None or not (match[2] or any(self.is_name(self._bare(w)) for w in words)):
                continue
            found.append((start, match[2] or self.romanizer.name(" ".join(words), spellings)))
            taken |= set(range(start, start + len(words)))
        # A word written with tanween (مؤكداً, "stressing") has a case ending, which names do not take.
        declined = {normalize(w) for w in _DECLINED.findall(text)}
        for i in range(len(tokens) - 1):  # الأمير بدر بن ناصر: after a person's title, a name even of common words
            if tokens[i] not in _PERSON_TITLES or i + 1 in taken or not self._may_open_name(tokens[i + 1], declined):
                continue
            end = i + 2
            while end < len(tokens) and end not in taken:
                if tokens[end] in _LINEAGE and end + 1 < len(tokens) and end + 1 not in taken \
                        and self._may_open_name(tokens[end + 1], declined):
                    end += 2  # بن راشد, بنت حمد
                elif tokens[end] not in declined and self._in_name(tokens[end]):
                    end += 1  # الكندي, a family name after the given names
                else:
                    break
            run = tokens[i + 1 : end]
            found.append((i + 1, self.romanizer.name(" ".join(run), spellings)))
            taken |= set(range(i + 1, end))
        for i in range(len(tokens) - 1):  # جماعتا حماس وحزب الله: an organisation's designator, then its name
            designator = _without_clitic(tokens[i], _ORGANISATIONS)
            if designator is None or i in taken:
                continue
            taken.add(i)  # the designator is a common noun, never a name of its own ("Jamaeta")
            following = tokens[i + 1]
            # Not an al- word (حركة الملاحة, "shipping traffic") nor a feminine adjective agreeing with the
            # designator (حركة احتجاجية, جماعة مسلحة), and a word English spells as a name or a name-like word,
            # not a verb (حركة شهدت, "traffic saw").
            if (i + 1 in taken or not self._may_open_name(following, declined) or following.endswith("ه")
                    or not (self.romanizer.english_spelling(following) or self._in_name(following))):
                continue
            found.append((i + 1, self.romanizer.name(following, spellings)))
            taken.add(i + 1)
        for i in range(len(tokens)):  # رستم آغالي, ليفان دارسي
            if i in taken or tokens[i] in declined or not self.is_name(self._bare(tokens[i])):
                continue
            start, end = i, i + 1
            adjective = _adjective_base(tokens[i][2:] if tokens[i].startswith("ال") else tokens[i], self.vocabulary)
            # A name does not open with the article: an al- word before it is the noun it follows ("the Kremlin's
            # spokesman Dmitri Peskov"), and an al- word standing alone is a common noun (الدول, "the states").
            while (not adjective and start > 0 and start - 1 not in taken and not tokens[start - 1].startswith("ال")
                   and tokens[start - 1] not in declined and self._in_name(tokens[start - 1])):
                start -= 1
            while (not adjective and end < len(tokens) and end not in taken and tokens[end] not in declined
                   and self._in_name(tokens[end])):
                end += 1
            while not adjective and end - start > 1 and tokens[start].startswith("ال"):
                start += 1
            if not adjective and end - start == 1 and tokens[start].startswith("ال"):
                continue
            run = [self._bare(tokens[start]), *tokens[start + 1 : end]]
            found.append((start, self._name_or_adjective(run, spellings)))
            taken |= set(range(start, end))
        return sorted(found)

    @staticmethod
    def _may_open_name(word: str, declined: set[str]) -> bool:
        """Whether `word`, right after a person's title, can be the first word of their name: a word, not an
        al- word (رئيس الوزراء, "the prime minister", is a title too), a function word or a declined word."""
        return (word[0].isalpha() and len(word) >= 3 and not word.startswith("ال") and word not in STOPWORDS
                and word not in declined and word not in _TITLES and word not in _LINEAGE)

    def _name_or_adjective(self, run: list[str], spellings: list[str]) -> str:
        """A run of name words in Latin; a one-word adjective of a name the corpus uses (الزمرانية from زمران) as the
        name with -i: Zamrani."""
        if len(run) == 1:
            word = run[0][2:] if run[0].startswith("ال") and len(run[0]) > 4 else run[0]
            base = _adjective_base(word, self.vocabulary)
            if base and self.is_name(base, adjective=False):
                # The adjective of a name English knows is left to that name (الأوروبية → Europe); of another, the
                # name with -i (الزمرانية → Zamrani). Either as the reader spells the name, when the question does
                # (Qaldar: القلداري → Qaldar, not the word list's Goldar).
                known = self.romanizer.english_spelling(base)
                for latin in spellings:
                    if fits(base, latin):
                        return latin if known else latin + "i"
                return known or self.romanizer.word(base, spellings) + "i"
        return self.romanizer.name(" ".join(run), spellings)

    # -- the digest --

    def digest(self, text: str, question: str = "") -> Digest:
        """The English digest of an Arabic quote. The question's own Latin words spell the names it shares with the
        quote, and the terms it asks about are glossed (no others)."""
        spellings = re.findall(r"[A-Za-z][A-Za-z'’-]+", question)
        asked = {_singular(w.lower()) for w in spellings}
        text = _REFERENCE.sub(" ", text)  # a footnote's [9] is no figure of the quote
        tokens = _tokens(text)
        taken: set[int] = set()
        figure_items = figure_spans(tokens)
        for start, end, _ in figure_items:
            taken |= set(range(start, end))
        names = self.names_in(tokens, text, taken, spellings)
        digest = Digest(names=list(dict.fromkeys(latin for _, latin in names if latin)),
                        figures=list(dict.fromkeys(english for _, _, english in figure_items)),
                        dates=list(dict.fromkeys(english_date(m) for m in date_mentions(text))))
        shown = {w.lower() for item in digest.names + digest.figures for w in item.split()}
        glossed: list[tuple[int, float, int, str]] = []  # (not asked, -Arabic frequency, position, gloss)
        for i, token in enumerate(tokens):
            if (i in taken or token in STOPWORDS or not token[0].isalpha() or token in MONTH_NAMES
                    or token in WEEKDAY_NUMBERS or self._frames_corpus(token)):
                continue
            gloss = self.gloss(token)
            if gloss is None or gloss in shown:
                continue
            words = {_singular(w) for w in re.split(r"[/ ]", gloss)}
            if not words & asked:
                # Only the terms the question asks about: a dictionary sense out of context misleads as often as it
                # helps (الوطنية "patriotism" for "national"), while one the question names confirms what the
                # quote is about.
                continue
            shown.add(gloss)
            glossed.append((0, -_zipf(token, "ar"), i, gloss))
        chosen = sorted(glossed)[:_MAX_TERMS]
        digest.terms = [gloss for *_, gloss in sorted(chosen, key=lambda g: g[2])]
        return digest

    def _frames_corpus(self, token: str) -> bool:
        return self.articles >= 5 and self.spread[token] >= _COMMON_IN_CORPUS * self.articles

    def outlet(self, name: str) -> str:
        """An outlet's Arabic name in Latin letters: 'The Meridian Post', 'Al-Afaq Al-Arabi', 'Austra agency'."""
        words = [w for w in _tokens(name) if w[0].isalpha()]
        if tuple(words) in self.outlets:
            return self.outlets[tuple(words)]
        kind = _OUTLET_KINDS.get(words[0]) if len(words) > 1 else None
        latin = self.romanizer.name(" ".join(words[1:] if kind else words), title=True)
        return f"{latin} {kind}" if kind else latin


_OUTLET_KINDS = {normalize(k): v for k, v in (
    ("صحيفة", "newspaper"), ("جريدة", "newspaper"), ("مجلة", "magazine"), ("نشرة", "bulletin"), ("موقع", "website"),
    ("وكالة", "agency"), ("شبكة", "network"), ("قناة", "channel"), ("مؤسسة", "foundation"))}


def _adjective_base(word: str, vocabulary: Counter) -> str | None:
    """The name an adjective is made from, when the corpus uses that name: زمرانية → زمران."""
    for ending in ("يون", "يين", "يه", "ي"):
        base = word[: -len(ending)]
        if word.endswith(ending) and len(base) >= 4:
            for name in (base, base + "ا"):  # أوروبية → أوروبا
                if vocabulary[name]:
                    return name
    return None


def _find_run(tokens: list[str], words: list[str], taken: set[int]) -> int | None:
    for start in range(len(tokens) - len(words) + 1):
        window = tokens[start : start + len(words)]
        if (all(a == b or a.endswith(b) and len(a) - len(b) <= 2 for a, b in zip(window, words))
                and not taken & set(range(start, start + len(words)))):
            return start
    return None
