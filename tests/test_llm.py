"""The generative path through litellm, with mock responses: markers validated, provider errors mapped, and both
strategies ("passages": the model cites chunks; "evidence": the app picks the sentences, the model phrases them)."""

import copy
import re

import pytest

from app.answer.llm import SUPPORT_THRESHOLD, LLMAnswerer, claims_by_marker, is_refusal, validate_markers
from app.errors import LLMError, LLMTimeout

MODEL = "openai/gpt-4o-mini"  # never called: every test passes mock_response / mock_timeout
# Naming him keeps the Peskov passages (article 003) in the top 5 whatever the chunking and fusion weights.
PESKOV_Q = "What did Peskov say about cooperation with Iran?"


def test_validate_markers_keeps_valid_and_drops_out_of_range():
    text, cited, dropped = validate_markers("Iran sent drones [1]. Russia paid [9]. Both deny it [2, 7].", 3)
    assert text == "Iran sent drones [1]. Russia paid. Both deny it [2]."
    assert cited == [1, 2]
    assert dropped == ["[9]", "[7]"]


def test_validate_markers_moves_markers_written_after_the_full_stop_before_it():
    text, cited, _ = validate_markers("Iran sent drones. [1] [2] Russia paid. [3]", 3)
    assert text == "Iran sent drones [1][2]. Russia paid [3]." and cited == [1, 2, 3]
    assert validate_markers("أرسلت إيران مسيرات. [1]", 1)[0] == "أرسلت إيران مسيرات [1]."


def test_validate_markers_reads_arabic_commas():
    text, cited, dropped = validate_markers("أرسلت إيران مسيرات [1، 2].", 2)
    assert cited == [1, 2] and dropped == [] and "[1][2]" in text


@pytest.fixture
def llm_service(service, seed_settings):
    settings = seed_settings.model_copy(update={"llm_model": MODEL})

    def make(strategy="passages", **mock):
        return LLMAnswerer(service.index, service.corpus, service.embedder, settings, strategy=strategy, **mock)

    return make


def _ask(service, answerer, question):
    retrieval = service.retriever.search(question, 5)
    return answerer.answer(question, "en", retrieval), retrieval


def test_llm_answer_cites_the_passages_it_names(service, llm_service):
    question = PESKOV_Q
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


def test_provider_timeout_becomes_504(service, seed_settings):
    settings = seed_settings.model_copy(update={"llm_model": MODEL, "llm_timeout": 0.2})  # the mock waits this long
    answerer = LLMAnswerer(service.index, service.corpus, service.embedder, settings, strategy="passages",
                           mock_response="late", mock_timeout=True)
    with pytest.raises(LLMTimeout) as info:
        _ask(service, answerer, "What did Peskov say?")
    assert info.value.status == 504


# -- claims: which answer sentences a marker vouches for -------------------------------------------------------------


def test_markers_standing_after_the_full_stop_belong_to_the_sentence_before():
    assert claims_by_marker("Iran sent drones. [1] [2]") == [("Iran sent drones.", {1, 2})]
    assert claims_by_marker("أرسلت إيران مسيرات. [1]، [2]") == [("أرسلت إيران مسيرات.", {1, 2})]
    assert claims_by_marker("Iran sent drones [1]. Russia paid [2, 3]. No source.") == [
        ("Iran sent drones.", {1}), ("Russia paid.", {2, 3}), ("No source.", set())]


def test_support_is_scored_on_the_claim_not_on_a_lone_marker(service, llm_service):
    question = PESKOV_Q
    retrieval = service.retriever.search(question, 5)
    rank = next(h.rank for h in retrieval.hits if "بيسكوف" in h.text)
    inline = llm_service(mock_response=f"Peskov said Russia develops cooperation with Iran [{rank}].")
    trailing = llm_service(mock_response=f"Peskov said Russia develops cooperation with Iran. [{rank}]")
    a = inline.answer(question, "en", retrieval).citations[0]
    b = trailing.answer(question, "en", retrieval).citations[0]
    assert (a.start, a.end) == (b.start, b.end) and a.support == pytest.approx(b.support, abs=1e-3)


# -- the "evidence" strategy ------------------------------------------------------------------------------------------


