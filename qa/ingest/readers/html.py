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

    # the original publication date (not a later "updated" one): what --from/--to mean
    document = trafilatura.bare_extraction(data, with_metadata=True, include_tables=True, include_comments=False,
                                           include_formatting=False, deduplicate=False,
                                           date_extraction_params={"original_date": True, "extensive_search": True})
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


def _body_pieces(body):
    """Blocks of trafilatura's body in document order. Its XML (``head``, ``p``, ``list/item``,
    ``table/row``, ``quote``), or, when it fell back to a baseline extractor, plain HTML: the
    same walker reads both."""
    return tree_pieces(body)


def _text(element) -> str:
    """An element's text, whitespace collapsed, soft hyphens (U+00AD, invisible) removed."""
    return " ".join("".join(element.itertext()).replace("\u00ad", "").split())


def _clean(value: str | None) -> str | None:
    value = " ".join(value.split()) if value else None
    return value or None


# --------------------------------------------------------------------------- plain XHTML (EPUB)

# Both vocabularies: HTML, and trafilatura's XML (head = a heading, item, row, quote).
_HEADINGS = {"h1", "h2", "h3", "h4", "h5", "h6", "head"}
_TEXT_BLOCKS = {"p", "li", "item", "blockquote", "quote", "pre", "code", "dt", "dd", "figcaption", "caption",
                "address"}
_ROWS = {"tr", "row"}
_NESTED = _TEXT_BLOCKS | _HEADINGS | _ROWS | {"table", "ul", "ol", "list", "div", "section"}
_LOOSE_TEXT = {"div", "section", "article", "main", "body", "td", "th", "cell"}
_SKIP = {"script", "style", "nav", "template", "noscript", "svg", "math", "title", "graphic", "img", "button",
         "form", "select", "iframe"}
# An e-book's generated front matter: the title page repeats the metadata, the contents list the headings.
_SKIP_TYPES = {"titlepage", "toc", "landmarks", "page-list"}
EPUB_TYPE = "{http://www.idpf.org/2007/ops}type"


def tree_pieces(root) -> list[Piece]:
    """The blocks of a document tree, all of it: headings, paragraphs, list items, table rows
    (cells joined by " | "), text standing loose in a division. For an e-book chapter, which
    has no page furniture to remove, and for trafilatura's extraction."""
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
        elif tag in _ROWS:
            cells = [t for cell in child if (t := _text(cell))]
            if cells:
                pieces.append(Piece(" | ".join(cells), row=True))
        elif tag in _TEXT_BLOCKS and not any(_local(c.tag) in _NESTED for c in child if isinstance(c.tag, str)):
            if text := _text(child):
                pieces.append(Piece(text))
        elif tag in _LOOSE_TEXT and not any(_local(d.tag) in _NESTED for d in child.iterdescendants()):
            if text := _text(child):
                pieces.append(Piece(text))  # a division holding only text: one block
        else:
            loose = " ".join((child.text or "").split())
            if loose and tag in _LOOSE_TEXT:
                pieces.append(Piece(loose))  # text before the division's first block
            _walk(child, pieces, depth + 1)


def _local(tag) -> str:
    """An element's name without its XML namespace."""
    return tag.rsplit("}", 1)[-1].lower() if isinstance(tag, str) else ""
