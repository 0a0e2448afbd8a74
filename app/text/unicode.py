"""Strings that are not text: lone surrogates, which JSON and Python strings carry but no encoder can write."""

from __future__ import annotations

NOT_TEXT = "not valid Unicode text (it holds lone surrogate code points)"


def has_lone_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
