"""The cross-script name check behind abstaining on English questions about people the articles never mention."""

import pytest

from app.corpus import Corpus, make_article
from app.text.names import NameChecker, arabic_skeleton, is_name_like, latin_skeletons


@pytest.fixture(scope="module")
def names(service):
    return service.answerer.names


@pytest.mark.parametrize("latin, arabic", [("Peskov", "بيسكوف"), ("Chabahar", "تشابهار"),
                                           ("Kommersant", "كوميرسانت"), ("Baklanov", "باكلانوف"),
                                           ("Khamenei", "خامنئي"), ("Pukhov", "بوخوف")])
def test_latin_and_arabic_spellings_share_a_skeleton(latin, arabic):
    stripped = arabic[2:] if arabic.startswith("ال") else arabic
    assert arabic_skeleton(stripped) in latin_skeletons(latin)


def test_only_rare_capitalised_words_count_as_names():
    assert is_name_like("Khamenei") and is_name_like("Peskov's")
    assert not is_name_like("Supreme") and not is_name_like("Foreign") and not is_name_like("Washington")
    assert not is_name_like("CNBC")  # acronyms are matched as written, not transliterated
    assert not is_name_like("peskov")


def test_names_the_articles_mention_are_known(names):
    assert names.unknown_names("What did Kremlin spokesman Dmitry Peskov tell CNBC?") == []
    assert names.unknown_names("In which newspaper did Andrei Baklanov speak?") == []
    assert names.unknown_names("What happened at the Jamestown Foundation about the Caucasus?") == []


def test_names_no_article_mentions_are_reported(names):
    assert names.unknown_names("What did Iran's Supreme Leader Ali Khamenei say?") == ["Khamenei"]
    assert names.unknown_names("How did Erdogan react to the drone deliveries?") == ["Erdogan"]


def test_transliteration_variants_are_not_chained():
    # sh → ش or س, and s → ت/ط elsewhere, but sh is never written ت: chaining the two let a name match
    # everyday words (الاتحاد, تحد) and the question about it go unchallenged.
    skeletons = latin_skeletons("Shahed")
    assert {"XHD", "SHD", "TXHD"} <= skeletons
    assert "THD" not in skeletons and arabic_skeleton("اتحاد") not in skeletons
    # Different letters of one name still take their alternatives independently: g → ج and ch → تش together.
    assert "JTXN" in latin_skeletons("Gochan")


def test_a_name_matching_only_everyday_words_through_chained_variants_is_unknown(names):
    assert names.unknown_names("How many Shahed drones were delivered?") == ["Shahed"]


def test_english_question_about_an_unknown_person_abstains(service):
    answer = service.ask("What did Erdogan say about the Russian-Iranian naval memorandum?")
    assert answer.abstained and answer.citations == []
    known = service.ask("What did Peskov tell CNBC about cooperation with Iran?")
    assert not known.abstained and known.citations[0].article_id == "003_80e451bcdcbcdac5"


def test_names_bridge_english_questions_to_arabic_bm25_terms(service, names):
    assert "بيسكوف" in names.arabic_spellings("What did Dmitry Peskov say?")
    assert "جيمس تاون" in names.arabic_spellings("What does the Jamestown analysis say?")
    retrieval = service.retriever.search("What did Baklanov tell the Russian newspaper?", 5)
    assert retrieval.bm25_weight > 0
    # The name is in two overlapping chunks: BM25's first and its neighbour, which holds it too, lead the hits.
    assert "باكلانوف" in retrieval.hits[0].text
    assert 1 in [h.bm25_rank for h in retrieval.hits[:2]]


def _checker(*texts: str) -> NameChecker:
    return NameChecker.from_corpus(Corpus({f"a{i}": make_article(f"a{i}", text) for i, text in enumerate(texts)}))


def test_a_name_with_the_arabic_article_is_bridged_without_it():
    names = _checker("وقالت الوزيرة ليلى الصقري إن الميناء سيعمل.")
    assert "الصقري" in names.arabic_spellings("What did minister al-Saqri say?")
    assert "الصقري" in names.arabic_spellings("What did minister Al-Saqri say?")


def test_two_capitalised_words_are_spelled_as_one_name_by_the_pairs_bridge_only():
    # Alone, "Ras" is too short a skeleton and "Salma" shares its skeleton with four everyday words.
    names = _checker("وصلت السفن إلى ميناء رأس سلمى أمس.", "قال سالم إن السلام والسلم والإسلام مهمة.")
    question = "What happened at Ras Salma port?"
    assert names.arabic_spellings(question) == []
    assert names.pair_spellings(question) == ["راس سلمي"]
    # Two words that are not written together in the articles spell no name as a pair.
    assert names.pair_spellings("Did Salem Ras speak?") == []
