"""The OpenAI-compatible endpoint: GET /v1/models and POST /v1/chat/completions, answered by the service as /ask is."""

from __future__ import annotations

import time
import uuid
from datetime import datetime

from fastapi import APIRouter
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from app.answer.markdown import with_sources
from app.api.deps import ServiceDep
from app.api.schemas import (
    CHAT_COMPLETION_RESPONSES,
    MODELS,
    AssistantMessage,
    ChatCompletion,
    ChatCompletionRequest,
    CompletionChoice,
    ModelCard,
    ModelList,
    OpenAIErrorBody,
)
from app.api.streaming import completion_chunks
from app.errors import InvalidRequest
from app.service import RagService

router = APIRouter(prefix="/v1", tags=["OpenAI-compatible"])


@router.get("/models", response_model=ModelList)
async def models(service: ServiceDep) -> ModelList:
    """The model names to ask with: one answers in the question's language, the -ar and -en ones in theirs."""
    return ModelList(data=[ModelCard(id=name, created=_built(service)) for name in MODELS])


@router.get("/models/{model}", response_model=ModelCard, responses={404: {"model": OpenAIErrorBody}})
async def model(model: str, service: ServiceDep) -> ModelCard:
    if model not in MODELS:
        raise InvalidRequest(f"the model {model!r} does not exist: use one of {', '.join(MODELS)}", param="model",
                             code="model_not_found", status=404)
    return ModelCard(id=model, created=_built(service))


@router.post("/chat/completions", response_model=ChatCompletion, responses=CHAT_COMPLETION_RESPONSES)
async def chat_completions(body: ChatCompletionRequest, service: ServiceDep):
    """The last user message answered from the articles, the earlier turns read as the thread (as on the chat page).
    The content is the answer with its [n] markers and a Sources list; `citations` are the objects POST /ask
    returns. An abstention is a normal completion whose content says the sources do not answer."""
    language = body.language()
    question, history = body.conversation()
    if body.stream:
        return StreamingResponse(completion_chunks(service, body.model, question, language, body.top_k, history),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    answer = await run_in_threadpool(service.ask, question, language, body.top_k, history)
    return ChatCompletion(id=f"chatcmpl-{uuid.uuid4().hex}", created=int(time.time()), model=body.model,
                          choices=[CompletionChoice(message=AssistantMessage(content=with_sources(answer)))],
                          citations=answer.citations, abstained=answer.abstained)


def _built(service: RagService) -> int:
    """When the live index was built, as Unix time (what OpenAI's `created` holds)."""
    try:
        return int(datetime.fromisoformat(service.index.manifest["built_at"]).timestamp())
    except (KeyError, TypeError, ValueError):
        return 0
