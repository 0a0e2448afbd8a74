"""Arabic-aware text handling: one normaliser, one tokenizer, language detection, sentence spans."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import Stemmer

NORMALIZER_VERSION = "3"

# Harakat, tanween, shadda, sukun, superscript alef, Quranic marks.
_TASHKEEL = re.compile("[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06ed]")
_TATWEEL = "\u0640"
_CHAR_MAP = str.maketrans(
    {
        "أ": "ا",
        "إ": "ا",
        "آ": "ا",
        "ٱ": "ا",
        "ة": "ه",
        "ى": "ي",
        "ؤ": "و",
        "ئ": "ي",
        # Arabic-Indic and Eastern Arabic-Indic digits to ASCII.
        **{chr(0x0660 + i): str(i) for i in range(10)},
        **{chr(0x06F0 + i): str(i) for i in range(10)},
        "٬": ",",
        "٫": ".",
        "\u00a0": " ",
    }
)

ARABIC_LETTER = re.compile("[\u0621-\u064a]")
LATIN_LETTER = re.compile("[A-Za-z]")
# After normalisation: runs of Arabic letters, runs of Latin letters, or numbers (with , and . inside).
_TOKEN = re.compile(r"[\u0621-\u064a]+|[a-z]+|\d+(?:[.,]\d+)*")

_AR_STOP = {
    "في", "من", "الي", "علي", "عن", "ان", "او", "ثم", "مع", "هذا", "هذه", "ذلك", "تلك", "التي", "الذي",
    "الذين", "اللذين", "ما", "ماذا", "لماذا", "كيف", "متي", "اين", "اي", "هل", "كم", "لم", "لن", "لا",
    "قد", "كان", "كانت", "يكون", "تكون", "هو", "هي", "هم", "هما", "نحن", "انا", "انت", "كل", "بعض", "غير",
    "بين", "حتي", "عند", "لدي", "فيه", "فيها", "منه", "منها", "عليه", "عليها", "به", "بها", "له", "لها",
    "الا", "اذا", "لكن", "ولكن", "بل", "و", "ف", "ب", "ل", "ك", "وفي", "ومن", "وقد", "وقال", "قال", "قالت",
    "بحسب", "وفقا", "حسب", "ايضا", "اما", "اليه", "عليهم", "بعد", "قبل", "خلال", "منذ", "حيث", "ذات",
    "هناك", "هنا", "وهو", "وهي", "كما", "لقد", "ضمن", "عبر", "نحو", "بينما", "اكثر",
}
_EN_STOP = {
    "a", "an", "the", "and", "or", "of", "to", "in", "on", "at", "for", "by", "with", "from", "as", "is",
    "are", "was", "were", "be", "been", "being", "do", "does", "did", "what", "which", "who", "whom",
    "whose", "when", "where", "why", "how", "that", "this", "these", "those", "it", "its", "their", "they",
    "them", "he", "she", "his", "her", "we", "our", "you", "your", "i", "about", "into", "over", "than",
    "according", "say", "says", "said", "has", "have", "had", "any", "each", "both", "there", "not", "no",
    "if", "so", "can", "could", "would", "should", "will", "may", "might", "articles", "article",
    "reporting", "coverage", "described", "exactly",
}
STOPWORDS = _AR_STOP | _EN_STOP


def normalize(text: str) -> str:
    """NFKC, unify hamza/alef forms, ة→ه, ى→ي, drop tashkeel and tatweel, ASCII digits, lower-case Latin."""
    text = unicodedata.normalize("NFKC", text)
    text = _TASHKEEL.sub("", text).replace(_TATWEEL, "")
    return text.translate(_CHAR_MAP).lower()


@lru_cache(maxsize=1)
def _stemmers() -> tuple[Stemmer.Stemmer, Stemmer.Stemmer]:
    return Stemmer.Stemmer("arabic"), Stemmer.Stemmer("english")


_AR_ARTICLES = ("وال", "بال", "كال", "فال", "لل", "ال")


def _stem_arabic(token: str) -> str:
    # Snowball strips affixes inconsistently across spelling variants (الإيرانية vs الايرانيه, وإيران),
    # so give it one canonical form: feminine ending as ة, article and conjunction+article removed.
    if token.endswith("ه") and len(token) > 3:
        token = token[:-1] + "ة"
    for prefix in _AR_ARTICLES:
        if token.startswith(prefix) and len(token) - len(prefix) >= 3:
            token = token[len(prefix):]
            break
    else:
        if token.startswith("وا") and len(token) >= 5:
            token = token[1:]
    if token.endswith("ات") and len(token) >= 5:
        # A sound feminine plural stems like its singular: Snowball leaves العلاقات → علاقا but العلاقة → علاق,
        # so "agreements" never met "agreement" (الاتفاقيات / الاتفاقية, المناورات / مناورة).
        token = token[:-2] + "ة"
    if token.endswith("يا") and len(token) >= 5 and token[-3] != "ا":
        # A name in -يا stems like its adjective: Snowball gives تركيا → تركي but التركي → ترك, so "Turkey"
        # never met "Turkish" (likewise سوريا / السورية, روسيا / الروسية, عسكريا / العسكري). Plurals in -ايا
        # (قضايا) are left alone.
        token = token[:-1]
    return normalize(_stemmers()[0].stemWord(token))


@lru_cache(maxsize=200_000)
def _stem(token: str) -> str:
    if ARABIC_LETTER.match(token):
        return _stem_arabic(token)
    english = _stemmers()[1]
    if token[0].isalpha():
        return english.stemWord(token)
    return token.replace(",", "")


def tokenize(text: str, *, stem: bool = True, keep_stopwords: bool = False) -> list[str]:
    """Terms for BM25 and lexical evidence: normalised, stop-words dropped, stemmed."""
    tokens = _TOKEN.findall(normalize(text))
    if not keep_stopwords:
        tokens = [t for t in tokens if t not in STOPWORDS and len(t) > 1 or t.isdigit()]
    return [_stem(t) for t in tokens] if stem else tokens


def detect_language(text: str) -> str:
    """'ar' or 'en' by which script dominates the letters; Arabic wins ties (the corpus language)."""
    arabic = len(ARABIC_LETTER.findall(text))
    latin = len(LATIN_LETTER.findall(text))
    return "en" if latin > arabic else "ar"


# Sentence ends: . ! ? ؟ ؛ followed by space or end, or a line break.
_SENT_END = re.compile(r"(?<=[.!?؟؛])[\"”»']?(?=\s)|\n+")


def sentence_spans(text: str, offset: int = 0) -> list[tuple[int, int]]:
    """Spans (start, end) of sentences in `text`, shifted by `offset`, trimmed of surrounding space."""
    spans: list[tuple[int, int]] = []
    start = 0
    for match in _SENT_END.finditer(text):
        _append_trimmed(text, start, match.end(), offset, spans)
        start = match.end()
    _append_trimmed(text, start, len(text), offset, spans)
    return spans


def _append_trimmed(text: str, start: int, end: int, offset: int, spans: list[tuple[int, int]]) -> None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end - start >= 2:
        spans.append((start + offset, end + offset))


# Clause breaks inside a sentence: an Arabic or Latin comma followed by space (not the comma of "1,000").
_CLAUSE_BREAK = re.compile(r"(?<=[،,])\s+")
CLAUSE_MIN_WORDS = 6


def clause_spans(text: str, offset: int = 0, min_words: int = CLAUSE_MIN_WORDS) -> list[tuple[int, int]]:
    """Spans (start, end) of the clauses of the sentence `text`, shifted by `offset`: its pieces between commas,
    a piece of fewer than `min_words` words joined to the next one (the last to the one before). Empty when the
    sentence is one clause: a sentence's clauses are only worth anything besides the sentence when there are two."""
    pieces: list[list[int]] = []
    start = 0
    for match in [*_CLAUSE_BREAK.finditer(text), None]:
        end = match.start() if match is not None else len(text)
        while start < end and text[start].isspace():
            start += 1
        stripped = end
        while stripped > start and text[stripped - 1].isspace():
            stripped -= 1
        if stripped > start:
            if pieces and len(text[pieces[-1][0] : pieces[-1][1]].split()) < min_words:
                pieces[-1][1] = stripped
            else:
                pieces.append([start, stripped])
        if match is not None:
            start = match.end()
    if len(pieces) > 1 and len(text[pieces[-1][0] : pieces[-1][1]].split()) < min_words:
        last = pieces.pop()
        pieces[-1][1] = last[1]
    if len(pieces) < 2:
        return []
    return [(s + offset, e + offset) for s, e in pieces]
