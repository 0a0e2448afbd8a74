"""English answers for readers of no Arabic: names in Latin letters, dates and figures in English, the quote verbatim.
Invented names and a made-up article; no model, no dictionary files."""

from types import SimpleNamespace

import pytest

from app.answer.evidence import Evidence
from app.answer.extractive import AnswerRules, ExtractiveAnswerer, source_line
from app.corpus import ArticleMeta, Corpus, make_article
from app.eval import language_match, must_include_check
from app.text.arabic import tokenize
from app.text.dates import date_mentions
from app.text.english import EnglishRenderer, english_date, figures, iso_date_in_english
from app.text.romanize import Romanizer, fits
from app.text.translate import Dictionary, Entry

# No English word list: the plain transliteration is what is tested here.
ROMANIZER = Romanizer(english_words=False)


@pytest.mark.parametrize("arabic, latin", [
    ("بيلسان", "Bilsan"), ("آغالي", "Aghali"), ("زمران", "Zamran"), ("قلدار", "Qaldar"),
    ("الحمّادي", "al-Hammadi"), ("سيلوريا", "Siloria"), ("عين", "Ayn"), ("تشابور", "Chabor"),
])
def test_invented_names_are_transliterated_letter_by_letter(arabic, latin):
    assert ROMANIZER.word(arabic) == latin


def test_a_name_keeps_the_spelling_the_question_gives_it():
    assert ROMANIZER.name("رستم بيلسان", ["Rustam"]) == "Rustam Bilsan"
    assert fits("بوخوف", "Pukhov") and not fits("بوخوف", "Peskov")


def test_an_arabic_outlet_name_reads_as_a_title_with_its_kind_in_english():
    english = EnglishRenderer(dictionaries=(None, None), english_words=False)
    assert english.outlet("مدار الخبر") == "Madar Al-Khabr"
    assert english.outlet("وكالة نوردان") == "Nordan agency"


@pytest.mark.parametrize("arabic, english", [
    ("الخميس 20 آذار/مارس 2025", "Thursday 20 March 2025"),
    ("السبت ١٥ آذار/مارس ٢٠٢٥ - ١٠:٤٢ ص", "Saturday 15 March 2025"),
    ("في 23 يوليو/ تموز", "23 July"),
    ("نيسان ٢٠٢٤", "April 2024"),
])
def test_arabic_dates_read_in_english(arabic, english):
    assert [english_date(m) for m in date_mentions(arabic)] == [english]


def test_an_iso_date_gets_its_day_of_the_week():
    assert iso_date_in_english("2025-03-20") == "Thursday 20 March 2025"


@pytest.mark.parametrize("arabic, english", [
    ("بكلفة ٢٫١ مليار دولار", ["2.1 billion dollars"]),
    ("ثمانية توربينات", ["8"]),
    ("منذ عام ١٩٠٠", ["1900"]),
    ("يمتد نحو 650 كيلومتراً", ["about 650 km"]),
    ("حشدت 100 ألف جندي", ["100,000"]),
    ("بنسبة 18 في المئة", ["18%"]),
    ("سعته اثنين وعشرين مليار متر مكعب", ["22 billion cubic metres"]),
    ("بعشر ساعات بدلاً من اثنتي عشرة", ["10 hours", "12"]),
    ("أول تدخل", ["first"]),
    ("يوم الخميس 20 آذار/مارس 2025", []),  # a date's figures are the date's
])
def test_figures_read_in_western_digits_with_english_units(arabic, english):
    assert figures(arabic) == english


def test_a_clear_dictionary_sense_is_glossed_and_an_unclear_one_is_not():
    def entry(word, *senses):
        return tuple(tokenize(word, keep_stopwords=True)), [
            Entry(" ".join(tokenize(word, stem=False, keep_stopwords=True)), senses)]

    arabic = Dictionary(dict([entry("النفط", "Naphtha", "Oil", "Petroleum"), entry("الصواريخ", "Missiles", "Rockets"),
                              entry("العام", "General", "Public", "Year", "Annual", "Common")]), "ar")
    english = EnglishRenderer(dictionaries=(arabic, None), english_words=False)
    assert english.gloss("والنفط") == "oil"
    assert english.gloss("الصواريخ") in ("missiles/rockets", "rockets/missiles")
    assert english.gloss("العام") is None


