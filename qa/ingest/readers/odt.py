"""OpenDocument text (``.odt``): headings, paragraphs, list items and table rows of
``content.xml``, in order, and title/author/date from ``meta.xml``; lxml on the zip members
(no odfpy needed). The archive is capped before anything is read (:mod:`.archive`).
"""

from __future__ import annotations

from pathlib import Path

from . import Extracted, Piece, Skipped
from .archive import open_archive, parse_xml, read_member

TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
TABLE = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
META = "urn:oasis:names:tc:opendocument:xmlns:meta:1.0"
DC = "http://purl.org/dc/elements/1.1/"
MAX_DEPTH = 256
TITLE_STYLES = {"Title", "Subtitle"}


def read(data: bytes, path: Path) -> Extracted:
    with open_archive(data, "ODT") as archive:
        content = parse_xml(read_member(archive, "content.xml", "ODT"), "content.xml", "ODT")
        names = set(archive.namelist())
        meta = parse_xml(read_member(archive, "meta.xml", "ODT"), "meta.xml", "ODT") if "meta.xml" in names else None
    body = content.find(f"{{{OFFICE}}}body/{{{OFFICE}}}text")
    if body is None:
        raise Skipped("damaged ODT (no text body in content.xml)")
    pieces: list[Piece] = []
    _walk(body, pieces, 0)
    return Extracted(pieces, title=_meta(meta, f"{{{DC}}}title"),
                     author=_meta(meta, f"{{{META}}}initial-creator") or _meta(meta, f"{{{DC}}}creator"),
                     date=(_meta(meta, f"{{{META}}}creation-date") or "")[:10] or None)


def _walk(element, pieces: list[Piece], depth: int) -> None:
    if depth > MAX_DEPTH:
        return
    for child in element:
        if child.tag in (f"{{{TEXT}}}h", f"{{{TEXT}}}p"):
            if text := _text(child):
                style = child.get(f"{{{TEXT}}}style-name", "")
                pieces.append(Piece(text, heading=child.tag == f"{{{TEXT}}}h" or style in TITLE_STYLES))
        elif child.tag == f"{{{TABLE}}}table-row":
            cells = [t for cell in child if (t := _text(cell))]
            if cells:
                pieces.append(Piece(" | ".join(cells), row=True))
        elif child.tag not in (f"{{{TEXT}}}tracked-changes", f"{{{OFFICE}}}annotation"):
            _walk(child, pieces, depth + 1)


_SPACES = {f"{{{TEXT}}}s", f"{{{TEXT}}}tab", f"{{{TEXT}}}line-break"}
_NOT_TEXT = {f"{{{OFFICE}}}annotation", f"{{{TEXT}}}note", f"{{{TEXT}}}tracked-changes"}


def _text(element) -> str:
    """An element's text, ODF's <text:s/>, <text:tab/> and <text:line-break/> read as spaces,
    footnotes and comments left out."""
    parts: list[str] = []
    _collect(element, parts)
    return " ".join("".join(parts).split())


def _collect(element, parts: list[str]) -> None:
    parts.append(element.text or "")
    for child in element:
        if child.tag in _SPACES:
            parts.append(" ")
        elif child.tag not in _NOT_TEXT:
            _collect(child, parts)
        parts.append(child.tail or "")


def _meta(meta, tag: str) -> str | None:
    if meta is None:
        return None
    element = meta.find(f".//{tag}")
    text = " ".join((element.text or "").split()) if element is not None else ""
    return text or None
