"""Ingestion: turn a .txt, .md or .html document into the raw text an article stores, with its metadata — or say
clearly why not (binary, not UTF-8, empty, too large, nothing left after cleaning).

- .txt is kept as written (line breaks normalised to \\n, trailing spaces and stray control characters dropped);
- .html: trafilatura extracts the main text (scripts, styles, menus, footers and comments left out) and, where the
  page states them, title, date, canonical URL and site name; a fragment too small for trafilatura's main-content
  detection falls back to lxml with lxml_html_clean (scripts, styles, forms, embeds removed), never regexes;
- .md is rendered by markdown-it-py and its text taken the same lxml way (raw HTML inside it is cleaned too).

The extracted text is what gets stored as the article's .txt: citation offsets index it.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from app.config import Settings
from app.corpus import ArticleMeta, content_hash, make_article
from app.errors import RagError
from app.text.arabic import detect_language
from app.text.unicode import NOT_TEXT, has_lone_surrogates

log = logging.getLogger(__name__)

FORMATS = ("txt", "md", "html")
_LABEL = {"txt": "text", "md": "Markdown", "html": "HTML"}
EXTENSIONS = {".txt": "txt", ".text": "txt", ".md": "md", ".markdown": "md", ".html": "html", ".htm": "html"}
# Largest article kept, in characters of extracted text: embedding time grows with it (~1 s per 1000 characters).
MAX_ARTICLE_CHARS = 50_000
MAX_TITLE_CHARS = 500
MAX_SOURCE_CHARS = 200
MAX_URL_CHARS = 2000
LANGUAGE_RE = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
DATE_RE = re.compile(r"^\d{4}(-\d{2}(-\d{2})?)?$")
_BLOCK_TAGS = {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "table", "blockquote",
               "pre", "section", "article", "header", "footer", "aside", "main", "dd", "dt", "dl", "figcaption",
               "figure", "hr", "td", "th", "caption", "address", "details", "summary"}


class IngestError(RagError):
    """The document cannot become an article; the message says why. 422 unless set otherwise (413: too large)."""

    status = 422


@dataclass(frozen=True)
class NewArticle:
    """A document ready to add: its id (from its content hash), stored raw text and metadata."""

    id: str
    raw: str
    meta: ArticleMeta
    content_hash: str
    origin: str  # the file it came from, or "request"

    @property
    def title(self) -> str:
        return make_article(self.id, self.raw, self.meta).title


def format_of(path: Path) -> str | None:
    return EXTENSIONS.get(path.suffix.lower())


# -- bytes and text -----------------------------------------------------------------------------------------------

def decode(data: bytes, fmt: str, name: str) -> str:
    """UTF-8 text of a file's bytes (a BOM is dropped). HTML may declare another charset; trafilatura's decoder
    honours it. Binary data (NUL bytes) and invalid UTF-8 are refused with the byte offset."""
    if b"\x00" in data:
        raise IngestError(f"{_at(name)}looks like a binary file (it contains NUL bytes), not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if fmt == "html":
            from trafilatura.utils import decode_file

            text = decode_file(data)
            if isinstance(text, str) and "\ufffd" not in text:
                return text
        raise IngestError(f"{_at(name)}not valid UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                          f"save it as UTF-8 and add it again") from None


def _at(name: str) -> str:
    """Message prefix naming the document: the file's path, or nothing for an API request."""
    return "" if name == "request" else f"{name}: "


