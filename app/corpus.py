"""The corpus: articles read from a folder of .txt files plus their metadata (completed from what the text itself
states), cleaned into body spans."""

from __future__ import annotations

import hashlib
import json
import logging
import re
import unicodedata
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from pydantic import BaseModel, ValidationError

from app.errors import CorpusError
from app.text.clean import body_blocks
from app.text.metadata import read_meta

log = logging.getLogger(__name__)

METADATA_FILE = "articles.json"
# Ids the write path accepts (they name files): letters, digits, "_", "-", "."; not starting with a dot.
ARTICLE_ID_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}$")


def content_hash(text: str) -> str:
    """The deduplication key of an article: sha256 of its text with Unicode composed (NFC) and every run of
    whitespace made one space, so the same article with other line breaks or spacing is the same article."""
    canonical = " ".join(unicodedata.normalize("NFC", text).split())
    return hashlib.sha256(canonical.encode("utf-8", "surrogatepass")).hexdigest()


class ArticleMeta(BaseModel):
    """What we know about an article beyond its text. Empty strings mean 'not stated'."""

    title: str = ""
    source: str = ""  # the outlet that published this text, as it names itself
    source_en: str = ""
    original: str = ""  # the publication it translates or quotes, where the text says so
    original_en: str = ""
    date: str | None = None
    url: str | None = None
    language: str = "ar"
    notes: str = ""


@dataclass(frozen=True)
class Article:
    id: str
    raw: str
    meta: ArticleMeta
    blocks: tuple[tuple[int, int], ...] = field(default=())  # body spans in `raw`

    @property
    def title(self) -> str:
        return self.meta.title or _first_line(self.raw, self.blocks) or self.id

    @property
    def source_label(self) -> str:
        """Outlet and original publication, for citations: 'Hawar News Agency, after Al-Monitor'."""
        parts = [self.meta.source_en or self.meta.source]
        if self.meta.original_en or self.meta.original:
            parts.append(f"after {self.meta.original_en or self.meta.original}")
        return ", ".join(p for p in parts if p)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.raw.encode("utf-8")).hexdigest()

    @property
    def content_hash(self) -> str:
        return content_hash(self.raw)


def _first_line(raw: str, blocks: tuple[tuple[int, int], ...]) -> str:
    if not blocks:
        return ""
    start, end = blocks[0]
    line = raw[start:end].split("\n", 1)[0].strip()
    if line[:1] + line[-1:] in ('""', "“”", "«»") and len(line) > 2:  # a headline wholly in quotes
        line = line[1:-1]
    elif line.count('"') == 1:  # a stray quote mark; «الماء مقابل الطاقة».. opening a headline stays
        line = line.replace('"', "")
    return line.strip()[:200]


def make_article(article_id: str, raw: str, meta: ArticleMeta | None = None) -> Article:
    return Article(id=article_id, raw=raw, meta=with_text_meta(meta or ArticleMeta(), raw),
                   blocks=tuple(body_blocks(raw)))


def with_text_meta(meta: ArticleMeta, raw: str) -> ArticleMeta:
    """`meta` with each field it leaves empty (source, original and its Latin name, date) filled from what the text
    states (app.text.metadata); a field given in `meta` always wins."""
    if meta.source and meta.original and meta.original_en and meta.date:
        return meta
    found = read_meta(raw)
    update = {name: getattr(found, name) for name in ("source", "original", "date")
              if not getattr(meta, name) and getattr(found, name)}
    # A Latin name belongs with the Arabic one it was read beside, not with another given in the metadata.
    if not meta.original_en and found.original_en and (update.get("original") or meta.original) == found.original:
        update["original_en"] = found.original_en
    return meta.model_copy(update=update) if update else meta


@dataclass(frozen=True)
class Corpus:
    articles: dict[str, Article]

    def __len__(self) -> int:
        return len(self.articles)

    def get(self, article_id: str) -> Article:
        try:
            return self.articles[article_id]
        except KeyError:
            raise CorpusError(f"unknown article id {article_id!r}", status=404) from None

    @cached_property
    def by_content_hash(self) -> dict[str, str]:
        """content hash -> article id (the first id, in id order, when two files hold the same text)."""
        out: dict[str, str] = {}
        for article_id in sorted(self.articles):
            out.setdefault(self.articles[article_id].content_hash, article_id)
        return out

    def with_changes(self, added: dict[str, Article] | None = None, removed: set[str] | frozenset = frozenset()
                     ) -> Corpus:
        """A new corpus: this one without `removed`, plus `added` (ids kept in sorted order, as load_corpus reads)."""
        articles = {k: v for k, v in self.articles.items() if k not in removed}
        articles.update(added or {})
        return Corpus({k: articles[k] for k in sorted(articles)})

    @cached_property
    def fingerprint(self) -> str:
        """Changes whenever any article's text or metadata changes."""
        digest = hashlib.sha256()
        for article_id in sorted(self.articles):
            article = self.articles[article_id]
            digest.update(article_id.encode())
            digest.update(article.sha256.encode())
            digest.update(article.meta.model_dump_json().encode())
        return digest.hexdigest()


def load_corpus(folder: Path) -> Corpus:
    """Read every `*.txt` in `folder` (id = file name without .txt) with metadata from articles.json."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CorpusError(f"corpus folder {folder} does not exist; set RAG_CORPUS_DIR to a folder of .txt articles")
    metadata = _read_metadata(folder / METADATA_FILE)
    articles: dict[str, Article] = {}
    for path in sorted(folder.glob("*.txt")):
        try:
            raw = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError) as exc:
            log.warning("skipping %s: not readable as UTF-8 text (%s)", path.name, exc)
            continue
        article = make_article(path.stem, raw, metadata.get(path.stem))
        if not article.blocks:
            log.warning("skipping %s: no body text after cleaning", path.name)
            continue
        articles[article.id] = article
    if not articles:
        raise CorpusError(f"corpus folder {folder} holds no readable .txt articles")
    return Corpus(articles)


def _read_metadata(path: Path) -> dict[str, ArticleMeta]:
    try:
        data = read_metadata_json(path)
        return {article_id: ArticleMeta.model_validate(value) for article_id, value in data.items()}
    except (ValidationError, AttributeError) as exc:
        raise CorpusError(f"{path} is not valid article metadata: {exc}") from exc


def read_metadata_json(path: Path) -> dict:
    """articles.json as plain JSON (id -> metadata object); {} when the file does not exist."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorpusError(f"{path} is not valid article metadata: {exc}") from exc
    if not isinstance(data, dict):
        raise CorpusError(f"{path} is not valid article metadata: expected an object of article id -> metadata")
    return data


def metadata_entry(meta: ArticleMeta) -> dict:
    """How an article's metadata is written to articles.json: every field, so reading it back gives the same
    ArticleMeta (and the same corpus fingerprint)."""
    return meta.model_dump(mode="json")
