"""Chunking: split an article's body blocks into overlapping chunks whose spans index the raw text."""

from __future__ import annotations

from dataclasses import dataclass

from langchain_text_splitters import RecursiveCharacterTextSplitter

from app.corpus import Article

# Paragraphs first, then sentence ends (Latin and Arabic), then clauses (Arabic comma), then words.
SEPARATORS = ["\n\n", "\n", ". ", "؟ ", "? ", "! ", "؛ ", "، ", ", ", " ", ""]


@dataclass(frozen=True)
class Chunk:
    chunk_id: str
    article_id: str
    start: int  # raw[start:end] == text
    end: int
    text: str


class Chunker:
    """Sentence-window chunking.

    langchain's splitter cuts each body block into units of at most `chunk_overlap` characters, breaking at
    paragraphs, then sentence ends, then clauses. Units are then packed into chunks of at most `chunk_size`
    characters, and each chunk starts with the previous chunk's last unit. (The splitter's own overlap only
    carries whole splits shorter than the overlap; Arabic news sentences are long, so adjacent chunks would
    share nothing and a passage across a boundary would belong to no chunk.)
    """

    def __init__(self, chunk_size: int, chunk_overlap: int):
        if not 0 < chunk_overlap <= chunk_size // 2:
            raise ValueError("chunk_overlap must be between 1 and chunk_size / 2")
        self.chunk_size = chunk_size
        self._units = RecursiveCharacterTextSplitter(
            separators=SEPARATORS,
            keep_separator="end",
            chunk_size=chunk_overlap,
            chunk_overlap=0,
            strip_whitespace=True,
        )

    def _unit_spans(self, raw: str, block_start: int, block_end: int) -> list[tuple[int, int]]:
        block = raw[block_start:block_end]
        spans, cursor = [], 0
        for piece in self._units.split_text(block):
            found = block.find(piece, cursor)
            spans.append((block_start + found, block_start + found + len(piece)))
            cursor = found + len(piece)
        return spans

    def split(self, article: Article) -> list[Chunk]:
        chunks: list[Chunk] = []
        for block_start, block_end in article.blocks:
            units = self._unit_spans(article.raw, block_start, block_end)
            first = 0
            while first < len(units):
                last = first
                while last + 1 < len(units) and units[last + 1][1] - units[first][0] <= self.chunk_size:
                    last += 1
                start, end = units[first][0], units[last][1]
                chunks.append(Chunk(f"{article.id}#{len(chunks)}", article.id, start, end, article.raw[start:end]))
                if last == len(units) - 1:
                    break
                first = last if last > first else last + 1
        return chunks
