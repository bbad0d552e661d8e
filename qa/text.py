"""Text as every part of qa can take it: valid, printable, and folded for comparison.

Undecodable bytes reach Python as lone surrogates (argv, a terminal, surrogateescape streams);
the tokenizers and UTF-8 writers refuse them. :func:`valid_text` is the one place that turns
them into U+FFFD, used at the input edges (stdin, the REPL, questions) and by the engines;
:func:`path_text` does the same for file names, keeping their bytes (:func:`path_bytes`).

:func:`fold` is the one idea of "the same word" in qa: ingestion compares and recognises text
with it (boilerplate, near-duplicates, passage ids) and BM25 indexes its words.
"""

from __future__ import annotations

import os
import re
import unicodedata

_WORD = re.compile(r"\w+", re.UNICODE)
_PUNCT = re.compile(r"[\W_]+")
_ASCII_PUNCT = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "–": "-", "—": "-", "‑": "-", "\u00a0": " ",
                              "\u202f": " "})


def fold(text: str) -> str:
    """Casefolded, accents (every combining mark) removed, typographic apostrophes, dashes and
    spaces made ASCII: 'Élysée' and 'elysee' are the same word, to ingestion and to BM25."""
    text = text.casefold()
    if text.isascii():
        return text
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).translate(_ASCII_PUNCT)


def words(text: str) -> list[str]:
    """The folded words of `text` (runs of word characters): BM25's terms before stemming."""
    return _WORD.findall(fold(text))


def normalise(text: str) -> str:
    """Comparison form: folded, punctuation removed, whitespace collapsed."""
    return " ".join(_PUNCT.sub(" ", fold(text)).split())


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


def path_text(path: str | os.PathLike) -> str:
    """A path as printable, storable text: bytes of the name that are not UTF-8 shown as ``\\xff``.

    Python hands such names over with lone surrogates, which no UTF-8 writer (JSON, the terminal)
    accepts; this is how they are shown and become document ids.
    """
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def path_bytes(path: str | os.PathLike) -> str | None:
    """The exact bytes of a path (hex) when its name is not UTF-8, else None (the text is exact)."""
    raw = os.fsencode(path)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.hex()
    return None


def real_path(text: str, raw: str | None) -> str:
    """The inverse of :func:`path_text` + :func:`path_bytes`: a path that opens the file."""
    return os.fsdecode(bytes.fromhex(raw)) if raw else text