def test_strategy_comes_from_settings_and_unknown_ones_are_refused(service, seed_settings):
    for strategy in ("passages", "evidence"):
        settings = seed_settings.model_copy(update={"llm_model": MODEL, "llm_strategy": strategy})
        assert LLMAnswerer(service.index, service.corpus, service.embedder, settings).strategy == strategy
    with pytest.raises(ValueError):
        LLMAnswerer(service.index, service.corpus, service.embedder, seed_settings, strategy="chunks")


def test_evidence_prompt_numbers_the_selected_sentences_not_the_chunks(service, llm_service):
    answerer = llm_service("evidence")
    retrieval = service.retriever.search(PESKOV_Q, 5)
    chosen = answerer.selector.select(PESKOV_Q, retrieval)
    assert chosen
    system, user = answerer.messages(PESKOV_Q, "en", retrieval)
    assert "English" in system["content"] and "INSUFFICIENT" in system["content"]
    assert PESKOV_Q in user["content"]
    for n, evidence in enumerate(chosen, 1):
        assert f"[{n}]" in user["content"]
        assert " ".join(evidence.text.split()) in user["content"]
    assert f"[{len(chosen) + 1}]" not in user["content"]
    for hit in retrieval.hits:  # whole chunks are not shown, only the chosen sentences
        if all(hit.text not in e.text for e in chosen) and len(hit.text) > max(len(e.text) for e in chosen):
            assert hit.text not in user["content"]
    assert "Arabic" in answerer.messages(PESKOV_Q, "ar", retrieval)[0]["content"]


def test_evidence_citations_point_at_exactly_the_chosen_sentences(service, llm_service):
    answerer = llm_service("evidence", mock_response="Peskov said Russia is developing cooperation with Iran in many "
                                                      "areas. [1] Another claim [9].")
    retrieval = service.retriever.search(PESKOV_Q, 5)
    chosen = answerer.selector.select(PESKOV_Q, retrieval)
    answer = answerer.answer(PESKOV_Q, "en", retrieval)
    assert answer.mode == "llm" and not answer.abstained
    assert answer.citations[0].n == 1  # (the sentence whose [9] was dropped is marked by the app: see below)
    assert answer.dropped_citations == ["[9]"] and "[9]" not in answer.answer
    citation, evidence = answer.citations[0], chosen[0]
    assert (citation.article_id, citation.start, citation.end) == (evidence.article_id, evidence.start, evidence.end)
    assert service.corpus.get(citation.article_id).raw[citation.start : citation.end] == citation.quote
    chunk = service.index.chunks[service.index.chunk_by_id[citation.chunk_id]]
    assert chunk.start <= citation.start and citation.end <= chunk.end
    assert 0 < citation.support <= 1
    assert citation.supported == (citation.support >= SUPPORT_THRESHOLD)


def test_evidence_strategy_abstains_without_calling_the_model_when_nothing_is_selected(service, llm_service):
    question = "What recipe is recommended for baking sourdough bread?"
    answerer = llm_service("evidence", mock_response=Exception("the model must not be called"))
    retrieval = service.retriever.search(question, 5)
    assert answerer.selector.select(question, retrieval) == []
    answer = answerer.answer(question, "en", retrieval)
    assert answer.abstained and answer.citations == [] and answer.hits


def test_evidence_strategy_abstains_when_the_model_says_insufficient(service, llm_service):
    retrieval = service.retriever.search(PESKOV_Q, 5)
    answer = llm_service("evidence", mock_response="INSUFFICIENT").answer(PESKOV_Q, "ar", retrieval)
    assert answer.abstained and answer.citations == []
    assert answer.answer == "لا تجيب المصادر المتاحة عن هذا السؤال."


def test_evidence_strategy_drops_markers_beyond_the_chosen_sentences(service, llm_service):
    retrieval = service.retriever.search(PESKOV_Q, 5)
    answerer = llm_service("evidence", mock_response="Peskov spoke about Iran [5].")
    n_chosen = len(answerer.selector.select(PESKOV_Q, retrieval))
    assert n_chosen < 5  # [5] would be a valid passage number, but not a valid evidence number
    answer = answerer.answer(PESKOV_Q, "en", retrieval)
    assert answer.dropped_citations == ["[5]"] and "[5]" not in answer.answer
    assert all(1 <= c.n <= n_chosen for c in answer.citations)