def _without_controls(text: str, name: str) -> str:
    """`text` without control characters other than tab and line breaks; binary data (NUL, or more than 1% control
    characters) is refused. (lxml also refuses control characters: HTML and Markdown are cleaned first.)"""
    controls = sum(1 for ch in text if ch not in "\n\t\r" and unicodedata.category(ch) == "Cc")
    if "\x00" in text or controls > max(8, len(text) // 100):
        raise IngestError(f"{_at(name)}looks like binary data ({controls} control characters), not text")
    if controls:
        text = "".join(ch for ch in text if ch in "\n\t\r" or unicodedata.category(ch) != "Cc")
    return text


def canonical_text(text: str, name: str) -> str:
    """The text as stored: \\r\\n and \\r become \\n, a BOM, trailing spaces and stray control characters go, the
    whole ends with one newline. Refuses lone surrogates and text that is mostly control characters (binary)."""
    if has_lone_surrogates(text):
        raise IngestError(f"{_at(name)}{NOT_TEXT}")
    text = _without_controls(text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n"), name)
    lines = [line.rstrip() for line in text.split("\n")]
    text = "\n".join(lines).strip("\n")
    if not text.strip():
        raise IngestError(f"{_at(name)}the article is empty (no text, or only whitespace)")
    return text + "\n"


# -- extraction ---------------------------------------------------------------------------------------------------

def html_text(html: str) -> str:
    """All visible text of an HTML document or fragment, one line per block element: lxml parses it and
    lxml_html_clean removes scripts, styles, comments, forms and embedded objects first."""
    from lxml import etree
    from lxml import html as lxml_html
    from lxml_html_clean import Cleaner

    if not html.strip():
        return ""
    try:
        doc = lxml_html.document_fromstring(html)
    except (etree.ParserError, ValueError):
        return ""
    cleaner = Cleaner(scripts=True, javascript=True, comments=True, style=True, inline_style=True, links=True,
                      meta=True, processing_instructions=True, embedded=True, frames=True, forms=True,
                      annoying_tags=True, page_structure=False, remove_unknown_tags=False,
                      kill_tags={"noscript", "template", "svg", "math", "button", "select", "textarea", "iframe",
                                 "object", "head", "title"})
    doc = cleaner.clean_html(doc)
    for element in doc.iter():
        if isinstance(element.tag, str) and element.tag.lower() in _BLOCK_TAGS:
            element.tail = "\n" + (element.tail or "")
            if element.tag.lower() != "br":
                element.text = "\n" + (element.text or "")
    lines = (" ".join(line.split()) for line in doc.text_content().split("\n"))
    return "\n".join(line for line in lines if line)


def extract_html(html: str) -> tuple[str, dict]:
    """Main text and found metadata (title, date, url, source) of an HTML page, via trafilatura."""
    import trafilatura

    found: dict = {}
    text = ""
    try:
        doc = trafilatura.bare_extraction(html, with_metadata=True, favor_recall=True, include_comments=False,
                                          include_tables=True, deduplicate=False)
    except Exception as exc:  # noqa: BLE001 - a parser failure on hostile input is a bad document, not a crash
        log.info("trafilatura failed (%s); using the plain-text fallback", exc)
        doc = None
    if doc is not None:
        text = getattr(doc, "text", None) or ""
        found = {"title": getattr(doc, "title", None), "date": getattr(doc, "date", None),
                 "url": getattr(doc, "url", None), "source": getattr(doc, "sitename", None)}
    if not text.strip():  # a fragment with no "main content" block: take all visible text, cleaned
        text = html_text(html)
    return text, {k: v for k, v in found.items() if isinstance(v, str) and v.strip()}


def extract_markdown(markdown: str) -> tuple[str, dict]:
    """Plain text of a Markdown document (markup dropped, link text kept) and its first heading as title."""
    from markdown_it import MarkdownIt

    parser = MarkdownIt("commonmark", {"html": True})
    tokens = parser.parse(markdown)
    title = None
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and i + 1 < len(tokens):
            title = " ".join(html_text(parser.renderer.render(tokens[i + 1].children or [], parser.options, {}))
                             .split()) or None
            break
    return html_text(parser.render(markdown)), ({"title": title} if title else {})


def extract(text: str, fmt: str) -> tuple[str, dict]:
    if fmt == "html":
        return extract_html(text)
    if fmt == "md":
        return extract_markdown(text)
    if fmt == "txt":
        return text, {}
    raise IngestError(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")


# -- metadata -----------------------------------------------------------------------------------------------------

def _clean_field(value: str | None, name: str, limit: int) -> str | None:
    if value is None:
        return None
    if has_lone_surrogates(value):
        raise IngestError(f"{_at(name)}{NOT_TEXT}")
    value = " ".join("".join(" " if unicodedata.category(ch) == "Cc" else ch for ch in value).split())
    if len(value) > limit:
        raise IngestError(f"{_at(name)}at most {limit} characters")
    return value or None


def clean_url(value: str | None, *, strict: bool) -> str | None:
    value = _clean_field(value, "url", MAX_URL_CHARS)
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        if strict:
            raise IngestError("url: must be an absolute http:// or https:// URL")
        return None
    return value


def clean_date(value: str | dt.date | None, *, strict: bool) -> str | None:
    if value is None:
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    value = value.strip()[:10] if not strict else value.strip()
    ok = bool(DATE_RE.match(value))
    if ok and len(value) == 10:
        try:
            dt.date.fromisoformat(value)
        except ValueError:
            ok = False
    if not ok:
        if strict:
            raise IngestError("date: must be YYYY-MM-DD (or YYYY-MM, YYYY)")
        return None
    return value


def clean_language(value: str | None) -> str | None:
    value = _clean_field(value, "language", 16)
    if value is not None and not LANGUAGE_RE.match(value):
        raise IngestError("language: a language code such as ar or en")
    return value


# -- the whole step -----------------------------------------------------------------------------------------------

def prepare(content: str, fmt: str, settings: Settings, *, origin: str = "request", title: str | None = None,
            source: str | None = None, url: str | None = None, date: str | dt.date | None = None,
            language: str | None = None) -> NewArticle:
    """Extract, clean and check one document; given metadata wins over what the document states."""
    name = origin
    if fmt not in FORMATS:
        raise IngestError(f"{_at(name)}unknown format {fmt!r}: use one of {', '.join(FORMATS)}")
    if has_lone_surrogates(content):
        raise IngestError(f"{_at(name)}{NOT_TEXT}")
    if "\x00" in content:
        raise IngestError(f"{_at(name)}looks like binary data (it contains NUL characters), not text")
    if not content.strip():
        raise IngestError(f"{_at(name)}the article is empty (no text, or only whitespace)")
    if fmt != "txt":
        content = _without_controls(content, name)
    try:
        text, found = extract(content, fmt)
    except (ValueError, TypeError, RecursionError) as exc:  # a parser refusing hostile markup: a bad document
        raise IngestError(f"{_at(name)}cannot read this {_LABEL[fmt]} document ({type(exc).__name__}: "
                          f"{str(exc)[:200]})") from None
    if fmt != "txt" and not text.strip():
        raise IngestError(f"{_at(name)}no text found in the {_LABEL[fmt]} document (after removing scripts, styles "
                          "and page furniture)")
    raw = canonical_text(text, name)
    if len(raw) > MAX_ARTICLE_CHARS:
        raise IngestError(f"{_at(name)}the article text is {len(raw)} characters; the limit is "
                          f"{MAX_ARTICLE_CHARS}: split it into shorter articles", status=413)
    found_title = (_clean_field(found.get("title"), "title", 10**6) or "")[:MAX_TITLE_CHARS]
    found_source = (_clean_field(found.get("source"), "source", 10**6) or "")[:MAX_SOURCE_CHARS]
    meta = ArticleMeta(
        title=_clean_field(title, "title", MAX_TITLE_CHARS) or found_title,
        source=_clean_field(source, "source", MAX_SOURCE_CHARS) or found_source,
        url=clean_url(url, strict=True) or clean_url(found.get("url"), strict=False),
        date=clean_date(date, strict=True) or clean_date(found.get("date"), strict=False),
        language=clean_language(language) or detect_language(raw),
    )
    digest = content_hash(raw)
    article = make_article(digest[:16], raw, meta)
    if not article.blocks:
        raise IngestError(f"{_at(name)}no body text left after removing page furniture (share/subscribe lines, "
                          "photo credits, related-article lists)")
    return NewArticle(id=digest[:16], raw=raw, meta=meta, content_hash=digest, origin=origin)


def read_file(path: Path, settings: Settings, **meta) -> NewArticle:
    """One file from disk: size, encoding and format checked before extraction."""
    path = Path(path)
    fmt = format_of(path)
    if fmt is None:
        raise IngestError(f"{path}: unsupported file type {path.suffix or '(none)'!r}; use .txt, .md or .html")
    try:
        size = path.stat().st_size
        if size > settings.max_upload_bytes:
            raise IngestError(f"{path}: the file is {size} bytes; the limit is {settings.max_upload_bytes} "
                              "(RAG_MAX_UPLOAD_BYTES)", status=413)
        data = path.read_bytes()
    except OSError as exc:
        raise IngestError(f"{path}: cannot read it ({exc.strerror or exc})") from None
    return prepare(decode(data, fmt, str(path)), fmt, settings, origin=str(path), **meta)


def collect_files(paths: list[Path]) -> tuple[list[Path], list[str]]:
    """The files to add: given files as they are, folders searched recursively for .txt/.md/.html (hidden entries
    skipped). Returns (files, messages about what was skipped)."""
    files: list[Path] = []
    notes: list[str] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.is_file() and format_of(p)
                           and not any(part.startswith(".") for part in p.relative_to(path).parts))
            if not found:
                notes.append(f"{path}: no .txt, .md or .html files in this folder")
            files.extend(found)
        elif path.exists():
            files.append(path)
        else:
            notes.append(f"{path}: no such file or folder")
    return list(dict.fromkeys(files)), notes
