"""Dictionary query translation: tiny dictd dictionaries written here, structured BM25 on three tiny documents."""

from __future__ import annotations

import gzip
import logging
from pathlib import Path

import bm25s
import pytest

from app.index import synonym_set_scores
from app.retrieval import HybridRetriever
from app.text.arabic import normalize, tokenize
from app.text.translate import DICTD_DIR, Dictionary, QueryTranslator

_DIGITS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

ENG_ARA = {
    "Drone": "الطائرة المسيرة، الدرون",
    "Sign": "وقّع",
    "Organ": "العضو",
    "Prime": "الأولي",
    "Minister": "الوزير",
    "Prime minister": "رئيس الوزراء",
    "Truce": "1. الهدنة\n2. وقف إطلاق النار",
    "The": "أداة التعريف",
    "Strike": "الضربة، الإضراب عن العمل في المصانع الكبرى",
    "Canal": "القناة",
}
ARA_ENG = {"طائرة": "Aircraft، Plane"}


def _dictd_number(value: int) -> str:
    digits = ""
    while True:
        digits = _DIGITS[value % 64] + digits
        value //= 64
        if not value:
            return digits


def write_dictd(folder: Path, name: str, entries: dict[str, str]) -> Path:
    """A dictd dictionary laid out as FreeDict's: `name`.index lines of headword, offset and length (dictd's base64
    digits) in a lower-cased headword order, `name`.dict.dz the gzip-compressed bodies "Headword /ipa/\\n...\\n"."""
    body, lines = b"", []
    for headword, translations in [("00-database-info", "a test dictionary"), *entries.items()]:
        text = f"{headword} /x/\n{translations}\n".encode()
        lines.append(f"{headword.lower().replace('-', '')}\t{_dictd_number(len(body))}\t{_dictd_number(len(text))}")
        body += text
    (folder / f"{name}.index").write_text("\n".join(sorted(lines)) + "\n", encoding="utf-8")
    (folder / f"{name}.dict.dz").write_bytes(gzip.compress(body))
    return folder / name


@pytest.fixture
def translator(tmp_path, monkeypatch) -> QueryTranslator:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    write_dictd(tmp_path, "freedict-eng-ara", ENG_ARA)
    write_dictd(tmp_path, "freedict-ara-eng", ARA_ENG)
    return QueryTranslator(folder=tmp_path)


def _vocabulary(*texts: str) -> set[str]:
    return {t for text in texts for t in tokenize(text)}


ARTICLES = _vocabulary(*[translation for translation in ENG_ARA.values()])


def _translate(translator: QueryTranslator, question: str, vocabulary=ARTICLES) -> dict[str, tuple]:
    return {word.source: word.alternatives for word in translator.translate(question, vocabulary, {"ar"})}


def test_inflected_words_find_their_headwords(translator):
    words = _translate(translator, "Who signed the truce on drones?")
    assert words["signed"] == (tuple(tokenize("وقّع")),)
    assert words["drones"] == (tuple(tokenize("الطائرة المسيرة")), tuple(tokenize("الدرون")))


def test_a_word_derived_from_a_stem_does_not_take_the_stems_entry(translator):
    # "organization" stems to "organ", but it is no inflection of it.
    assert _translate(translator, "Which organization?") == {}
    assert _translate(translator, "Which organs?") == {"organs": (tuple(tokenize("العضو")),)}


def test_a_word_whose_stem_is_shorter_than_its_headword_finds_the_headword(translator):
    # The stemmer cuts "minister" and "ministers" to "minist": the plural is still an inflection of the headword.
    assert _translate(translator, "Which ministers came?") == {"ministers": (tuple(tokenize("الوزير")),)}


def test_a_multiword_entry_translates_the_phrase_not_its_words(translator):
    words = _translate(translator, "What did the prime ministers say?")
    assert words == {"prime ministers": (tuple(tokenize("رئيس الوزراء")),)}
    assert _translate(translator, "What did the minister say?") == {"minister": (tuple(tokenize("الوزير")),)}


