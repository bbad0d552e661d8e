"""Text as every part of qa can take it.

Undecodable bytes reach Python as lone surrogates (argv, a terminal, surrogateescape streams);
the tokenizers and UTF-8 writers refuse them. :func:`valid_text` is the one place that turns
them into U+FFFD, used at the input edges (stdin, the REPL, questions) and by the engines.
"""

from __future__ import annotations


def valid_text(text: str) -> str:
    """`text` with lone surrogates replaced by U+FFFD: what a tokenizer or UTF-8 writer accepts.

    Undecodable bytes reach Python as surrogates (argv, a terminal, surrogateescape streams);
    each such byte becomes one replacement character, as decoding with ``errors="replace"`` does.
    """
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a surrogate that does not stand for a byte
        return text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
