"""Readers: one module per document format, behind one small interface.

A reader turns a file's bytes into :class:`Extracted`: the document's text as blocks in reading
order (each a paragraph, heading or table row, with the page it is printed on where the format
has pages) and the document's own metadata (title, author, date, canonical URL). Everything
after that (boilerplate, headings as context, passages that fit the model, near-duplicates) is
the same for every format, so a web page and its ``.txt`` copy become the same passages.

The ``.txt``/``.md`` reader is :mod:`qa.ingest.blocks` itself (its blocks keep their offsets in
the file); the others are imported only when a file of their format is read, so a question
never imports trafilatura, PDFium or python-docx. A file a reader cannot or will not read
raises :class:`Skipped` with the one-line reason (scanned, encrypted, damaged, too large); what
a reader leaves out of a file it does read (pages over the cap, a chapter too large) goes to
``Extracted.notes``, which become warnings.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from pathlib import Path

# Bumped when any reader's output changes, so cached extractions are not reused across versions.
READERS_VERSION = 5

TEXT_EXTENSIONS = (".txt", ".md")
# extension -> reader module (under qa.ingest.readers)
FORMATS = {".html": "html", ".htm": "html", ".xhtml": "html", ".pdf": "pdf", ".docx": "docx",
           ".epub": "epub", ".odt": "odt"}
EXTENSIONS = TEXT_EXTENSIONS + tuple(FORMATS)


class Skipped(Exception):
    """A file that is not indexed; the message is the reason, one line (without the file name)."""


@dataclass
class Piece:
    """One block of a document: a paragraph (or list item), a table row, or a heading."""

    text: str
    heading: bool = False
    page: int | None = None
    row: bool = False  # a table row: content, however short (never taken for a heading)


@dataclass
class Extracted:
    """What a reader found: the blocks, the document's metadata, and what it left out."""

    pieces: list[Piece] = field(default_factory=list)
    title: str | None = None
    author: str | None = None
    date: str | None = None
    url: str | None = None
    notes: list[str] = field(default_factory=list)
    pages: int | None = None

    def to_json(self) -> dict:
        return {"pieces": [[p.text, p.heading, p.page, p.row] for p in self.pieces], "title": self.title,
                "author": self.author, "date": self.date, "url": self.url, "notes": self.notes,
                "pages": self.pages}

    @classmethod
    def from_json(cls, data: dict) -> Extracted:
        pieces = [Piece(*piece) for piece in data["pieces"]]
        return cls(pieces, data["title"], data["author"], data["date"], data["url"], data["notes"], data["pages"])


PIECE_SEPARATOR = "\n\n"


def layout(pieces: list[Piece]) -> tuple[str, list[tuple[int, int]]]:
    """The document's text as ingestion indexes it (its blocks, one line each, separated by a
    blank line) and each block's span in it: passage offsets point into this text."""
    spans, position = [], 0
    for piece in pieces:
        spans.append((position, position + len(piece.text)))
        position += len(piece.text) + len(PIECE_SEPARATOR)
    return PIECE_SEPARATOR.join(piece.text for piece in pieces), spans


def is_structured(path: Path) -> bool:
    """Whether the file is read by a format reader (not as plain text)."""
    return path.suffix.lower() in FORMATS


def extract(path: Path, data: bytes) -> Extracted:
    """Run the reader for `path`'s format on its bytes; raises :class:`Skipped`."""
    module = importlib.import_module(f"{__name__}.{FORMATS[path.suffix.lower()]}")
    return module.read(data, path)
