"""PDF files: text per page with PDFium (pypdfium2), paragraphs rebuilt from the layout.

Why PDFium: it is the engine of Chrome's viewer, permissively licensed (pypdfium2: Apache-2.0
or BSD-3, PDFium: BSD-3/Apache-2.0), written in C++, and in this project's measurement
(BENCHMARKS.md, "Documents") 10-23 times as fast as pure-Python pypdf, with cleaner text on the
same files: pypdf leaves ligatures as such ("ﬁlled") and line-end hyphens as plain "-", which
cannot be told from a real hyphen, where PDFium marks the hyphens it recognised as generated.

A PDF has no paragraphs, only positioned text runs. PDFium gives them as rectangles, one per
run on a line, in content-stream order, which is the reading order of the PDFs that word
processors and LaTeX write (column by column on a two-column page; checked on a real two-column
paper by the tests). From those lines:

* a paragraph ends where the vertical gap grows past the usual line spacing, where the next line
  starts indented (a first-line indent), where the text jumps to another column, or where a line
  that ends a sentence stops well short of the column's right edge;
* a line whose spaces include gaps wider than 1.5 line heights is a table row: one block, its
  cells joined by " | " (justified prose never stretches a space that far);
* lines of one paragraph are joined with a space, and an end-of-line hyphenation (PDFium's
  soft-hyphen mark, or ``-`` before a lower-case letter) is undone;
* running headers and footers, lines near the top or bottom edge that repeat (digits aside) on
  several pages, and bare page numbers there are dropped;
* every block keeps the number (1-based) of the page it starts on.

A PDF without a text layer (a scan), an encrypted one and a damaged one are skipped with the
reason; more than :data:`MAX_PAGES` pages are cut there, and said so.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from statistics import median

from . import Extracted, Piece, Skipped

MAX_PAGES = 5_000
MAX_BYTES = 500_000_000
MAX_PAGE_CHARS = 200_000  # a page with more text than this is no page of prose (a data dump)
EDGE = 0.12  # the top and bottom share of the page where running headers and footers live
CELL_GAP = 1.5  # a gap this many line heights wide inside a line separates table cells
MIN_CHARS_PER_PAGE = 10  # below this on average, the PDF has no text layer: a scan
SOFT_HYPHEN = "\x02"
_LINE = re.compile("([^\r\n\ufffe]*\ufffe?)(?:\r\n|\n|\r)?")  # PDFium's mark for a hyphen it recognised as generated at a line end


@dataclass
class Line:
    left: float
    bottom: float
    right: float
    top: float
    text: str
    cells: list[str] | None = None  # a table row: its cells, where wide gaps split the line

    @property
    def height(self) -> float:
        return self.top - self.bottom


def read(data: bytes, path: Path) -> Extracted:
    if len(data) > MAX_BYTES:
        raise Skipped(f"PDF of {len(data) / 1e6:.0f} MB, over the {MAX_BYTES // 1_000_000} MB cap")
    import pypdfium2 as pdfium

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        message = str(exc)
        if "password" in message.lower():
            raise Skipped("encrypted PDF (it needs a password); not read") from None
        raise Skipped(f"damaged PDF ({_reason(message)})") from None
    try:
        return _read_document(pdf)
    finally:
        pdf.close()


def _reason(message: str) -> str:
    match = re.search(r"PDFium: ([^)]*)", message)
    return (match.group(1) if match else message).strip().rstrip(".").lower()


def _read_document(pdf) -> Extracted:
    import pypdfium2 as pdfium

    n_pages = len(pdf)
    notes = []
    if n_pages > MAX_PAGES:
        notes.append(f"{n_pages} pages: only the first {MAX_PAGES} were read")
    pages: list[list[Line]] = []
    heights: list[float] = []
    for number in range(min(n_pages, MAX_PAGES)):
        try:
            page = pdf[number]
            lines = _page_lines(page)
            heights.append(page.get_size()[1])
            page.close()
        except pdfium.PdfiumError as exc:
            notes.append(f"page {number + 1} is damaged ({_reason(str(exc))}); skipped")
            lines, heights = [], heights + [0.0]
        if sum(len(line.text) for line in lines) > MAX_PAGE_CHARS:
            notes.append(f"page {number + 1} holds over {MAX_PAGE_CHARS:,} characters; skipped")
            lines = []
        pages.append(lines)
    chars = sum(len(line.text.strip()) for lines in pages for line in lines)
    if n_pages and chars < MIN_CHARS_PER_PAGE * min(n_pages, MAX_PAGES):
        raise Skipped("no text layer (a scanned PDF?); OCR it first to index it")
    furniture = _running_lines(pages, heights)
    pieces: list[Piece] = []
    for number, (lines, height) in enumerate(zip(pages, heights), start=1):
        drop = _furniture(lines, height, furniture)
        body = [line for line in lines if id(line) not in drop]
        pieces.extend(_page_pieces(body, number))
    pieces = _rejoin(pieces)
    meta = _metadata(pdf)
    return Extracted(pieces, title=meta.get("Title"), author=meta.get("Author"), date=meta.get("date"),
                     notes=notes, pages=n_pages)


def _page_lines(page) -> list[Line]:
    """The page's lines in content order, as PDFium breaks them (its own word spacing, which
    survives kerned runs), each with the box of its first and last visible characters."""
    textpage = page.get_textpage()
    try:
        text = textpage.get_text_range()
        lines: list[Line] = []
        # PDFium ends a line with CRLF, except after a hyphen it generated there (U+FFFE)
        for match in _LINE.finditer(text):
            raw, position = match.group(1), match.start()
            first, last = _visible(raw, 0, 1), _visible(raw, len(raw) - 1, -1)
            if first is not None and last is not None:
                a = textpage.get_charbox(position + first, loose=True)
                b = textpage.get_charbox(position + last, loose=True)
                line = Line(min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]), raw)
                line.cells = _cells(textpage, raw, position, line.height)
                lines.append(line)
        return lines
    finally:
        textpage.close()


def _cells(textpage, raw: str, position: int, height: float) -> list[str] | None:
    """The line's table cells when spaces in it are gaps wider than :data:`CELL_GAP` line
    heights (justified prose stretches a space to a fraction of that), else None."""
    cuts = []
    for i, char in enumerate(raw):
        if char == " " and 0 < i < len(raw) - 1 and not raw[i - 1].isspace() and not raw[i + 1].isspace():
            if textpage.get_charbox(position + i + 1)[0] - textpage.get_charbox(position + i - 1)[2] > CELL_GAP * height:
                cuts.append(i)
    if not cuts:
        return None
    bounds = [0, *cuts, len(raw)]
    return [cell for a, b in zip(bounds, bounds[1:]) if (cell := raw[a:b].strip())]


def _visible(text: str, start: int, step: int) -> int | None:
    """Index of the first non-space character from `start` walking by `step`, or None."""
    i = start
    while 0 <= i < len(text):
        if not text[i].isspace():
            return i
        i += step
    return None


# --------------------------------------------------------------------------- headers and footers

_PAGE_NUMBER = re.compile(r"(?i)^[\s\-–—|·•]*((page|p\.|seite)\s*)?(\d{1,4}|[ivxlcdm]{1,7})(\s*(/|of|sur|von|de)\s*\d{1,4})?[\s\-–—|·•]*$")


def _edge_lines(lines: list[Line], height: float) -> list[Line]:
    """Lines where running headers, footers and page numbers are: near the top or bottom edge,
    and the page's highest and lowest line wherever they are (LaTeX's margins are wide)."""
    if not lines:
        return []
    extremes = {id(max(lines, key=lambda l: l.top)), id(min(lines, key=lambda l: l.bottom))}
    return [l for l in lines if id(l) in extremes or not EDGE * height < l.bottom < (1 - EDGE) * height]


def _key(line: Line) -> str:
    """A line compared across pages: digits ignored (the page number in "Report · page 3")."""
    return re.sub(r"\d+", "#", " ".join(line.text.split()).casefold())


def _running_lines(pages: list[list[Line]], heights: list[float]) -> set[str]:
    """Keys of edge lines that recur on at least 3 pages: furniture. Three, not a share of the
    pages: a book's running header changes with each chapter or section ("18 1.6. WEGE UND
    KNOTEN"), and the same words (digits aside) at a page's edge three times are no prose."""
    counts: Counter[str] = Counter()
    for lines, height in zip(pages, heights):
        counts.update({_key(line) for line in _edge_lines(lines, height)})
    return {key for key, n in counts.items() if n >= 3}


