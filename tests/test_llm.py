"""The generative path through litellm, with mock responses: markers validated, provider errors mapped."""

import pytest

from app.answer.llm import LLMAnswerer, validate_markers
from app.errors import LLMError, LLMTimeout

MODEL = "openai/gpt-4o-mini"  # never called: every test passes mock_response / mock_timeout


def test_validate_markers_keeps_valid_and_drops_out_of_range():
    text, cited, dropped = validate_markers("Iran sent drones [1]. Russia paid [9]. Both deny it [2, 7].", 3)
    assert text == "Iran sent drones [1]. Russia paid. Both deny it [2]."
    assert cited == [1, 2]
    assert dropped == ["[9]", "[7]"]


def test_validate_markers_reads_arabic_commas():
    text, cited, dropped = validate_markers("أرسلت إيران مسيرات [1، 2].", 2)
    assert cited == [1, 2] and dropped == [] and "[1][2]" in text


@pytest.fixture
def llm_service(service, seed_settings):
    settings = seed_settings.model_copy(update={"llm_model": MODEL})

    def make(**mock):
        return LLMAnswerer(service.index, service.corpus, service.embedder, settings, **mock)

    return make


def _ask(service, answerer, question):
    retrieval = service.retriever.search(question, 5)
    return answerer.answer(question, "en", retrieval), retrieval


def test_llm_answer_cites_the_passages_it_names(service, llm_service):
    question = "What did Kremlin spokesman Dmitry Peskov tell CNBC about cooperation with Iran?"
    retrieval = service.retriever.search(question, 5)
    peskov_rank = next(h.rank for h in retrieval.hits if "بيسكوف" in h.text)
    reply = f"Peskov said Russia is developing cooperation with Iran in many areas [{peskov_rank}]. It invented a fact [42]."
    answer = llm_service(mock_response=reply).answer(question, "en", retrieval)
    assert answer.mode == "llm" and not answer.abstained
    assert [c.n for c in answer.citations] == [peskov_rank]
    assert answer.dropped_citations == ["[42]"]
    assert "[42]" not in answer.answer
    citation = answer.citations[0]
    assert citation.article_id == "003_80e451bcdcbcdac5"
    assert service.corpus.get(citation.article_id).raw[citation.start : citation.end] == citation.quote
    chunk = service.index.chunks[service.index.chunk_by_id[citation.chunk_id]]
    assert chunk.start <= citation.start and citation.end <= chunk.end
    assert 0 < citation.support <= 1


def test_llm_prompt_numbers_the_passages_and_asks_for_the_language(service, llm_service):
    question = "ماذا قال بيسكوف؟"
    retrieval = service.retriever.search(question, 3)
    messages = llm_service().messages(question, "ar", retrieval)
    assert "Arabic" in messages[0]["content"]
    assert "[1]" in messages[1]["content"] and "[3]" in messages[1]["content"]
    assert "[4]" not in messages[1]["content"]
    assert question in messages[1]["content"]


def test_llm_abstains_when_it_says_the_passages_do_not_answer(service, llm_service):
    answer, _ = _ask(service, llm_service(mock_response="INSUFFICIENT"), "Who won the 2018 world cup?")
    assert answer.abstained and answer.citations == []
    assert answer.answer == "The sources do not answer this question."


def test_llm_answer_with_only_invalid_markers_is_not_passed_off_as_sourced(service, llm_service):
    answer, _ = _ask(service, llm_service(mock_response="Something happened [7]."), "What happened?")
    assert answer.abstained and answer.citations == [] and answer.dropped_citations == ["[7]"]


def test_provider_error_becomes_llm_error(service, llm_service):
    with pytest.raises(LLMError) as info:
        _ask(service, llm_service(mock_response=Exception("upstream exploded")), "What did Peskov say?")
    assert info.value.status == 502 and "provider failed" in info.value.message


def test_provider_timeout_becomes_504(service, llm_service):
    with pytest.raises(LLMTimeout) as info:
        _ask(service, llm_service(mock_response="late", mock_timeout=True), "What did Peskov say?")
    assert info.value.status == 504
