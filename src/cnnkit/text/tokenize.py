"""Tokenisers: text -> list of tokens.

- characters: each Unicode code point (after optional lowercasing) is a token;
- words: maximal runs of word characters (``\\w+``: letters, digits, underscore, any script),
  and, with ``punctuation``, each other non-space character as a token of its own.
"""

from __future__ import annotations

import re

__all__ = ["char_tokens", "word_tokens"]

_WORD = re.compile(r"\w+")
_WORD_OR_MARK = re.compile(r"\w+|[^\w\s]")


def _text(text: str, op: str) -> str:
    if not isinstance(text, str):
        raise TypeError(f"{op} expects a str, got {type(text).__name__}")
    return text


def char_tokens(text: str, lower: bool = True) -> list[str]:
    """The characters of ``text`` (lowercased first with ``lower``)."""
    text = _text(text, "char_tokens")
    return list(text.lower() if lower else text)


def word_tokens(text: str, lower: bool = True, punctuation: bool = False) -> list[str]:
    """Runs of word characters; with ``punctuation`` also each punctuation mark."""
    text = _text(text, "word_tokens")
    text = text.lower() if lower else text
    return (_WORD_OR_MARK if punctuation else _WORD).findall(text)