def test_evidence_strategy_marks_a_sentence_the_model_left_unmarked(service, llm_service):
    retrieval = service.retriever.search(PESKOV_Q, 5)
    chosen = llm_service("evidence").selector.select(PESKOV_Q, retrieval)
    assert len(chosen) >= 2
    restated = " ".join(chosen[1].text.split()).rstrip(".")  # the model restates sentence 2 but cites nothing
    answerer = llm_service("evidence", mock_response=f"{restated}. Nothing else is known [1].")
    answer = answerer.answer(PESKOV_Q, "ar", retrieval)
    assert not answer.abstained
    restated_part, rest = answer.answer.split("Nothing")
    assert re.search(r" \[2\][.!?؟]? $", restated_part)  # the app's marker goes before the full stop
    assert rest == " else is known [1]."
    citation = next(c for c in answer.citations if c.n == 2)
    assert (citation.start, citation.end) == (chosen[1].start, chosen[1].end)
    assert citation.support > 0.95 and citation.supported


def test_evidence_strategy_without_any_marker_is_still_sourced_by_the_app(service, llm_service):
    retrieval = service.retriever.search(PESKOV_Q, 5)
    answer = llm_service("evidence", mock_response="Peskov talked about Iran.").answer(PESKOV_Q, "en", retrieval)
    assert not answer.abstained and len(answer.citations) == 1
    assert answer.answer.endswith("].") and answer.citations[0].n <= 4


@pytest.mark.parametrize("strategy", ["passages", "evidence"])
@pytest.mark.parametrize("reply", ["I'm sorry, but the passages do not say which minister signed it [2].",
                                   "أعتذر، ولكن لا أستطيع تقديم الإجابة على هذا السؤال [2]."])
def test_a_refusal_in_the_models_own_words_abstains(service, llm_service, strategy, reply):
    retrieval = service.retriever.search(PESKOV_Q, 5)
    answer = llm_service(strategy, mock_response=reply).answer(PESKOV_Q, "en", retrieval)
    assert answer.abstained and answer.citations == []


def test_refusals_are_told_from_answers():
    assert is_refusal("The sources do not mention Saudi Arabia [1].")
    assert is_refusal("لا توجد معلومات عن ذلك [1].")
    assert not is_refusal("According to Al-Monitor, Iran sent drones [1].")
    assert not is_refusal("لا تزال روسيا تتعاون مع إيران [1].")


# -- streaming and follow-ups ----------------------------------------------------------------------------------------


def test_the_model_reply_streams_token_by_token_and_the_answer_is_still_validated(service, llm_service):
    question = PESKOV_Q
    retrieval = service.retriever.search(question, 5)
    rank = next(h.rank for h in retrieval.hits if "بيسكوف" in h.text)
    reply = f"Peskov said Russia develops cooperation with Iran [{rank}]. It invented a fact [42]."
    pieces: list[str] = []
    answer = llm_service(mock_response=reply).answer(question, "en", retrieval, on_token=pieces.append)
    assert len(pieces) > 5 and "".join(pieces) == reply  # token by token, nothing lost
    assert [c.n for c in answer.citations] == [rank] and answer.dropped_citations == ["[42]"]
    assert "[42]" not in answer.answer


def _recording_completion(replies: list[str], calls: list[dict]):
    """A litellm-shaped completion function: records each call's messages, answers with the next reply."""
    from litellm import ModelResponse

    def completion(**kwargs):
        calls.append(kwargs)
        return ModelResponse(choices=[{"message": {"role": "assistant", "content": replies[len(calls) - 1]}}])

    return completion


def _generative(service, settings, answerer):
    """The shared service (same snapshot) answering with `answerer`; the shared one is left as it was."""
    llm = copy.copy(service)
    llm.settings = settings
    llm.answerer = answerer
    return llm


