"""Query translation: a question's words in one language as index terms of the other, through FreeDict dictionaries.

An English question over Arabic articles shares almost no terms with them, so BM25 cannot rank them; the
dictionary's Arabic translations of the question's content words can. Each word keeps its alternative translations
together (`TranslatedWord.alternatives`): retrieval scores them as one query term, a synonym set (Pirkola's
structured query, app.index.synonym_set_scores), so a word with three translations does not weigh three times as
much as a word with one, nor a passage holding two of them twice as much as one holding one.

The dictionaries are Debian's dict-freedict-eng-ara and dict-freedict-ara-eng (dictd format), read where they are
installed; without them nothing is translated.
"""

from __future__ import annotations

import gzip
import logging
import re
import threading
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from app.text.arabic import NORMALIZER_VERSION, STOPWORDS, detect_language, tokenize
from app.text.cache import kept

log = logging.getLogger(__name__)

# The weight of the translated terms' ranking in the retriever's rank fusion (the dense ranking weighs 1.0).
# Measured on both development corpora's English questions over their Arabic articles, for weights from 0.25 to 1.5:
# the one good on both (docs/query-translation.md gives the figures).
TRANSLATION_WEIGHT = 0.5

DICTD_DIR = Path("/usr/share/dictd")
# Parsing a dictionary takes about 2 s (every headword tokenised as the index's terms are), reading the kept copy
# about 0.3 s (Dictionary.load); a change to `parse` changes this so that no copy of the old parse is read.
PARSER_VERSION = 1
# Question language -> the dictionary that translates it, and the article language it translates into.
DICTIONARIES = {"en": ("freedict-eng-ara", "ar"), "ar": ("freedict-ara-eng", "en")}

# A translation of more than this many terms is a gloss ("nocturnal African mammal"), not a word an article uses.
MAX_TRANSLATION_TERMS = 3
_MAX_PHRASE_WORDS = 4
# English function words that the project's stop-word list keeps (app.text.arabic.STOPWORDS): their dictionary
# translations are Arabic function words or another sense (after → فيما, out → خارج), never what a passage is about.
_FUNCTION_WORDS = {
    "after", "before", "under", "above", "out", "up", "down", "off", "between", "against", "during", "since", "until",
    "while", "also", "then", "here", "more", "most", "less", "very", "just", "only", "other", "such", "same", "own",
    "many", "much", "some", "all", "one", "ever", "still", "yet", "again", "whether", "within", "without", "through",
    "upon", "onto", "toward", "towards", "among", "per", "via", "itself", "themselves",
}
# English inflectional endings: after the stem, with the stem's last e or i dropped (drones, signed, studies).
_INFLECTIONS = ("", "e", "s", "es", "d", "ed", "ing", "y", "ies", "ied", "ying")
_NUMBERING = re.compile(r"^\s*\d+\.\s*")
_PARENTHESES = re.compile(r"\([^)]*\)")
_SEPARATORS = re.compile("[،,;؛]")
_PRONUNCIATION = re.compile(r"\s+/[^/]*/\s*$")
_DICTD_DIGITS = {c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}


@dataclass(frozen=True)
class TranslatedWord:
    """A word (or a dictionary phrase such as "real estate") of a question, and its translations as index terms.
    Each alternative is one translation's terms, all of which a passage must hold for it to match."""

    source: str
    alternatives: tuple[tuple[str, ...], ...]

    @property
    def terms(self) -> list[str]:
        return list(dict.fromkeys(t for alternative in self.alternatives for t in alternative))


@dataclass(frozen=True)
class Entry:
    headword: str  # its words as tokenize(stem=False) gives them, space-separated
    translations: tuple[str, ...]


class Dictionary:
    """A dictd dictionary, its entries keyed by the stemmed terms of their headwords (as the question's are)."""

    def __init__(self, entries: Mapping[tuple[str, ...], list[Entry]], language: str):
        self.entries = entries
        self.language = language  # of the headwords
        self.max_phrase = max((len(key) for key in entries), default=1)

    @classmethod
    def load(cls, prefix: Path, language: str) -> Dictionary:
        """The dictionary at `prefix` (see `parse`), parsed once per machine: the parsed copy is kept by
        app.text.cache, keyed by the files' size and time and the normaliser's and parser's versions."""
        files = [Path(f"{prefix}.index"), Path(f"{prefix}.dict.dz")]
        stamp = "-".join(f"{f.stat().st_size}-{f.stat().st_mtime_ns}" for f in files)
        key = f"{Path(prefix).name}-{stamp}-n{NORMALIZER_VERSION}-p{PARSER_VERSION}"
        dictionary = kept(key, lambda: cls.parse(prefix, language), cls)
        return dictionary if dictionary.language == language else cls.parse(prefix, language)

    @classmethod
    def parse(cls, prefix: Path, language: str) -> Dictionary:
        """From `prefix`.index (headword, offset, length; numbers in dictd's base64 digits) and `prefix`.dict.dz
        (gzip-compatible). A body is the headword with its pronunciation, then one line of translations separated
        by commas, or numbered lines ("1. ...")."""
        with gzip.open(f"{prefix}.dict.dz") as dictzip:
            body = dictzip.read()
        entries: dict[tuple[str, ...], list[Entry]] = {}
        with open(f"{prefix}.index", encoding="utf-8") as index:
            for line in index:
                fields = line.rstrip("\n").split("\t")
                if len(fields) != 3 or fields[0].startswith(("00database", "00-database")):
                    continue
                start, length = _dictd_number(fields[1]), _dictd_number(fields[2])
                headline, _, rest = body[start : start + length].decode("utf-8").partition("\n")
                headword = _PRONUNCIATION.sub("", headline).strip() or fields[0]
                key = tuple(tokenize(headword, keep_stopwords=True))
                translations = tuple(t for t in (_PARENTHESES.sub("", part).strip() for text in rest.splitlines()
                                                 for part in _SEPARATORS.split(_NUMBERING.sub("", text))) if t)
                if key and translations:
                    surface = " ".join(tokenize(headword, stem=False, keep_stopwords=True))
                    entries.setdefault(key, []).append(Entry(surface, translations))
        return cls(entries, language)

    def lookup(self, stems: tuple[str, ...], surface: str) -> list[str]:
        """The translations of the word (or phrase) whose stemmed terms are `stems`. An English word also takes the
        entries of its other inflections (drones → drone, signed → sign), not of words derived from its stem
        (organization is not organ). The stemmer's stem may be shorter than the word's (ministers → minist): an
        entry whose headword the word inflects counts too (ministers → minister)."""
        found = self.entries.get(stems, [])
        if self.language == "en" and len(stems) == 1:
            found = [e for e in found if e.headword == surface
                     or _is_inflection(e.headword, stems[0]) and _is_inflection(surface, stems[0])
                     or _is_inflection(surface, e.headword)]
        return list(dict.fromkeys(t for entry in found for t in entry.translations))


