"""Cross-script name check: does a name in an English question appear, transliterated, anywhere in the articles?

Arabic writes consonants and long vowels, so a Latin name and its Arabic spelling share a consonant skeleton
(Peskov → بيسكوف → BSKF, Chabahar → تشابهار → TXBHR). A rare capitalised word of an English question
whose skeleton matches no word (or pair of adjacent words) of the corpus names someone or something the
articles never mention: the question cannot be answered from them.
"""

from __future__ import annotations

import re
from functools import lru_cache

from app.corpus import Corpus
from app.text.arabic import normalize

# Arabic letters by consonant class; alef, waw, yaa, hamza and ain carry vowels or nothing in transliteration.
_ARABIC = {
    "ب": "B", "ت": "T", "ط": "T", "ث": "S", "ج": "J", "ح": "H", "ه": "H", "خ": "K", "د": "D", "ض": "D",
    "ذ": "Z", "ر": "R", "ز": "Z", "ظ": "Z", "س": "S", "ص": "S", "ش": "X", "غ": "G", "ف": "F", "ق": "K",
    "ك": "K", "ل": "L", "م": "M", "ن": "N",
}
_LATIN_DIGRAPHS = [("kh", "K"), ("gh", "G"), ("sh", "X"), ("ch", "X"), ("th", "S"), ("ph", "F"), ("dh", "Z"),
                   ("zh", "J"), ("ck", "K"), ("qu", "K")]
_LATIN = {"b": "B", "p": "B", "t": "T", "j": "J", "h": "H", "d": "D", "r": "R", "z": "Z", "s": "S", "c": "K",
          "f": "F", "v": "F", "k": "K", "q": "K", "g": "G", "l": "L", "m": "M", "n": "N", "x": "KS"}
# Letters transliterated more than one way (g: غ/ج/ق; ch: تش; t/s and z/s swap across conventions). Each letter
# of a name takes one of its own alternatives; alternatives are not chained (sh → س is a convention, sh → س → ت
# is not one, and chaining let "Shahed" match الاتحاد).
_VARIANTS = {"G": ("J", "K"), "X": ("TX", "S"), "K": ("G",), "S": ("T",), "T": ("S",), "Z": ("S",)}
_MAX_SKELETONS = 4096  # alternatives of a very long word: keep it bounded
_PREFIXES = ("وال", "بال", "لل", "ال", "و", "ب", "ل")
_MIN_SKELETON = 3  # shorter skeletons match too many words to mean anything
_NAME_ZIPF = 3.7  # below this English word frequency a capitalised word is taken for a name
_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]+")


def arabic_skeleton(word: str) -> str:
    return "".join(_ARABIC.get(ch, "") for ch in normalize(word))


def latin_skeletons(word: str, minimum: int = _MIN_SKELETON) -> set[str]:
    """The skeletons an Arabic spelling of this Latin word may have (of at least `minimum` letters)."""
    word = re.sub(r"['’]s$", "", word.lower())
    out, i = "", 0
    while i < len(word):
        for digraph, letter in _LATIN_DIGRAPHS:
            if word.startswith(digraph, i):
                out += letter
                i += len(digraph)
                break
        else:
            out += _LATIN.get(word[i], "")
            i += 1
    out = re.sub(r"(.)\1+", r"\1", out)
    skeletons = {""}
    for letter in out:
        options = (letter, *_VARIANTS.get(letter, ()))
        skeletons = {s + o for s in skeletons for o in options}
        if len(skeletons) > _MAX_SKELETONS:
            skeletons = set(sorted(skeletons)[:_MAX_SKELETONS])
    skeletons |= {s.replace("H", "") for s in skeletons}
    if word.endswith("an"):  # Iranian → إيراني: the adjective drops the n
        skeletons |= {s[:-1] for s in skeletons}
    return {s for s in skeletons if len(s) >= minimum}


@lru_cache(maxsize=1)
def _zipf():
    from wordfreq import zipf_frequency

    return zipf_frequency


def warm_up() -> None:
    """Load the English word-frequency list (~1-1.5 s) now, so the first English question does not wait for it.
    The service calls this in a background thread after start-up, keeping it out of the cold start."""
    _zipf()("the", "en")


def is_name_like(word: str) -> bool:
    """Capitalised, not an acronym, and rare as an English word."""
    if not word[0].isupper() or word.isupper():
        return False
    return _zipf()(re.sub(r"['’]s$", "", word).lower(), "en") < _NAME_ZIPF