def test_a_follow_up_is_condensed_into_a_standalone_question_before_retrieval(service, seed_settings):
    calls: list[dict] = []
    standalone = "What did Kremlin spokesman Dmitry Peskov tell CNBC about cooperation with Iran?"
    settings = seed_settings.model_copy(update={"llm_model": MODEL})
    translated = "ماذا قال المتحدث باسم الكرملين دميتري بيسكوف لشبكة سي إن بي سي عن التعاون مع إيران؟"
    completion = _recording_completion([standalone, translated, "Peskov said cooperation with Iran develops [1].",
                                        "[1] Peskov said cooperation with Iran develops."], calls)
    llm = _generative(service, settings, LLMAnswerer(service.index, service.corpus, service.embedder, settings,
                                                     completion, strategy="passages"))
    history = [{"question": "Who speaks for the Kremlin?", "answer": "Dmitry Peskov [1]."}]
    answer = llm.ask("And what did he tell CNBC about Iran?", "en", history=history)

    condense_prompt = " ".join(m["content"] for m in calls[0]["messages"])
    assert "Who speaks for the Kremlin?" in condense_prompt and "what did he tell CNBC" in condense_prompt
    assert "[1]" not in condense_prompt  # earlier answers go in without their markers
    assert answer.standalone_question == standalone
    assert standalone in calls[1]["messages"][1]["content"]  # the standalone question is what gets translated...
    assert standalone in calls[2]["messages"][1]["content"]  # ...and answered
    assert any("بيسكوف" in h.text for h in answer.hits)  # and retrieval ran on it


def test_condensing_falls_back_to_the_follow_up_when_the_model_rambles(service, llm_service):
    rambling = "Sure! " + "Here is a long explanation of the conversation. " * 30
    answerer = llm_service(mock_response=rambling)
    follow_up = "And in return?"
    assert answerer.condense(follow_up, [("What did Iran send Russia?", "Drones [1].")], "en") == follow_up
    assert answerer.condense(follow_up, [], "en") == follow_up  # no thread: nothing to condense, no model call


def test_ask_stream_sends_the_models_tokens_before_the_final_answer(service, seed_settings):
    import json

    from fastapi.testclient import TestClient

    from app.api import create_app

    settings = seed_settings.model_copy(update={"llm_model": MODEL})
    llm = _generative(service, settings, LLMAnswerer(
        service.index, service.corpus, service.embedder, settings, strategy="passages",
        mock_response="Peskov said Russia develops cooperation with Iran [1]."))
    with TestClient(create_app(settings, service=llm)) as client:
        response = client.post("/ask/stream", json={"question": PESKOV_Q})
    assert response.status_code == 200
    events = [(block.split("\n")[0].removeprefix("event: "), json.loads(block.split("\n")[1].removeprefix("data: ")))
              for block in response.text.strip().split("\n\n")]
    names = [name for name, _ in events]
    tokens = [data["text"] for name, data in events if name == "token"]
    assert names[-1] == "answer" and names.count("token") > 5 and names.index("token") > names.index("status")
    assert "".join(tokens) == "Peskov said Russia develops cooperation with Iran [1]."
    assert events[-1][1]["citations"][0]["n"] == 1


def _translation_call(call: dict) -> bool:
    return "translate" in call["messages"][0]["content"]


def test_an_english_question_is_also_searched_in_the_models_arabic_translation(service, seed_settings):
    calls: list[dict] = []
    translated = "ماذا قال بيسكوف عن التعاون مع إيران؟"
    rendering = "Peskov said that Russia is developing its cooperation with Iran."
    settings = seed_settings.model_copy(update={"llm_model": MODEL})
    completion = _recording_completion(
        [translated, "Peskov said cooperation with Iran develops [1].", f"[1] {rendering}"], calls)
    llm = _generative(service, settings, LLMAnswerer(service.index, service.corpus, service.embedder, settings,
                                                     completion, strategy="evidence"))
    result = llm.ask_with_retrieval(PESKOV_Q, "en")

    assert _translation_call(calls[0]) and PESKOV_Q in calls[0]["messages"][1]["content"]
    assert result.retrieval.translated_question == translated
    # The translation is searched like the question: its Arabic words reach BM25 and rank chunks.
    assert any(h.translated_bm25_rank is not None for h in result.retrieval.hits)
    assert any("بيسكوف" in h.text for h in result.retrieval.hits[:2])
    citation = result.answer.citations[0]
    assert citation.translation is not None and citation.translation.text == rendering
    assert citation.translation.machine and citation.translation.model == MODEL and citation.translation.language == "en"
    # The quote and its span stay the source's own words.
    assert service.corpus.get(citation.article_id).raw[citation.start : citation.end] == citation.quote
    assert rendering not in result.answer.answer and "بيسكوف" in citation.quote


