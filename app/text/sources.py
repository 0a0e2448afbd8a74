"""Outlets named in a question: "according to the Washington Post", "بحسب تحليل جيمس تاون" → those outlets' articles.

A question that attributes what it asks to an outlet is answered by that outlet's articles, however well a
sentence of another article happens to match it. Outlet names come from the articles' metadata (`source`,
`original` and their English forms), matched as whole phrases after the shared normalisation. An outlet known only
by its Arabic name is also found in Latin script by consonant skeleton (app.text.names): ذا ميريديان بوست and
"The Meridian Post" both read MRDN BST.
"""

from __future__ import annotations

import re
from functools import lru_cache

from app.corpus import Corpus
from app.text.arabic import ARABIC_LETTER, normalize
from app.text.names import _MIN_SKELETON, _NAME_ZIPF, arabic_skeleton, is_name_like, latin_skeletons

# Words that describe what an outlet is rather than which one it is ("Hawar News Agency" is named as "Hawar").
_GENERIC = {normalize(w) for w in ("the", "news", "agency", "foundation", "newspaper", "ذا", "وكالة", "مؤسسة",
                                   "صحيفة", "موقع", "قناة")}
_PARENTHESES = re.compile(r"\([^)]*\)")
_SEPARATORS = re.compile(r"[-‐–—’'`\"“”«».,:;!?؟،]+")
# A one-word outlet name counts only when it is rare as a word (the rarity that makes a word a name in
# app.text.names): "Hawar" names an outlet wherever it appears, "نهج" ("approach") is a common word first.
_RARE_ZIPF = _NAME_ZIPF
_LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z'’-]+")


def _plain(text: str) -> str:
    return " ".join(_SEPARATORS.sub(" ", normalize(text)).split())


def outlet_key(name: str) -> str:
    """The words of an outlet name that identify it: 'The Jamestown Foundation (Paul Goble)' → 'jamestown'."""
    words = _plain(_PARENTHESES.sub(" ", name)).split()
    return " ".join(w for w in words if w not in _GENERIC)


@lru_cache(maxsize=1024)
def _is_rare_word(word: str) -> bool:
    from wordfreq import zipf_frequency

    return zipf_frequency(word, "ar" if ARABIC_LETTER.search(word) else "en") < _RARE_ZIPF


class SourceNames:
    """Which articles a question names by their outlet."""

    def __init__(self, outlets: dict[str, set[str]]):
        self.outlets = outlets  # outlet key -> ids of the articles it published or that translate it
        self._patterns = {
            key: re.compile(r"(?<!\w)[وبلف]?" + re.escape(key) + r"(?!\w)") for key in outlets
        }
        # Arabic names as consonant skeletons, word by word; a word too short to have one leaves the name out.
        skeletons = {key: [arabic_skeleton(w) for w in key.split()] for key in outlets if ARABIC_LETTER.search(key)}
        self._skeletons = {k: s for k, s in skeletons.items() if all(len(x) >= _MIN_SKELETON for x in s)}

    @classmethod
    def from_corpus(cls, corpus: Corpus) -> SourceNames:
        outlets: dict[str, set[str]] = {}
        for article in corpus.articles.values():
            meta = article.meta
            for name in (meta.source, meta.source_en, meta.original, meta.original_en):
                key = outlet_key(name)
                if key:
                    outlets.setdefault(key, set()).add(article.id)
        return cls(outlets)

    def named_articles(self, question: str) -> set[str]:
        """Ids of the articles whose outlet the question names; empty when it names none."""
        text = _plain(question)
        found: set[str] = set()
        for key, pattern in self._patterns.items():
            if pattern.search(text) and (" " in key or _is_rare_word(key)):
                found |= self.outlets[key]
        return found | self._named_in_latin(question)

    def _named_in_latin(self, question: str) -> set[str]:
        """Articles of Arabic-named outlets that a Latin-script question names: capitalised words in a row whose
        skeletons are the name's (a one-word name must also be rare as an English word)."""
        words = [w for w in _LATIN_WORD.findall(question) if w[0].isupper()]
        if not words:
            return set()
        found: set[str] = set()
        for key, skeletons in self._skeletons.items():
            n = len(skeletons)
            for i in range(len(words) - n + 1):
                window = words[i : i + n]
                if (n > 1 or is_name_like(window[0])) and all(
                        s in latin_skeletons(w) for s, w in zip(skeletons, window)):
                    found |= self.outlets[key]
                    break
        return found