def _dictd_number(digits: str) -> int:
    value = 0
    for c in digits:
        value = value * 64 + _DICTD_DIGITS[c]
    return value


def _is_inflection(word: str, stem: str) -> bool:
    """Whether `word` is `stem` with an inflectional ending (drone: drones, droned; sign: signed; studi: studies)."""
    root = stem[:-1] if stem[-1:] in ("e", "i") else stem
    ending = word[len(root):] if word.startswith(root) else None
    doubled = root[-1:] + "ed", root[-1:] + "ing"  # planned, planning
    return ending is not None and (ending in _INFLECTIONS or ending in doubled)


class QueryTranslator:
    """Translates a question's words into the terms of articles in another language.

    `dictionaries` maps a question language to its dictionary; those not given are read from `folder` (Debian's
    dictd files) on first use, and a missing one is logged once and translates nothing."""

    def __init__(self, dictionaries: Mapping[str, Dictionary] | None = None, folder: Path = DICTD_DIR):
        self._dictionaries: dict[str, Dictionary | None] = dict(dictionaries or {})
        self.folder = folder
        self._lock = threading.Lock()

    def dictionary(self, language: str) -> Dictionary | None:
        if language not in self._dictionaries:
            with self._lock:
                if language not in self._dictionaries:
                    self._dictionaries[language] = self._load(language)
        return self._dictionaries[language]

    def warm_up(self, article_languages: Collection[str]) -> None:
        """Read now the dictionaries that questions over articles in these languages would need."""
        for language, (_, target) in DICTIONARIES.items():
            if target in article_languages:
                self.dictionary(language)

    def _load(self, language: str) -> Dictionary | None:
        if language not in DICTIONARIES:
            return None
        name, _ = DICTIONARIES[language]
        prefix = self.folder / name
        if not Path(f"{prefix}.index").is_file() or not Path(f"{prefix}.dict.dz").is_file():
            log.warning("no dictionary at %s.index: %s questions are not translated (install the Debian package "
                        "dict-%s, as `make install` does)", prefix, language, name)
            return None
        return Dictionary.load(prefix, language)

    def translate(self, question: str, vocabulary: Collection[str],
                  article_languages: Collection[str]) -> list[TranslatedWord]:
        """The question's words and dictionary phrases that have a translation into a language of the articles
        whose terms are all in `vocabulary` (the index's terms), in question order; stop-words and words without
        such a translation are left out."""
        language = detect_language(question)
        target = DICTIONARIES.get(language, (None, None))[1]
        if target not in article_languages:
            return []
        dictionary = self.dictionary(language)
        if dictionary is None:
            return []
        words = tokenize(question, stem=False, keep_stopwords=True)
        stems = tokenize(question, keep_stopwords=True)
        out: list[TranslatedWord] = []
        i = 0
        while i < len(words):
            for size in range(min(dictionary.max_phrase, _MAX_PHRASE_WORDS, len(words) - i), 0, -1):
                if size == 1 and (words[i] in STOPWORDS or words[i] in _FUNCTION_WORDS or len(words[i]) < 2
                                  or words[i].isdigit()):
                    break
                surface = " ".join(words[i : i + size])
                alternatives = _known(dictionary.lookup(tuple(stems[i : i + size]), surface), vocabulary)
                if alternatives:
                    out.append(TranslatedWord(surface, alternatives))
                    i += size - 1
                    break
            i += 1
        return out


def _known(translations: list[str], vocabulary: Collection[str]) -> tuple[tuple[str, ...], ...]:
    """Each translation's terms, kept when the articles use every one of them."""
    alternatives = (_terms(t) for t in translations)
    return tuple(dict.fromkeys(a for a in alternatives if a and all(t in vocabulary for t in a)))


@lru_cache(maxsize=100_000)
def _terms(translation: str) -> tuple[str, ...]:
    terms = tuple(tokenize(translation))
    return terms if len(terms) <= MAX_TRANSLATION_TERMS else ()


@lru_cache(maxsize=1)
def installed_translator() -> QueryTranslator:
    """The process's translator over the installed dictionaries (each read on its first question, ~1 s)."""
    return QueryTranslator()
