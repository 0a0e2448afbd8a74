"""Arabic names in Latin letters: the spelling English already uses for a name when one fits the Arabic letters
(بوخوف → Pukhov, كوميرسانت → Kommersant), otherwise a plain letter-by-letter transliteration (الأفق العربي →
Al-Afaq Al-Arabi).

Arabic writes consonants and long vowels, not short ones, so a name's Arabic spelling fits a few Latin ones. English
text knows the usual Latin spelling of many foreign and Arabic names: the English word list of `wordfreq` holds the
candidates, and a candidate is taken only when every Arabic letter accounts for its letters in order (a short vowel
may stand between two letters, as Arabic does not write it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from functools import lru_cache

from app.text.arabic import normalize
from app.text.cache import kept

_SHADDA = "\u0651"
_MARKS = re.compile("[\u0610-\u061a\u064b-\u0650\u0652-\u065f\u0670\u06d6-\u06ed\u0640]")  # all but shadda
_ARABIC_WORD = re.compile("[\u0621-\u064a\u0651]+")

# Plain transliteration, the letters' usual values in English-language news.
_CONSONANTS = {
    "ب": "b", "ت": "t", "ث": "th", "ج": "j", "ح": "h", "خ": "kh", "د": "d", "ذ": "dh", "ر": "r", "ز": "z",
    "س": "s", "ش": "sh", "ص": "s", "ض": "d", "ط": "t", "ظ": "z", "غ": "gh", "ف": "f", "ق": "q", "ك": "k",
    "ل": "l", "م": "m", "ن": "n", "ه": "h",
}
_LONG = {"ا": "a", "أ": "a", "آ": "a", "إ": "i", "ى": "a", "ة": "a", "ئ": "i", "ؤ": "u", "ء": ""}

# What each Arabic letter stands for in the Latin spelling of a foreign name written in Arabic (its letters are the
# ones such spellings use: ص, ق or ذ seldom write a foreign sound, ا is an "a").
_FITS = {
    "ب": "b|bb|p|pp", "ت": "t|tt|th", "ث": "th", "ج": "j|g|dj|zh|dzh", "ح": "h|hh", "خ": "kh|h|ch",
    "د": "d|dd", "ذ": "dh|th", "ر": "r|rr", "ز": "z|zz|ts", "س": "s|ss|c|ce", "ش": "sh|ch|sch", "ص": "s",
    "ض": "d|dh", "ط": "t|tt", "ظ": "z|dh", "غ": "gh|g|gg", "ف": "f|ff|ph|v", "ق": "q|g", "ك": "k|c|ck|ch|kk|q",
    "ل": "l|ll", "م": "m|mm", "ن": "n|nn", "ه": "h", "ع": "a|e|'", "ء": "|'",
    "ا": "a|aa", "أ": "a|e", "إ": "i|e", "آ": "a|aa", "ى": "a|y|i|e", "ة": "a|ah|e", "ئ": "i|y|e",
    "ؤ": "u|o|w", "و": "o|u|ou|oo|w|v|au|ow", "ي": "i|y|e|ee|ie|ey|ei|ai|ay|ea|ia",
}
# A spelling someone gave (a dictionary, the question) is matched more loosely: Arabic spells Arabic names with
# these letters too, and a short vowel may stand anywhere.
_LOOSE = {**{k: v for k, v in _FITS.items()}, "ا": "a|aa|e|o", "ث": "th|s|t", "خ": "kh|h|ch|k|x", "ذ": "dh|z|th|d",
          "ز": "z|zz|s|ts", "ش": "sh|ch|sch|s", "ص": "s|ss|c", "ض": "d|dh|z", "ق": "q|k|c|ck|g", "ع": "|a|e|'",
          "ة": "a|ah|e|", "ئ": "i|y|e|", "ه": "h|"}
_VOWEL_LETTERS = set("اأآإىةئؤويعء")
_SHORT = "([aeiou]?)"  # an unwritten short vowel
_MAX_SHORT = 1  # a foreign name written in Arabic spells its vowels: a candidate needing more unwritten ones is a guess
# Letters a Latin spelling keeps recognisably (the rest vary between spellings): the key that narrows the word list.
_KEY_LATIN = {"b": "B", "p": "B", "f": "F", "v": "F", "l": "L", "m": "M", "n": "N", "r": "R"}
_KEY_ARABIC = {"ب": "B", "ف": "F", "ل": "L", "م": "M", "ن": "N", "ر": "R"}
_MIN_CONSONANTS = 3  # shorter names fit too many English words to say which one is meant
# English words that stand for themselves in Arabic script, in names of English-language outlets ("ذا ميريديان بوست").
_ENGLISH_ARTICLES = {"ذا": "The", "اوف": "of", "اند": "and", "بن": "bin", "بنت": "bint", "ابن": "ibn"}


def _clean(word: str) -> str:
    word = _MARKS.sub("", word)
    # A doubled consonant (shadda) is written twice in Latin: الحمّادي → al-Hammadi.
    return re.sub(f"(.){_SHADDA}", r"\1\1", word).replace(_SHADDA, "")


def transliterate(word: str) -> str:
    """One Arabic word in Latin letters, letter by letter, 'a' standing for the short vowels Arabic does not write
    where a Latin reader needs one (at most two consonants together)."""
    word = _clean(word)
    if word.startswith("ال") and len(word) > 3:
        return "al-" + transliterate(word[2:])
    units: list[tuple[str, bool]] = []  # (letters, is a vowel)
    i = 0
    while i < len(word):
        char, rest = word[i], word[i + 1:]
        following = rest[:1]
        if char == "ت" and following == "ش":
            units.append(("ch", False))
            i += 2
            continue
        if char == "ه" and not rest and units and (not units[-1][1] or units[-1][0] == "i"):
            # A final ة, as normalised text writes it: البوصله → al-Bosla, زمرانيه → Zamraniya.
            units.append(("ya" if units[-1][1] else "a", True))
        elif char in _CONSONANTS:
            units.append((_CONSONANTS[char], False))
        elif char == "و":
            vowel_before = bool(units) and units[-1][1]
            if not units or vowel_before or following in ("ا", "ي", "و"):
                units.append(("w", False))
            else:
                units.append(("o", True))
        elif char == "ي":
            vowel_before = bool(units) and units[-1][1]
            if vowel_before and units[-1][0] == "i" and following not in _VOWEL_LETTERS:
                pass  # إيران → Iran
            elif not units or vowel_before and following:
                units.append(("y", False))
            elif following == "ا" and len(rest) == 1:
                units.append(("i", True))  # سيلوريا → Siloria
            elif following in ("ا", "و"):
                units.append(("y", False))
            else:
                units.append(("i", True))
        elif char == "ع":
            if not units and following not in ("ا", "آ", "ى"):
                units.append(("a", True))  # عين → Ayn, عربي → Arabi
            elif units and not units[-1][1] and following not in ("ا", "ي", "و", "ى", ""):
                units.append(("a", True))
            elif units and units[-1][1] and following and following not in _VOWEL_LETTERS:
                units.append(("e", True))  # واعظ → Waez
        elif char in _LONG:
            if _LONG[char]:
                units.append((_LONG[char], True))
        i += 1
    out: list[str] = []
    run = 0  # consonants since the last vowel
    for n, (letters, vowel) in enumerate(units):
        if vowel:
            run = 0
        else:
            run += 1
            at_start = n == 1
            if (run == 2 and at_start) or run == 3:
                out.append("a")
                run = 1
        out.append(letters)
    return "".join(out)


def _capitalised(latin: str) -> str:
    if latin.startswith("al-"):
        return "Al-" + latin[3:4].upper() + latin[4:]
    return latin[:1].upper() + latin[1:]


@lru_cache(maxsize=1)
def _english_words() -> dict[str, list[tuple[float, str]]]:
    """The English word list by key (its recognisable consonants), most frequent first; built once per machine and
    wordfreq version (about 2 s) and kept by app.text.cache."""
    from importlib.metadata import version

    return kept(f"english-words-wordfreq{version('wordfreq')}-k{_KEY_VERSION}", _build_english_words, dict)


def _build_english_words() -> dict[str, list[tuple[float, str]]]:
    from wordfreq import get_frequency_dict

    by_key: dict[str, list[tuple[float, str]]] = {}
    for word, frequency in get_frequency_dict("en", "best").items():
        if len(word) >= 3 and word.isascii() and word.isalpha():
            # wordfreq's Zipf scale, from the frequency in hand (zipf_frequency per word took ~10 s for the list).
            by_key.setdefault(_latin_key(word), []).append((round(math.log10(frequency) + 9, 2), word))
    for words in by_key.values():
        words.sort(reverse=True)
    return by_key


# Changes whenever _latin_key or _KEY_LATIN does, so that no word list keyed the old way is read.
_KEY_VERSION = 1


def _latin_key(word: str) -> str:
    key = "".join(_KEY_LATIN.get(c, "") for c in word.replace("ph", "f"))
    return re.sub(r"(.)\1+", r"\1", key)


def _arabic_keys(word: str) -> set[str]:
    keys = {""}
    for char in word:
        if char in _KEY_ARABIC:
            keys = {k + _KEY_ARABIC[char] for k in keys}
        elif char == "و":  # a vowel, or a consonant that Latin writes w or v
            keys |= {k + "F" for k in keys}
    return {re.sub(r"(.)\1+", r"\1", k) for k in keys}


@lru_cache(maxsize=8192)
def _fit_pattern(word: str, loose: bool = False, anywhere: bool = False) -> re.Pattern:
    """A regular expression for the Latin spellings of the Arabic `word`: each letter one of its values (the `loose`
    ones too), and an unwritten short vowel between two consonants (Vogel → فوغل), or `anywhere`."""
    values = _LOOSE if loose else _FITS
    pattern = ""
    previous_consonant = False
    i = 0
    while i < len(word):
        letter = "تش" if word.startswith("تش", i) else word[i]
        options = "ch|tch|tsch|cz|c" if letter == "تش" else values.get(letter, "")
        consonant = letter not in _VOWEL_LETTERS
        if i and (anywhere or consonant and previous_consonant):
            pattern += _SHORT
        pattern += f"(?:{options})"
        previous_consonant = consonant
        i += len(letter)
    return re.compile(pattern + "e?")


def _consonants(word: str) -> int:
    return sum(ch in _CONSONANTS for ch in word)


def fits(word: str, latin: str) -> bool:
    """Whether `latin` is a Latin spelling of the Arabic `word`."""
    return bool(_fit_pattern(_clean(word), loose=True, anywhere=True).fullmatch(latin.lower()))


class Romanizer:
    """Names in Latin letters, each word spelled, in this order of preference: as the reader spelled it (`spellings`,
    the words of an English question, say), as a dictionary gives it (`known`: an Arabic word's English senses), as
    English text usually spells it (the English word list, leaving out ordinary English words: `is_ordinary`), or
    letter by letter."""

    def __init__(self, known: Callable[[str], Iterable[str]] | None = None,
                 is_ordinary: Callable[[str], bool] | None = None, english_words: bool = True):
        self.known = known
        self.is_ordinary = is_ordinary
        self.english_words = english_words
        self._spelled: dict[str, str | None] = {}

    def english_spelling(self, word: str) -> str | None:
        """The usual Latin spelling of the Arabic `word` (no article), None when none fits or the word is too short to
        tell (a name of two consonants fits too many words)."""
        word = _clean(word)
        if word not in self._spelled:
            self._spelled[word] = self._find(word)
        return self._spelled[word]

    def _find(self, word: str) -> str | None:
        if self.known is not None:
            loose = _fit_pattern(word, loose=True)
            for sense in self.known(word):
                match = loose.fullmatch(sense.lower())
                if match and sum(map(bool, match.groups())) <= _MAX_SHORT:
                    return sense
        pattern = _fit_pattern(word)
        plain = normalize(word)
        if not self.english_words or _consonants(plain) < _MIN_CONSONANTS:
            return None
        words = _english_words()
        best: tuple[float, str] | None = None
        for key in _arabic_keys(plain):
            for zipf, candidate in words.get(key, ()):
                if best is not None and zipf <= best[0]:
                    break
                match = pattern.fullmatch(candidate)
                if (match and sum(map(bool, match.groups())) <= _MAX_SHORT and re.search("[aeiouy]", candidate)
                        and not (self.is_ordinary and self.is_ordinary(candidate))):
                    best = (zipf, candidate)
                    break
        return best[1][:1].upper() + best[1][1:] if best else None

    def word(self, word: str, spellings: Iterable[str] = ()) -> str:
        """One word of a name; the article ال stays as "al-"."""
        word = _clean(word)
        if normalize(word) in _ENGLISH_ARTICLES:
            return _ENGLISH_ARTICLES[normalize(word)]
        article, bare = "", word
        if word.startswith("ال") and len(word) > 4:
            article, bare = "al-", word[2:]
        for latin in spellings:
            if fits(bare, latin):
                return article + latin
        # A word with the Arabic article is an Arabic word (al-Hammadi): English does not spell it as one of its own.
        latin = (None if article else self.english_spelling(bare)) or transliterate(bare)
        return article + latin[:1].upper() + latin[1:]

    def name(self, name: str, spellings: Iterable[str] = (), *, title: bool = False) -> str:
        """An Arabic name of one or more words: 'Yousef al-Hammadi'; with `title`, every article capitalised as in an
        outlet's name: 'Al-Afaq Al-Arabi'."""
        spellings = list(spellings)
        words = [self.word(w, spellings) for w in _ARABIC_WORD.findall(name)]
        return " ".join(_capitalised(w) if title or i == 0 else w for i, w in enumerate(words))
