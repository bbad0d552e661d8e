"""Word files (``.docx``) with python-docx (MIT): paragraphs, headings, tables, in order.

A paragraph styled as a heading (``Heading 1``…, ``Title``) is a heading: the context of the
paragraphs it introduces and the section a citation names. A table becomes one block per row,
its cells joined by " | " (a merged cell, which python-docx repeats, counted once). Title,
author and creation date come from ``docProps/core.xml``, read directly: python-docx looks it up
by a relationship type that LibreOffice spells differently, and then reports its own defaults
("Word Document"). The archive's expanded size is capped before python-docx reads it
(:mod:`.archive`).
"""

from __future__ import annotations

import io
from pathlib import Path

from . import Extracted, Piece, Skipped
from .archive import open_archive, parse_xml, read_member

CORE = "docProps/core.xml"
DC = "{http://purl.org/dc/elements/1.1/}"
DCTERMS = "{http://purl.org/dc/terms/}"


def read(data: bytes, path: Path) -> Extracted:
    with open_archive(data, "DOCX") as archive:
        core = parse_xml(read_member(archive, CORE, "DOCX"), CORE, "DOCX") if CORE in archive.namelist() else None
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, KeyError, ValueError) as exc:
        raise Skipped(f"damaged DOCX ({exc or type(exc).__name__})") from None
    except Exception as exc:  # noqa: BLE001 - lxml/zip errors of a damaged part: the file is skipped, not the build
        raise Skipped(f"damaged DOCX ({type(exc).__name__}: {exc})") from None
    pieces = list(_pieces(document))
    created = _core(core, f"{DCTERMS}created")
    return Extracted(pieces, title=_core(core, f"{DC}title"), author=_core(core, f"{DC}creator"),
                     date=created[:10] if created else None)


def _core(core, tag: str) -> str | None:
    element = core.find(tag) if core is not None else None
    text = " ".join((element.text or "").split()) if element is not None else ""
    return text or None


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
            yield Piece(" | ".join(cells), row=True)
