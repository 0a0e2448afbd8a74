"""The MCP server: tools `search`, `ask` and `get_article` over the service, for assistants that speak MCP.

`rag mcp` serves it over stdio; `rag serve` over streamable HTTP at /mcp (app/api/main.py). Each tool returns
structured content under a published output schema (citations with article, span and exact quote) and a text for
the assistant to read, which shows article text defused as every answer text does (app/answer/models.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Literal

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp_types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from app.answer.markdown import with_sources
from app.answer.models import defuse_markers
from app.api.schemas import MAX_HISTORY_TURNS, MAX_QUESTION_CHARS, ArticleDetail, AskOutput, SearchResult, Turn
from app.errors import RagError
from app.service import RagService

MCP_PATH = "/mcp"
SERVER_NAME = "arabic-news-rag"
INSTRUCTIONS = (
    "Answers questions from a corpus of Arabic news articles, in Arabic or English, quoting the articles with [n] "
    "citations. `ask` gives a cited answer (it says so when the sources do not answer); `search` lists the ranked "
    "passages for a query; `get_article` reads an article a citation points into (a citation's start and end index "
    "its text). Cite the answer's [n] sources when you use it.")
READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False, idempotent_hint=True)

Question = Annotated[str, Field(min_length=1, max_length=MAX_QUESTION_CHARS,
                                description="the question, in Arabic or English")]
TopK = Annotated[Annotated[int, Field(ge=1, le=50)] | None, Field(description="how many passages to retrieve "
                                                                             "(default 5)")]


def build_server(get_service: Callable[[], RagService | None]) -> MCPServer:
    """The MCP server over whatever service `get_service` returns at each call (the API's once it has started; the
    stdio command's, waiting for it to load). A RagError it raises becomes the tool's error."""
    # log_level: the SDK calls logging.basicConfig with it, which must not turn on INFO logs for the whole process.
    server = MCPServer(SERVER_NAME, title="Arabic news with citations", instructions=INSTRUCTIONS,
                       log_level="WARNING")

    def service() -> RagService:
        try:
            found = get_service()
        except RagError as exc:
            raise ToolError(exc.message) from None
        if found is None:
            raise ToolError("the service is still starting: try again in a few seconds")
        return found

    @server.tool(title="Ask the articles", annotations=READ_ONLY)
    def ask(question: Question,
            lang: Annotated[Literal["ar", "en"] | None, Field(description="answer language (default: the "
                                                                            "question's)")] = None,
            top_k: TopK = None,
            history: Annotated[list[Turn] | None, Field(max_length=MAX_HISTORY_TURNS, description=(
                "earlier turns of the conversation, oldest first, for a follow-up question"))] = None,
            ) -> Annotated[CallToolResult, AskOutput]:
        """Answer a question from the news articles. The answer quotes or restates the articles, each claim
        followed by [n]; `citations` give each n's article, the character span in its text and the exact quote.
        When the articles do not answer, the answer says so and cites nothing."""
        try:
            answer = service().ask(question, lang, top_k, history)
        except RagError as exc:
            raise ToolError(exc.message) from None
        return _result(with_sources(answer), AskOutput.of(answer))

    @server.tool(title="Search the articles", annotations=READ_ONLY)
    def search(query: Annotated[str, Field(min_length=1, max_length=MAX_QUESTION_CHARS,
                                           description="what to look for, in Arabic or English")],
               top_k: TopK = None) -> Annotated[CallToolResult, SearchResult]:
        """The passages (chunks) of the articles that best match a query, best first, each with its article and
        its character span in that article's text. For an answer with citations use `ask`."""
        try:
            result = service().search(query, top_k)
        except RagError as exc:
            raise ToolError(exc.message) from None
        lines = [f"{len(result.hits)} passages for {query!r}:"]
        for hit in result.hits:
            lines.append(f"\n{hit.rank}. {defuse_markers(hit.title)} (article {hit.article_id}, characters "
                         f"{hit.start}-{hit.end})\n{defuse_markers(hit.text.strip())}")
        return _result("\n".join(lines), result)

    @server.tool(title="Read an article", annotations=READ_ONLY)
    def get_article(article_id: Annotated[str, Field(min_length=1, max_length=200, description=(
                        "the article's id, as citations and search hits give it"))],
                    ) -> Annotated[CallToolResult, ArticleDetail]:
        """An article's metadata and full text. Citation and hit spans (start, end) index this text."""
        try:
            article = ArticleDetail.of(service().article(article_id))
        except RagError as exc:
            raise ToolError(exc.message) from None
        about = " · ".join(x for x in (article.source, article.date, article.meta.url) if x)
        text = f"{defuse_markers(article.title)}\n{defuse_markers(about)}\n\n{defuse_markers(article.text)}"
        return _result(text, article)

    return server


def _result(text: str, structured) -> CallToolResult:
    return CallToolResult(content=[TextContent(type="text", text=text)],
                          structured_content=structured.model_dump(mode="json"))


class MCPEndpoint:
    """/mcp: the server over streamable HTTP, stateless (each request stands alone: the tools only read). Bound to a
    loopback host, the SDK also refuses foreign Host and Origin headers (DNS rebinding). The SDK's session manager
    runs only once, and an app's lifespan may run more than once (every test client runs it), so each run of
    `running()` makes a new one."""

    def __init__(self, server: MCPServer, host: str):
        self.server = server
        self.host = host
        self._manager: StreamableHTTPSessionManager | None = None

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        self.server.streamable_http_app(streamable_http_path=MCP_PATH, stateless_http=True, json_response=True,
                                        host=self.host)  # makes the server's next session manager
        manager = self.server.session_manager
        async with manager.run():
            self._manager = manager
            try:
                yield
            finally:
                self._manager = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._manager is None:  # outside the app's lifespan
            await JSONResponse({"detail": "MCP is not running: the server is starting or stopping"},
                               status_code=503)(scope, receive, send)
            return
        await self._manager.handle_request(scope, receive, send)
