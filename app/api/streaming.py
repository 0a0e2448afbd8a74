"""Server-sent events: POST /ask/stream's (the service's stages and the model's tokens as they come, then the answer)
and POST /v1/chat/completions' (OpenAI's chunks of the validated answer, the last carrying the citations)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence

from fastapi.encoders import jsonable_encoder
from starlette.concurrency import run_in_threadpool

from app.answer.markdown import with_sources
from app.answer.models import Answer
from app.api.handlers import openai_error_body
from app.api.schemas import AskStreamRequest, ChatCompletionChunk, ChunkChoice, ChunkDelta, Turn
from app.errors import RagError
from app.service import RagService

log = logging.getLogger(__name__)

# While a slow answer (LLM mode) is being written, an SSE comment this often keeps proxies from closing the stream.
KEEP_ALIVE_SECONDS = 10.0


async def answer_events(service: RagService, body: AskStreamRequest) -> AsyncIterator[str]:
    """`status` and `token` events while the question is answered in a worker thread, then `answer` (or `error`:
    the stream has started, so a failure is reported in it rather than as an HTTP status)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, dict] | None] = asyncio.Queue()
    streamed = False

    def send(name: str, data: dict) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, (name, data))
        except RuntimeError:  # the loop is gone (shutting down): nobody is listening
            pass

    def on_token(text: str) -> None:
        nonlocal streamed
        streamed = True
        send("token", {"text": text})

    def work() -> Answer:
        return service.ask(body.question, body.lang, body.top_k, body.history,
                           on_stage=lambda stage: send("status", {"stage": stage}), on_token=on_token)

    async def run() -> None:
        try:
            answer = await run_in_threadpool(work)
        except RagError as exc:
            await queue.put(("error", {"detail": exc.message, "status": exc.status}))
        except Exception:  # noqa: BLE001 - the stream has started: report, do not raise
            log.exception("/ask/stream failed")
            await queue.put(("error", {"detail": "internal error while answering", "status": 500}))
        else:
            if not streamed:  # the extractive answer (or a model that did not stream) comes whole
                await queue.put(("token", {"text": answer.answer}))
            await queue.put(("answer", jsonable_encoder(answer)))
        finally:
            await queue.put(None)

    task = asyncio.create_task(run())
    try:
        while (item := await queue.get()) is not None:
            name, data = item
            yield f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"
    finally:
        if not task.done():
            task.cancel()


async def completion_chunks(service: RagService, model: str, question: str, language: str | None,
                            top_k: int | None, history: Sequence[Turn]) -> AsyncIterator[str]:
    """OpenAI's `chat.completion.chunk`s: the role at once, then the content once the answer is validated — a whole
    line a chunk, so no [n] is ever split — then a last chunk with `finish_reason`, `citations` and `abstained`, and
    `data: [DONE]`. The model's raw tokens are not passed on as they come (unlike /ask/stream): an OpenAI client
    appends every delta and cannot take back a marker the validation drops or a refusal it turns into an abstention.
    A failure after the stream began comes as `data: {"error": ...}`, which OpenAI's SDKs raise as APIError."""
    stamp = {"id": f"chatcmpl-{uuid.uuid4().hex}", "created": int(time.time()), "model": model}

    def chunk(delta: ChunkDelta, finish_reason: str | None = None, **last) -> str:
        body = ChatCompletionChunk(**stamp, choices=[ChunkChoice(delta=delta, finish_reason=finish_reason)], **last)
        return f"data: {body.model_dump_json()}\n\n"

    yield chunk(ChunkDelta(role="assistant", content=""))
    work = asyncio.ensure_future(run_in_threadpool(service.ask, question, language, top_k, history))
    try:
        while True:
            try:
                answer = await asyncio.wait_for(asyncio.shield(work), KEEP_ALIVE_SECONDS)
                break
            except TimeoutError:
                yield ": keep-alive\n\n"
    except RagError as exc:
        error = openai_error_body(exc.status, exc.message, param=getattr(exc, "param", None),
                                  code=getattr(exc, "code", None))
        yield f"data: {json.dumps(error, ensure_ascii=False)}\n\n"
        return
    except Exception:  # noqa: BLE001 - the stream has started: report, do not raise
        log.exception("/v1/chat/completions stream failed")
        yield f"data: {json.dumps(openai_error_body(500, 'internal error while answering'))}\n\n"
        return
    finally:
        if not work.done():  # the client went away: nobody waits for this answer
            work.cancel()
    for line in with_sources(answer).splitlines(keepends=True):
        yield chunk(ChunkDelta(content=line))
    yield chunk(ChunkDelta(), "stop", citations=answer.citations, abstained=answer.abstained)
    yield "data: [DONE]\n\n"