def test_an_arabic_question_over_arabic_articles_is_neither_translated_nor_its_quotes(service, seed_settings):
    calls: list[dict] = []
    settings = seed_settings.model_copy(update={"llm_model": MODEL})
    completion = _recording_completion(["قال بيسكوف إن التعاون مع إيران يتطور [1]."], calls)
    llm = _generative(service, settings, LLMAnswerer(service.index, service.corpus, service.embedder, settings,
                                                     completion, strategy="passages"))
    answer = llm.ask("ماذا قال بيسكوف عن التعاون مع إيران؟", "ar")
    assert len(calls) == 1 and not answer.abstained
    assert all(c.translation is None for c in answer.citations)


def test_a_translation_that_only_repeats_the_arabic_or_skips_a_number_is_left_out(service, llm_service):
    answer, _ = _ask(service, llm_service(strategy="passages", mock_response="Iran sent drones [1]. Russia paid [2]."),
                     "What did Iran send Russia and what did it get?")
    assert len(answer.citations) == 2
    first, second = answer.citations
    reply = f"[1] {first.quote}\n[3] Russia paid for them."
    translated = llm_service(mock_response=reply).translate_quotes(answer.citations, "en", ["ar", "ar"])
    assert [c.translation for c in translated] == [None, None]
    assert [c.quote for c in translated] == [first.quote, second.quote]


def test_a_failing_translation_leaves_the_answer_standing(service, seed_settings):
    from litellm import ModelResponse

    def completion(**kwargs):
        if _translation_call(kwargs):
            raise ConnectionError("the model server went away")
        return ModelResponse(choices=[{"message": {"role": "assistant",
                                                   "content": "Peskov said cooperation with Iran develops [1]."}}])

    settings = seed_settings.model_copy(update={"llm_model": MODEL})
    llm = _generative(service, settings, LLMAnswerer(service.index, service.corpus, service.embedder, settings,
                                                     completion, strategy="evidence"))
    result = llm.ask_with_retrieval(PESKOV_Q, "en")
    assert result.error is None and not result.answer.abstained
    assert result.retrieval.translated_question is None
    assert all(c.translation is None for c in result.answer.citations)


def test_the_sources_list_of_chat_clients_shows_a_machine_translation_as_one(service, llm_service):
    from app.answer.markdown import with_sources
    from app.answer.models import QuoteTranslation

    answer, _ = _ask(service, llm_service(strategy="passages", mock_response="Peskov spoke of Iran [1]."), PESKOV_Q)
    translated = answer.citations[0].model_copy(update={"translation": QuoteTranslation(
        text="Peskov said cooperation [9] grows.", language="en", model=MODEL)})
    text = with_sources(answer.model_copy(update={"citations": [translated]}))
    item = text.split("**Sources**\n", 1)[1]
    assert "(machine translation: Peskov said cooperation ［9］ grows.)" in item and "[9]" not in text


def test_the_abstention_judge_reads_p_yes_from_the_first_tokens_log_probabilities():
    # scripts/judge_abstention.py scores a judge model for issue 14's near misses over any OpenAI-compatible server.
    import importlib.util
    import json as _json
    import math as _math
    from pathlib import Path as _Path

    import httpx

    spec = importlib.util.spec_from_file_location(
        "judge_abstention", _Path(__file__).resolve().parents[1] / "scripts" / "judge_abstention.py")
    judge = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(judge)
    seen = {}

    def reply(request: httpx.Request) -> httpx.Response:
        seen.update(_json.loads(request.content))
        top = [{"token": " YES", "logprob": _math.log(0.6)}, {"token": "No", "logprob": _math.log(0.2)},
               {"token": "Maybe", "logprob": _math.log(0.1)}]
        return httpx.Response(200, json={"choices": [{"logprobs": {"content": [{"top_logprobs": top}]}}]})

    client = httpx.Client(base_url="http://judge/v1", transport=httpx.MockTransport(reply))
    assert judge.p_yes(client, "m", "Who heads it?", ["الجملة الأولى", "الثانية"]) == pytest.approx(0.75)
    assert seen["model"] == "m" and seen["max_tokens"] == 1 and "[2] الثانية" in seen["messages"][1]["content"]