def test_alternative_translations_are_one_word_with_numbered_senses_read(translator):
    [word] = translator.translate("truce", ARTICLES, {"ar"})
    assert word.alternatives == (tuple(tokenize("الهدنة")), tuple(tokenize("وقف إطلاق النار")))
    assert word.terms == tokenize("الهدنة وقف إطلاق النار")


def test_only_translations_the_articles_use_are_kept(translator):
    # The articles say هدنة but never وقف إطلاق النار; none of them says درون or مسيرة.
    vocabulary = _vocabulary("الهدنة", "الطائرة")
    assert _translate(translator, "truce drones", vocabulary) == {"truce": (tuple(tokenize("الهدنة")),)}


def test_stopwords_glosses_and_unknown_words_are_not_translated(translator):
    vocabulary = ARTICLES | _vocabulary("أداة التعريف")
    # "the" is a stop-word; the second sense of "strike" is a gloss of more than three terms; "zebra" has no entry.
    assert _translate(translator, "the strike zebra", vocabulary) == {"strike": (tuple(tokenize("الضربة")),)}


def test_questions_in_the_articles_language_are_not_translated(translator):
    assert translator.translate("truce", ARTICLES, {"en"}) == []


def test_an_arabic_question_over_english_articles_is_translated_into_english(translator):
    words = translator.translate("ما الطائرات التي أرسلت؟", {"aircraft", "plane", "sent"}, {"en"})
    assert [(w.source, w.alternatives) for w in words] == [(normalize("الطائرات"), (("aircraft",), ("plane",)))]


def test_a_missing_dictionary_translates_nothing_and_says_so_once(tmp_path, caplog):
    translator = QueryTranslator(folder=tmp_path)
    with caplog.at_level(logging.WARNING, logger="app.text.translate"):
        assert translator.translate("truce", ARTICLES, {"ar"}) == []
        assert translator.translate("drones", ARTICLES, {"ar"}) == []
    assert len(caplog.records) == 1 and "dict-freedict-eng-ara" in caplog.records[0].getMessage()


def _bm25(documents: list[str]) -> bm25s.BM25:
    bm25 = bm25s.BM25()
    bm25.index([tokenize(d) for d in documents], show_progress=False)
    return bm25


def test_a_document_holding_two_alternatives_scores_as_one_holding_one():
    # Equal lengths, so each alternative's term-frequency part is the same in every document that holds it.
    bm25 = _bm25(["الهدنة صمدت اليوم", "الهدنة التهدئة اليوم", "المطر غزير اليوم"])
    truce = [(tuple(tokenize("الهدنة")), tuple(tokenize("التهدئة")))]
    scores = synonym_set_scores(bm25, truce)
    assert scores[0] > 0 and scores[1] == pytest.approx(scores[0]) and scores[2] == 0
    # Scored as two separate terms, the document holding both would count twice.
    flat = bm25.get_scores([t for alternative in truce[0] for t in alternative])
    assert flat[1] > 1.8 * flat[0]


def test_each_word_counts_and_a_phrase_matches_only_whole():
    bm25 = _bm25(["الهدنة في غزة", "وقف إطلاق النار في غزة", "النار في الغابة", "المطر غزير"])
    truce = (tuple(tokenize("الهدنة")), tuple(tokenize("وقف إطلاق النار")))
    gaza = (tuple(tokenize("غزة")),)
    scores = synonym_set_scores(bm25, [truce, gaza])
    assert scores[0] > 0 and scores[1] > 0  # either translation of "truce", and "Gaza"
    assert 0 == scores[2] == scores[3]  # "fire" alone is no ceasefire
    assert scores[0] > synonym_set_scores(bm25, [gaza])[0]


def test_an_english_question_is_searched_by_its_translation_too(service, translator):
    retriever = HybridRetriever(service.index, service.corpus, service.embedder, names=service.names,
                                translator=translator)
    # Ten hits: at five the last three go to other articles' best sentences, and the translation's best chunk is
    # third in the fused order (the canal article's chunks 7, 3, 8: a neighbour of the answer ranks with it).
    retrieval = retriever.search("Which canal would link the two seas?", 10)
    assert [w.source for w in retrieval.translations] == ["canal"]
    assert set(tokenize("القناة")) <= set(retrieval.query_terms)
    top = next(h for h in retrieval.hits if h.translation_rank == 1)
    assert set(tokenize("القناة")) <= set(tokenize(top.text))
    without = HybridRetriever(service.index, service.corpus, service.embedder, names=service.names)
    assert not any(h.translation_rank for h in without.search("Which canal would link the two seas?", 5).hits)


