"""E-books (``.epub``): the chapters in reading order, each through the plain-XHTML path.

Read with zipfile and lxml (ebooklib is AGPL): ``META-INF/container.xml`` names the package
document, whose spine orders the chapters and whose Dublin Core metadata gives the title,
author and date. A chapter is an XHTML page without page furniture, so it is read whole
(:func:`.html.tree_pieces`), headings included. The archive is capped before anything is read
(:mod:`.archive`); a chapter that is missing or damaged is left out and said so.
"""

from __future__ import annotations

import posixpath
from pathlib import Path

from . import Extracted, Skipped
from .archive import open_archive, parse_xml, read_member

CONTAINER = "META-INF/container.xml"
NS = {"c": "urn:oasis:names:tc:opendocument:xmlns:container", "opf": "http://www.idpf.org/2007/opf",
      "dc": "http://purl.org/dc/elements/1.1/"}
CHAPTER_TYPES = {"application/xhtml+xml", "text/html", "application/x-dtbook+xml"}


def read(data: bytes, path: Path) -> Extracted:
    from lxml import etree, html

    from .html import tree_pieces

    archive = open_archive(data, "EPUB")
    with archive:
        container = parse_xml(read_member(archive, CONTAINER, "EPUB"), CONTAINER, "EPUB")
        rootfile = container.find(".//c:rootfile", NS)
        if rootfile is None or not rootfile.get("full-path"):
            raise Skipped("damaged EPUB (its container names no package document)")
        opf_name = rootfile.get("full-path")
        opf = parse_xml(read_member(archive, opf_name, "EPUB"), opf_name, "EPUB")
        base = posixpath.dirname(opf_name)
        items = {item.get("id"): item for item in opf.iterfind(".//opf:manifest/opf:item", NS)}
        extracted = Extracted(title=_dc(opf, "title"), author=_dc(opf, "creator"), date=_date(_dc(opf, "date")))
        for ref in opf.iterfind(".//opf:spine/opf:itemref", NS):
            item = items.get(ref.get("idref"))
            if item is None or item.get("media-type") not in CHAPTER_TYPES:
                continue
            name = posixpath.normpath(posixpath.join(base, item.get("href", "")))
            try:
                chapter = read_member(archive, name, "EPUB")
                root = html.document_fromstring(chapter, parser=html.HTMLParser(encoding="utf-8"))
            except (Skipped, etree.ParserError, ValueError) as exc:
                extracted.notes.append(f"chapter {name} left out ({exc})")
                continue
            body = root.find("body")
            extracted.pieces.extend(tree_pieces(body if body is not None else root))
    if not extracted.pieces:
        raise Skipped("no text in this EPUB's chapters")
    return extracted


def _dc(opf, name: str) -> str | None:
    element = opf.find(f".//opf:metadata/dc:{name}", NS)
    text = " ".join((element.text or "").split()) if element is not None else ""
    return text or None


def _date(value: str | None) -> str | None:
    return value[:10] if value and value[:4].isdigit() else None