class NameChecker:
    def __init__(self, skeletons: dict[str, set[str]], latin_words: set[str]):
        self.skeletons = skeletons  # skeleton -> the corpus words (or word pairs) that have it
        self.latin_words = latin_words

    @classmethod
    def from_corpus(cls, corpus: Corpus) -> NameChecker:
        skeletons: dict[str, set[str]] = {}
        latin: set[str] = set()

        def add(skeleton: str, words: str) -> None:
            if len(skeleton) >= _MIN_SKELETON:
                skeletons.setdefault(skeleton, set()).add(words)

        for article in corpus.articles.values():
            meta = article.meta
            # The outlets an article names in its metadata (often read from a source line that is not body text).
            named = [meta.source, meta.original, meta.source_en, meta.original_en]
            for text in [article.raw[start:end] for start, end in article.blocks] + [n for n in named if n]:
                text = normalize(text)
                latin.update(re.findall(r"[a-z]+", text))
                words = re.findall("[\u0621-\u064a]+", text)
                plain = [arabic_skeleton(w) for w in words]
                for i, word in enumerate(words):
                    add(plain[i], word)
                    for prefix in _PREFIXES:
                        if word.startswith(prefix) and len(word) - len(prefix) >= 3:
                            add(arabic_skeleton(word[len(prefix):]), word)
                            break
                    if i + 1 < len(words):  # names written as two words: جيمس تاون
                        add(plain[i] + plain[i + 1], f"{word} {words[i + 1]}")
        return cls(skeletons, latin)

    def unknown_names(self, question: str) -> list[str]:
        """Name-like words of a Latin-script question that no article mentions in any spelling."""
        unknown = []
        for word in _WORD.findall(question):
            if not is_name_like(word) or re.sub(r"['’]s$", "", word).lower() in self.latin_words:
                continue
            skeletons = latin_skeletons(word)
            if skeletons and not any(s in self.skeletons for s in skeletons):
                unknown.append(word)
        return unknown

    def arabic_spellings(self, question: str, max_spellings: int = 3) -> list[str]:
        """Corpus words that spell the names of a Latin-script question: a lexical bridge for retrieval.
        A skeleton shared by many different words says little, so such names are left out. The Arabic article
        of a name (al-Saqri) is not part of its skeleton: the corpus's words are indexed without it too."""
        found: list[str] = []
        for word in (_without_article(w) for w in _WORD.findall(question)):
            if is_name_like(word):
                spellings = self._spellings(latin_skeletons(word))
                if 0 < len(spellings) <= max_spellings:
                    found.extend(sorted(spellings))
        return found

    def pair_spellings(self, question: str, max_spellings: int = 3) -> list[str]:
        """Corpus word pairs that spell two capitalised words in a row of a Latin-script question as one name
        (Ras Salma → رأس سلمى): where each word alone is too short or too common a skeleton for
        `arabic_spellings`. A word of a matched pair opens no further pair."""
        words = list(_WORD.finditer(question))
        found: list[str] = []
        i = 0
        while i + 1 < len(words):
            first, second = words[i], words[i + 1]
            pair = _without_article(first.group()), _without_article(second.group())
            if (question[first.end() : second.start()].isspace() and all(w[0].isupper() for w in pair)
                    and any(is_name_like(w) for w in pair)):
                spellings = self._spellings(_pair_skeletons(*pair))
                if 0 < len(spellings) <= max_spellings:
                    found.extend(sorted(spellings))
                    i += 2
                    continue
            i += 1
        return found

    def _spellings(self, skeletons: set[str]) -> set[str]:
        return set().union(*(self.skeletons.get(s, set()) for s in skeletons))


_ARTICLE = re.compile(r"^(?:al|el)[-‐](?=[A-Z])", re.IGNORECASE)


def _without_article(word: str) -> str:
    """A name without its transliterated Arabic article: al-Saqri → Saqri, El-Sisi → Sisi."""
    return _ARTICLE.sub("", word)


def _pair_skeletons(first: str, second: str) -> set[str]:
    """The skeletons of two words written as one name (each word's skeletons, however short, joined)."""
    pairs = {a + b for a in latin_skeletons(first, 1) for b in latin_skeletons(second, 1)}
    return set(sorted(pairs)[:_MAX_SKELETONS]) if len(pairs) > _MAX_SKELETONS else pairs


class CorpusNames:
    """The NameChecker of each corpus the service publishes, assembled from per-article parts cached by (id, text
    hash). When a corpus only adds articles to the previous one, the previous checker is extended copy-on-write
    (its sets are shared, never modified), so an update pays for its new articles only."""

    def __init__(self) -> None:
        self._parts: dict[tuple[str, str], NameChecker] = {}

    def checker(self, corpus: Corpus, previous: Corpus | None = None,
                previous_checker: NameChecker | None = None) -> NameChecker:
        old = previous.articles if previous is not None and previous_checker is not None else None
        if old is not None and all(k in corpus.articles and corpus.articles[k].sha256 == a.sha256
                                   for k, a in old.items()):
            return self._extended(previous_checker, [k for k in corpus.articles if k not in old], corpus)
        skeletons: dict[str, set[str]] = {}
        latin: set[str] = set()
        for article_id in corpus.articles:
            part = self._part(article_id, corpus)
            for skeleton, words in part.skeletons.items():
                skeletons.setdefault(skeleton, set()).update(words)
            latin.update(part.latin_words)
        live = {(article_id, article.sha256) for article_id, article in corpus.articles.items()}
        for key in [k for k in self._parts if k not in live]:
            del self._parts[key]
        return NameChecker(skeletons, latin)

    def _extended(self, checker: NameChecker, new_ids: list[str], corpus: Corpus) -> NameChecker:
        skeletons = dict(checker.skeletons)
        latin = set(checker.latin_words)
        for article_id in new_ids:
            new = self._part(article_id, corpus)
            for skeleton, words in new.skeletons.items():
                skeletons[skeleton] = skeletons.get(skeleton, frozenset()) | words
            latin |= new.latin_words
        return NameChecker(skeletons, latin)

    def _part(self, article_id: str, corpus: Corpus) -> NameChecker:
        article = corpus.articles[article_id]
        key = (article_id, article.sha256)
        if key not in self._parts:
            self._parts[key] = NameChecker.from_corpus(Corpus({article_id: article}))
        return self._parts[key]
