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
    def __init__(self, chunk_size: int, chunk_overlap: int):
        if chunk_overlap >= chunk_size:
            raise ValueError("chunk_overlap must be smaller than chunk_size")
        self._splitter = RecursiveCharacterTextSplitter(
            separators=SEPARATORS,
            keep_separator="end",
            chunk_size=chunk_size,
            chunk_overlap=chunk_overlap,
            strip_whitespace=True,
        )

    def split(self, article: Article) -> list[Chunk]:
        chunks: list[Chunk] = []
        for block_start, block_end in article.blocks:
            block = article.raw[block_start:block_end]
            cursor = 0
            for piece in self._splitter.split_text(block):
                # Pieces come in order and overlap, so each starts after the previous piece's start.
                found = block.find(piece, cursor)
                if found < 0:
                    found = block.find(piece)
                start = block_start + found
                chunks.append(
                    Chunk(
                        chunk_id=f"{article.id}#{len(chunks)}",
                        article_id=article.id,
                        start=start,
                        end=start + len(piece),
                        text=piece,
                    )
                )
                cursor = found + 1
        return chunks