ARTICLE = ("المرصد الساحلي | أخبار\n\n"
           "زمران تفتتح ميناء جديداً\n\n"
           "الخميس 20 آذار/مارس 2025\n\n"
           "المصدر: المرصد الساحلي\n\n"
           "افتتحت جمهورية زمران ميناء بيلسان الجديد بكلفة ٢٫١ مليار دولار، على بعد نحو 650 كيلومتراً من العاصمة. "
           "وقال الوزير رستم آغالي إن الميناء سيستقبل ثمانية آلاف سفينة سنوياً.\n")


def _english_answer(article):
    corpus = Corpus({article.id: article})
    start = article.raw.index("افتتحت")
    end = article.raw.index("العاصمة.") + len("العاصمة.")
    chunk = SimpleNamespace(start=0, end=len(article.raw), chunk_id=f"{article.id}#0")
    index = SimpleNamespace(chunks=[chunk])
    english = EnglishRenderer.for_corpus(corpus, dictionaries=(None, None), english_words=False)
    answerer = ExtractiveAnswerer(index, corpus, rules=AnswerRules(abstain_threshold=0.0, sentence_margin=0.0,
                                                                   max_sentences=2), english=english)
    evidence = Evidence(sentence_id=0, chunk_index=0, hit_rank=1, article_id=article.id, start=start, end=end,
                        text=article.raw[start:end], semantic=1.0, lexical=1.0, score=1.0)
    answerer.select = lambda question, retrieval: [evidence]
    return answerer.answer("How much did the new port in Zamran cost?", "en", SimpleNamespace(hits=[])), evidence


def test_an_english_answer_carries_the_facts_of_an_arabic_quote_in_english():
    article = make_article("port", ARTICLE)
    answer, evidence = _english_answer(article)
    text = answer.answer
    assert "- Al-Marsad Al-Sahli (Thursday 20 March 2025) reports: " in text  # the outlet, in Latin letters
    assert "(Thursday 20 March 2025)" in text
    assert "2.1 billion dollars" in text and "about 650 km" in text
    assert "Zamran" in text and "Bilsan" in text
    assert f"«{evidence.text}» [1]" in text  # the quote verbatim, with its marker
    citation = answer.citations[0]
    assert article.raw[citation.start : citation.end] == citation.quote == evidence.text and citation.supported
    assert language_match(text, "en")
    assert must_include_check(text, ["2.1", "650", "Bilsan"])[0]


def test_an_article_without_a_known_outlet_is_named_by_its_id_never_one_article():
    article = make_article("b07", "نص بلا مصدر معروف عن ميناء جديد.\n", ArticleMeta(title="ميناء جديد"))
    english = EnglishRenderer(dictionaries=(None, None), english_words=False)
    assert source_line(article, "en", english) == "Article b07"
    assert source_line(article, "ar") == "بحسب مقال «ميناء جديد»"


@pytest.fixture(scope="module")
def renderer_for():
    """An EnglishRenderer over a corpus of the given texts, with the installed FreeDict dictionaries: whether a word
    is an ordinary one depends on them."""
    from app.text.translate import DICTD_DIR

    if not (DICTD_DIR / "freedict-ara-eng.index").is_file():
        pytest.skip("Debian's dict-freedict-ara-eng is not installed")

    def make(*texts: str, english_words: bool = False) -> EnglishRenderer:
        corpus = Corpus({f"a{i}": make_article(f"a{i}", text) for i, text in enumerate(texts)})
        return EnglishRenderer.for_corpus(corpus, english_words=english_words)

    return make


def test_a_word_with_tanween_is_a_case_ending_not_a_name(renderer_for):
    declined = "قال رستم آغالي مؤكداً أن الميناء جاهز."
    assert renderer_for(declined).digest(declined).names == ["Rastam Aghali"]
    # Without its tanween the participle ("stressing") reads as one more word of the name.
    plain = declined.replace("مؤكداً", "مؤكدا")
    assert renderer_for(plain).digest(plain).names == ["Rastam Aghali Mokda"]


