"""Word files (``.docx``) with python-docx (MIT): paragraphs, headings, tables, in order.

A paragraph styled as a heading (``Heading 1``…, ``Title``) is a heading: the context of the
paragraphs it introduces and the section a citation names. A table becomes one block per row,
its cells joined by " | " (a merged cell, which python-docx repeats, counted once). Title,
author and creation date come from the document's core properties. The archive's expanded size
is capped before python-docx reads it (:mod:`.archive`).
"""

from __future__ import annotations

import io
from pathlib import Path

from . import Extracted, Piece, Skipped
from .archive import open_archive


def read(data: bytes, path: Path) -> Extracted:
    open_archive(data, "DOCX").close()
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, KeyError, ValueError) as exc:
        raise Skipped(f"damaged DOCX ({exc or type(exc).__name__})") from None
    except Exception as exc:  # noqa: BLE001 - lxml/zip errors of a damaged part: the file is skipped, not the build
        raise Skipped(f"damaged DOCX ({type(exc).__name__}: {exc})") from None
    pieces = list(_pieces(document))
    props = document.core_properties
    created = props.created.date().isoformat() if props.created else None
    return Extracted(pieces, title=(props.title or "").strip() or None, author=(props.author or "").strip() or None,
                     date=created)


def _pieces(document):
    from docx.table import Table

    for block in document.iter_inner_content():
        if isinstance(block, Table):
            yield from _table_rows(block)
            continue
        text = " ".join(block.text.split())
        if text:
            yield Piece(text, heading=_is_heading(block))


def _is_heading(paragraph) -> bool:
    name = (paragraph.style.name if paragraph.style is not None else "") or ""
    return name.startswith(("Heading", "Title", "Subtitle")) or name.lower().startswith(("heading", "titre"))


def _table_rows(table):
    for row in table.rows:
        cells: list[str] = []
        seen: set[int] = set()
        for cell in row.cells:
            if id(cell._tc) in seen:
                continue  # a merged cell appears once per grid column it spans
            seen.add(id(cell._tc))
            if text := " ".join(cell.text.split()):
                cells.append(text)
        if cells:
            yield Piece(" | ".join(cells))
