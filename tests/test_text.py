"""Arabic normalisation, tokenisation, language detection and sentence spans."""

from app.text.arabic import clause_spans, detect_language, normalize, sentence_spans, tokenize


def test_normalize_unifies_hamza_taa_marbuta_alef_maqsura_and_digits():
    assert normalize("أإآ") == "ااا"
    assert normalize("مدرسة") == "مدرسه"
    assert normalize("مستشفى") == "مستشفي"
    assert normalize("٢٠٢٤ و۱۹") == "2024 و19"


def test_normalize_drops_tashkeel_and_tatweel():
    assert normalize("الاسْتِرَاتِيجِيَّةُ") == normalize("الاستراتيجية")
    assert normalize("روســــيا") == "روسيا"


def test_diacritised_question_tokenizes_like_plain_text():
    diacritised = "مَا الاسْتِرَاتِيجِيَّةُ الصِّينِيَّةُ الَّتِي شَبَّهَ بِهَا بَعْضُهُمْ التَّعَاوُنَ الْبَحْرِيَّ الرُّوسِيَّ الإِيرَانِيَّ؟"
    plain = "ما الاستراتيجية الصينية التي شبه بها بعضهم التعاون البحري الروسي الايراني؟"
    assert tokenize(diacritised) == tokenize(plain)
    # A \w+ tokenizer would cut diacritised words apart; ours keeps whole words.
    assert len(tokenize(diacritised)) == len(tokenize(plain)) == 8


def test_spelling_variants_share_a_stem():
    # The way people type: ا for أ/إ, ه for ة, ي for ى; with and without the article or a conjunction.
    assert tokenize("الإيرانية") == tokenize("الايرانيه") == tokenize("إيرانية")
    assert tokenize("البحرية") == tokenize("البحريه") == tokenize("بحرية")
    assert tokenize("وإيران") == tokenize("إيران")
    assert tokenize("المسيّرات") == tokenize("المسيرات") == tokenize("بالمسيرات")


def test_a_name_in_ya_shares_a_stem_with_its_adjective():
    assert tokenize("تركيا") == tokenize("وتركيا") == tokenize("التركية") == tokenize("التركي")
    assert tokenize("روسيا") == tokenize("الروسية")
    assert tokenize("عسكريا") == tokenize("العسكري")
    assert tokenize("قضايا") == ["قضاي"]


def test_a_sound_feminine_plural_shares_a_stem_with_its_singular():
    assert tokenize("العلاقات") == tokenize("العلاقة") == tokenize("علاقة")
    assert tokenize("الشركات") == tokenize("الشركة")
    assert tokenize("المقالات") == tokenize("المقال")
    assert tokenize("ذات") == []  # short words are left alone (and this one is a stop-word)


def test_stopwords_are_dropped_and_english_is_stemmed():
    assert tokenize("ما هي المسيرات التي في روسيا") == tokenize("المسيرات روسيا")
    assert tokenize("Which drones were supplied?") == ["drone", "suppli"]
    assert tokenize("100,000 troops") == ["100000", "troop"]


def test_detect_language():
    assert detect_language("Who signed the naval memorandum, and where?") == "en"
    assert detect_language("من أين تأتي المسيرات التي تستخدمها روسيا؟") == "ar"
    assert detect_language("ما رأي CNBC في ذلك؟") == "ar"


def test_sentence_spans_cut_at_arabic_and_latin_sentence_ends():
    text = "قال إنه سيأتي. هل جاء؟ نعم!\nسطر جديد؛ وآخر"
    spans = sentence_spans(text, offset=10)
    sentences = [text[s - 10 : e - 10] for s, e in spans]
    assert sentences == ["قال إنه سيأتي.", "هل جاء؟", "نعم!", "سطر جديد؛", "وآخر"]


def test_clause_spans_cut_long_sentences_at_commas_and_keep_short_pieces_with_a_neighbour():
    text = ("وقال الوزير إن المحادثات مع الجانب الروسي كانت مثمرة، وأضاف، "
            "أن البلدين سيوقعان اتفاقية جديدة للطاقة في الشهر المقبل، بقيمة 1,000 مليون دولار")
    spans = clause_spans(text, offset=5)
    assert [text[s - 5 : e - 5] for s, e in spans] == [
        "وقال الوزير إن المحادثات مع الجانب الروسي كانت مثمرة،",
        # "وأضاف،" alone is too short to stand for anything: it joins the next piece; the short last piece (and
        # the "1,000", no clause break) joins the one before.
        "وأضاف، أن البلدين سيوقعان اتفاقية جديدة للطاقة في الشهر المقبل، بقيمة 1,000 مليون دولار",
    ]
    assert clause_spans("وقعت روسيا وإيران اتفاقية للتعاون في مجال الطاقة.") == []  # one clause: nothing to add