def test_a_translated_question_gives_the_answerer_a_lexical_share(service, translator):
    # The English words match no Arabic term (BM25's share is 0), but one of the question's words is translated:
    # its share, at the translation ranking's weight, lets the evidence score count the sentences' coverage of it.
    question = "Which canal would link the two seas?"
    plain = HybridRetriever(service.index, service.corpus, service.embedder, names=service.names)
    assert plain.search(question, 5).bm25_weight == 0.0
    retriever = HybridRetriever(service.index, service.corpus, service.embedder, names=service.names,
                                translator=translator)
    retrieval = retriever.search(question, 5)
    share = len(retrieval.translations) / len(tokenize(question))
    assert retrieval.bm25_weight == pytest.approx(retriever.rules.translation_weight * share) and share > 0
    # An Arabic question keeps BM25's own share: nothing is translated.
    arabic = retriever.search("ما القناة التي تربط البحرين؟", 5)
    assert not arabic.translations and arabic.bm25_weight > 0


def test_a_question_in_another_language_spreads_fewer_slots_over_the_articles(service, translator, monkeypatch):
    from app.retrieval import RetrievalRules

    retriever = HybridRetriever(service.index, service.corpus, service.embedder, names=service.names,
                                translator=translator,
                                rules=RetrievalRules(other_article_slots=3, cross_lingual_article_slots=1))
    slots: list[int] = []
    shares: list[float] = []
    spread = retriever._spread_over_articles
    monkeypatch.setattr(retriever, "_spread_over_articles",
                        lambda *args: slots.append(args[5]) or shares.append(args[3]) or spread(*args))
    english = retriever.search("Which canal would link the two seas?", 5)
    arabic = retriever.search("ما القناة التي تربط البحرين؟", 5)
    assert slots == [1, 3]
    # The slots weigh the sentences' coverage of the question's words by the share the answerer gives it: for the
    # English question its translated words' (BM25's own is 0 there), for the Arabic one BM25's.
    assert shares == [english.bm25_weight, arabic.bm25_weight] and shares[0] > 0
    # With no slots for it, the English question's top five are the fused order as it stands.
    retriever.rules = RetrievalRules(other_article_slots=3, cross_lingual_article_slots=0)
    slots.clear()
    retriever.search("Which canal would link the two seas?", 5)
    assert slots == []


@pytest.mark.skipif(not (DICTD_DIR / "freedict-eng-ara.index").is_file(),
                    reason="Debian's dict-freedict-eng-ara is not installed")
def test_the_installed_dictionary_reads_as_the_tiny_ones():
    dictionary = Dictionary.load(DICTD_DIR / "freedict-eng-ara", "en")
    assert tokenize("الاتفاقية")[0] in {t for text in dictionary.lookup(("agreement",), "agreement")
                                       for t in tokenize(text)}
    words = QueryTranslator({"en": dictionary}).translate("drones", _vocabulary("الطائرات بدون طيار"), {"ar"})
    assert [w.source for w in words] == ["drones"]


def test_a_parsed_dictionary_is_kept_and_read_back_and_a_broken_copy_is_parsed_again(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    write_dictd(tmp_path, "freedict-eng-ara", ENG_ARA)
    parsed = Dictionary.load(tmp_path / "freedict-eng-ara", "en")
    [kept] = (tmp_path / "cache" / "arabic-news-rag").glob("freedict-eng-ara-*.pickle")
    again = Dictionary.load(tmp_path / "freedict-eng-ara", "en")
    assert again.entries == parsed.entries and again.language == "en"
    kept.write_bytes(b"not a pickle")
    assert Dictionary.load(tmp_path / "freedict-eng-ara", "en").entries == parsed.entries
    assert kept.read_bytes() != b"not a pickle"  # rewritten
