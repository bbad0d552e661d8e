"""HTML pages (``.html``, ``.htm``, ``.xhtml``): the article's main text, not the page.

A saved news page is mostly navigation, teasers, comments and scripts; retrieving those as
answers is what the ingestion exists to prevent. trafilatura (Apache-2.0) extracts the main
text, and leads the public article-extraction benchmarks (EVALUATION.md measures it here, on
the Scrapinghub set, against its own plain output); its metadata comes from the page itself
(``<title>``/``og:title``, ``author`` metas and JSON-LD, the date by htmldate from
``article:published_time``, JSON-LD, ``<time>`` and the like, the canonical URL). It never
fetches anything: it is given the bytes.

Its XML tree keeps the structure, so headings stay headings (the context of the paragraphs
they introduce), and list items and table rows become blocks of their own. :func:`tree_pieces`
is also how an EPUB chapter (plain XHTML, no page furniture) becomes blocks.
"""

from __future__ import annotations

from pathlib import Path

from . import Extracted, Piece, Skipped

MAX_BYTES = 20_000_000  # trafilatura's own limit: a larger "page" is a dump, not an article
MAX_DEPTH = 256  # libxml2's default depth limit: deeper markup is cut off by the parser


def read(data: bytes, path: Path) -> Extracted:
    if len(data) > MAX_BYTES:
        raise Skipped(f"HTML page of {len(data) / 1e6:.0f} MB, over the {MAX_BYTES // 1_000_000} MB cap")
    import trafilatura

    document = trafilatura.bare_extraction(data, with_metadata=True, include_tables=True, include_comments=False,
                                           include_formatting=False, deduplicate=False)
    if document is None or document.body is None:
        raise Skipped(_why_empty(data))
    pieces = list(_body_pieces(document.body))
    if not pieces:
        raise Skipped(_why_empty(data))
    return Extracted(pieces, title=_clean(document.title), author=_clean(document.author),
                     date=_clean(document.date), url=_clean(document.url))


def _why_empty(data: bytes) -> str:
    """Why no main text was found: markup nested past the parser's limit, or no article in it."""
    from lxml import etree, html

    parser = html.HTMLParser()
    try:
        html.document_fromstring(data, parser=parser)
    except (etree.ParserError, ValueError):
        return "no text in this HTML page"
    if any("Excessive depth" in str(error.message) for error in parser.error_log):
        return f"HTML nested deeper than {MAX_DEPTH} elements (the parser's limit); not read"
    return "no article text found in this HTML page"


_BLOCKS = {"p", "head", "quote", "code", "item", "row"}


def _body_pieces(body):
    """Blocks of trafilatura's XML body in document order: paragraphs, headings, list items,
    table rows (cells joined by " | "), quotations."""
    for element in body:
        tag = element.tag
        if tag == "head":
            text = _text(element)
            if text:
                yield Piece(text, heading=True)
        elif tag in ("list", "table") or (tag == "quote" and any(c.tag in _BLOCKS for c in element)):
            yield from _body_pieces(element)
        elif tag == "row":
            cells = [t for cell in element if (t := _text(cell))]
            if cells:
                yield Piece(" | ".join(cells), row=True)
        elif tag in _BLOCKS:
            text = _text(element)
            if text:
                yield Piece(text)


def _text(element) -> str:
    return " ".join("".join(element.itertext()).split())


def _clean(value: str | None) -> str | None:
    value = " ".join(value.split()) if value else None
    return value or None


# --------------------------------------------------------------------------- plain XHTML (EPUB)

_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6"}
_TEXT_BLOCKS = {"p", "li", "blockquote", "pre", "dt", "dd", "figcaption", "caption", "address"}
_SKIP = {"script", "style", "nav", "head", "template", "noscript", "svg", "math", "title"}
# An e-book's generated front matter: the title page repeats the metadata, the contents list the headings.
_SKIP_TYPES = {"titlepage", "toc", "landmarks", "page-list"}
EPUB_TYPE = "{http://www.idpf.org/2007/ops}type"


def tree_pieces(root) -> list[Piece]:
    """The blocks of a plain (X)HTML document, all of it: headings, paragraphs, list items,
    table rows. For an e-book chapter, which has no page furniture to remove."""
    pieces: list[Piece] = []
    _walk(root, pieces, 0)
    return pieces


def _walk(element, pieces: list[Piece], depth: int) -> None:
    if depth > MAX_DEPTH:
        return
    for child in element:
        tag = _local(child.tag)
        if tag in _SKIP or not isinstance(child.tag, str):
            continue
        if _SKIP_TYPES & set((child.get(EPUB_TYPE) or child.get("epub:type") or "").split()):
            continue
        if tag in _HEADINGS:
            if text := _text(child):
                pieces.append(Piece(text, heading=True))
        elif tag == "tr":
            cells = [t for cell in child if (t := _text(cell))]
            if cells:
                pieces.append(Piece(" | ".join(cells), row=True))
        elif tag in _TEXT_BLOCKS and not any(_local(c.tag) in _TEXT_BLOCKS | _HEADINGS | {"table", "ul", "ol", "div"}
                                             for c in child if isinstance(c.tag, str)):
            if text := _text(child):
                pieces.append(Piece(text))
        else:
            before = len(pieces)
            _walk(child, pieces, depth + 1)
            loose = " ".join((child.text or "").split())
            if loose and len(pieces) == before and tag in ("div", "section", "body", "td"):
                pieces.append(Piece(_text(child)))


def _local(tag) -> str:
    """An element's name without its XML namespace."""
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""