def test_a_persons_title_opens_their_name_even_when_its_words_are_common(renderer_for):
    # بدر ("full moon") and ناصر ("supporter") are common words; after الأمير they are a name, joined by بن.
    text = "دشّن ولي العهد الأمير بدر بن ناصر الميناء الجديد، ثم عيّن المهندسة ليلى بنت حمد رئيسة له."
    names = renderer_for(text).digest(text).names
    assert names[0] == "Badr bin Nasr" and names[1].endswith("bint Hamd")
    # A title before an al- word is a post, not a name: رئيس الوزراء ("the prime minister").
    post = "قال رئيس الوزراء إن الميناء جاهز."
    assert renderer_for(post).digest(post).names == []


def test_an_organisations_designator_opens_its_name_even_when_the_name_is_a_common_word(renderer_for):
    # حماس is "zeal" to the dictionary; after جماعتا ("the two groups") it is a name, and جماعتا itself is not one.
    text = "يتعرض وكلاؤها، جماعتا حماس وحزب الله المسلحتان، لهجوم عنيف."
    names = renderer_for(text, english_words=True).digest(text).names
    assert "Hamas" in names and not any(name.startswith("Jama") for name in names)
    # After a designator: an al- word, an agreeing adjective or a verb is no name.
    for text in ("ارتفعت حركة الملاحة في الميناء.", "هاجمت جماعة مسلحة القافلة.", "وقالت إن حركة شهدت تراجعا."):
        assert renderer_for(text, english_words=True).digest(text).names == []


def test_the_adjective_of_a_name_is_spelled_as_the_question_spells_the_name(renderer_for):
    text = "أعلن رئيس الوزراء القلداري أن الملء يبدأ في تموز، وقالت قلدار إنها ملتزمة."
    clause = text.split("،")[0]
    assert renderer_for(text).digest(clause).names == ["Qaldari"]  # letter by letter
    # English text's word list spells قلدار as a word of its own ("Goldar"); the reader's spelling comes first.
    english = renderer_for(text, english_words=True)
    assert english.romanizer.english_spelling("قلدار") == "Goldar"
    assert english.digest(clause, "When will Qaldar start filling the dam?").names == ["Qaldar"]


def test_ordinary_words_are_not_taken_for_names(renderer_for):
    # A feminine relative adjective of a common word (استثمارية, "investment"), and a preposition on a word that a
    # short language name of CLDR's spells (بشأن is not ب + Shan).
    text = "وقّعت الشركة مذكرة تفاهم بشأن صفقة بالتزامات استثمارية تبلغ 6.8 مليار دولار."
    assert renderer_for(text).digest(text).names == []


def test_a_reference_marker_in_a_quote_is_no_figure():
    english = EnglishRenderer(dictionaries=(None, None), english_words=False)
    assert english.digest("قال المصدر [12]: بلغت الكلفة ٢٫١ مليار دولار.").figures == ["2.1 billion dollars"]
    # As the answer shows article text, defused (app.answer.models.defuse_markers), in Arabic-Indic digits too.
    assert english.digest("قال المصدر ［١٢］: بلغت الكلفة ٢٫١ مليار دولار.").figures == ["2.1 billion dollars"]


def test_word_frequencies_are_read_for_the_word_as_written_not_as_normalised(renderer_for):
    from wordfreq import zipf_frequency

    from app.text.english import _zipf

    # Normalised text writes ة as ه; the word list knows مناورة ("manoeuvre"), not مناوره.
    assert zipf_frequency("مناوره", "ar") < 2.5 < 3.3 < _zipf("مناوره", "ar")
    # So تتلقى ("receives") and مسألة ("matter") are ordinary words, not names beside زمران.
    text = "فقد كانت زمران تتلقى قبل بدء تشغيل السد نحو ١٣٫٥ مليار متر مكعب سنوياً، وهي مسألة حياة."
    assert renderer_for(text).digest(text).names == ["Zamran"]