def _furniture(lines: list[Line], height: float, running: set[str]) -> set[int]:
    """Ids of the page's running headers/footers and its page number."""
    return {id(l) for l in _edge_lines(lines, height) if _key(l) in running or _PAGE_NUMBER.match(l.text)}


# --------------------------------------------------------------------------- paragraphs

_SENTENCE_END = re.compile(r"[.!?:…»”\"')\]]\s*$")


def _page_pieces(lines: list[Line], number: int) -> list[Piece]:
    """The page's blocks: table rows (a line split into cells) one each, paragraphs between."""
    pieces: list[Piece] = []
    run: list[Line] = []
    for line in [*lines, None]:
        if line is not None and not line.cells:
            run.append(line)
            continue
        pieces.extend(Piece(text, page=number) for text in _paragraphs(run))
        run = []
        if line is not None:
            pieces.append(Piece(" | ".join(" ".join(cell.replace("\ufffe", "").split()) for cell in line.cells),
                                page=number, row=True))
    return pieces


def _paragraphs(lines: list[Line]) -> list[str]:
    """The page's lines grouped into paragraphs (see the module docstring for the rules)."""
    if not lines:
        return []
    spacing = median([a.bottom - b.bottom for a, b in zip(lines, lines[1:]) if 0 < a.bottom - b.bottom < 3 * a.height]
                     or [lines[0].height * 1.2])
    height = median(line.height for line in lines)
    paragraphs: list[list[Line]] = [[lines[0]]]
    for previous, line in zip(lines, lines[1:]):
        if _breaks(paragraphs[-1], previous, line, spacing, height):
            paragraphs.append([line])
        else:
            paragraphs[-1].append(line)
    return [text for group in paragraphs if (text := _join(group))]


