"""POST /ask/stream's server-sent events: the service's stages and the model's tokens as they come, then the answer."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator

from fastapi.encoders import jsonable_encoder
from starlette.concurrency import run_in_threadpool

from app.answer.models import Answer
from app.api.schemas import AskStreamRequest
from app.errors import RagError
from app.service import RagService

log = logging.getLogger(__name__)


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