def _breaks(group: list[Line], previous: Line, line: Line, spacing: float, height: float) -> bool:
    gap = previous.bottom - line.bottom
    if gap <= 0 or gap > 1.3 * spacing:
        return True  # a new column (the text goes up), or a blank line's worth of space
    if line.left > previous.right or line.right < previous.left:
        return True  # side by side: another column or a table cell
    left = min(l.left for l in group)
    right = max(l.right for l in group)
    if line.left - left > 1.5 * height and len(group) > 0 and abs(previous.left - left) < 0.5 * height:
        return True  # the next line is indented: a first-line indent starts a paragraph
    if max(line.height, previous.height) > 1.2 * height and abs(line.height - previous.height) > 0.15 * height:
        return True  # a change of type size: a heading meets body text
    short = right - previous.right > 0.15 * (right - left) if len(group) > 1 else False
    return short and bool(_SENTENCE_END.search(previous.text))


def _rejoin(pieces: list[Piece]) -> list[Piece]:
    """A paragraph cut by a column or page break is one paragraph again: the part before the
    break ends without a sentence end, the part after starts in lower case (or completes a word
    hyphenated across the break). It keeps the page it starts on."""
    out: list[Piece] = []
    for piece in pieces:
        last = out[-1] if out else None
        if last and not (last.row or piece.row) and piece.text[:1].islower() and not _SENTENCE_END.search(last.text):
            if last.text.endswith(SOFT_HYPHEN) or (last.text.endswith("-") and last.text[-2:-1].isalpha()):
                last.text = last.text[:-1] + piece.text
            else:
                last.text = f"{last.text} {piece.text}"
            continue
        out.append(piece)
    return out


def _join(lines: list[Line]) -> str:
    """Lines of a paragraph as one string, end-of-line hyphenation undone."""
    out = ""
    for line in lines:
        text = " ".join(line.text.replace("\ufffe", SOFT_HYPHEN).split())
        if not out:
            out = text
        elif out.endswith(SOFT_HYPHEN):
            out = out[:-1] + text
        elif out.endswith("-") and len(out) > 1 and out[-2].isalpha() and text[:1].islower():
            out = out[:-1] + text
        else:
            out = f"{out} {text}"
    trailing = SOFT_HYPHEN if out.endswith(SOFT_HYPHEN) else ""
    return " ".join(out.replace(SOFT_HYPHEN, "").split()) + trailing


# --------------------------------------------------------------------------- metadata


_FILE_NAME_TITLE = re.compile(r"(?i)^(microsoft \w+ - |untitled\b)|\.(docx?|odt|rtf|tex|pdf|pptx?|xlsx?|indd|qxp)$")


def _metadata(pdf) -> dict[str, str]:
    """Title, author and creation date from the document information dictionary."""
    try:
        info = pdf.get_metadata_dict(skip_empty=True)
    except Exception:  # noqa: BLE001 - metadata is optional; a broken dictionary is no reason to skip the text
        return {}
    out = {k: " ".join(str(v).split()) for k, v in info.items() if k in ("Title", "Author") and str(v).strip()}
    if _FILE_NAME_TITLE.search(out.get("Title", "")):
        del out["Title"]  # "Microsoft Word - report.docx": the producer's file name, not a title
    match = re.match(r"D:(\d{4})(\d{2})?(\d{2})?", info.get("CreationDate", ""))
    if match:
        out["date"] = "-".join(part for part in match.groups() if part)
    return out
