"""A document as blocks: the ``.txt``/``.md`` reader, and the assembly of every other reader's.

A text file's blocks are its blank-line separated paragraphs and Markdown headings. Markdown front matter (``---`` ... ``---``) gives a title and a date; ATX (``#``) and setext
headings become blocks of their own; a leading ``date 2019-04`` marker is moved from the text
to the document's date. Each block keeps its character span in the decoded text, so passages
can point back into the file. A file of another format (:mod:`.readers`) becomes the blocks its
reader found, laid out one a line (:func:`.readers.layout`), with its page and the document's
metadata from the file itself.
"""

from __future__ import annotations

import datetime
import hashlib
import os
import re
from dataclasses import dataclass, field

from ..records import Document
from ..text import path_bytes, path_text
from .files import SourceFile, Unreadable, decode, read_regular
from .readers import Extracted, Skipped, extract, is_structured, layout

Span = tuple[int, int]


@dataclass
class Block:
    """A blank-line separated block: its span in the text and whitespace-collapsed text."""

    start: int
    end: int
    text: str
    n_lines: int
    md_heading: bool = False  # a heading by the file's own markup (Markdown, HTML, DOCX, EPUB, ODT)
    kind: str = "paragraph"  # paragraph | heading | title | boilerplate | dropped
    reason: str = ""
    page: int | None = None  # the PDF page the block is printed on


@dataclass
class ParsedDocument:
    file: SourceFile
    text: str
    sha256: str
    title: str | None
    date: str | None
    blocks: list[Block] = field(default_factory=list)
    url: str | None = None
    author: str | None = None
    structured: bool = False  # read by a format reader (HTML, PDF, ...), not as plain text

    def document(self, n_passages: int) -> Document:
        path = os.path.abspath(self.file.path)
        return Document(doc_id=self.file.doc_id, path=path_text(path), raw_path=path_bytes(path), title=self.title,
                        date=self.date, url=self.url, author=self.author, sha256=self.sha256, n_passages=n_passages)


def read_document(file: SourceFile, warnings: list[str],
                  extracted: Extracted | Skipped | None = None) -> ParsedDocument | None:
    """Decode and split one file, or record why it is skipped. `extracted`: what its format's
    reader already found (read in another process, or cached), so the file is not parsed again."""
    try:
        data = read_regular(file.path)
    except OSError as exc:
        warnings.append(f"skipped {file.display}: cannot read ({exc.strerror or exc})")
        return None
    if is_structured(file.path):
        return _structured_document(file, data, warnings, extracted)
    try:
        text, encoding = decode(data)
    except Unreadable as exc:
        warnings.append(f"skipped {file.display}: {exc}")
        return None
    if not text.strip():
        warnings.append(f"skipped {file.display}: empty file")
        return None
    if encoding is not None:
        warnings.append(f"{file.display}: not UTF-8, decoded as {encoding}")
    meta, body_start = _front_matter(text) if file.is_md else ({}, 0)
    doc = ParsedDocument(file, text, hashlib.sha256(data).hexdigest(), meta.get("title"),
                          _parse_date(meta.get("date", "")))
    doc.blocks = _split_blocks(text, body_start, file.is_md)
    _take_date_marker(doc)
    return doc


def extract_file(path, data: bytes) -> Extracted:
    """The reader's result for one file; raises :class:`Skipped`, whatever went wrong inside
    the reader (a library's error on a damaged file is the file's problem, not the build's)."""
    try:
        return extract(path, data)
    except Skipped:
        raise
    except RecursionError:
        raise Skipped("nested too deeply to read") from None
    except MemoryError:
        raise Skipped("too large to read in memory") from None
    except Exception as exc:  # noqa: BLE001 - see the docstring
        raise Skipped(f"could not be read ({type(exc).__name__}: {' '.join(str(exc).split())[:160]})") from None


def _structured_document(file: SourceFile, data: bytes, warnings: list[str],
                         extracted: Extracted | Skipped | None) -> ParsedDocument | None:
    """An HTML page, PDF, DOCX, EPUB or ODT file as blocks, with its own metadata."""
    if extracted is None:
        try:
            extracted = extract_file(file.path, data)
        except Skipped as exc:
            extracted = exc
    if isinstance(extracted, Skipped):
        warnings.append(f"skipped {file.display}: {extracted}")
        return None
    warnings.extend(f"{file.display}: {note}" for note in extracted.notes)
    text, spans = layout(extracted.pieces)
    if not text.strip():
        warnings.append(f"skipped {file.display}: no text in it")
        return None
    doc = ParsedDocument(file, text, hashlib.sha256(data).hexdigest(), extracted.title,
                         _parse_date(extracted.date or "") if extracted.date else None,
                         url=extracted.url, author=extracted.author, structured=True)
    # a table row counts as a block of several lines: the heading rules then never take it for one
    doc.blocks = [Block(start, end, piece.text, 2 if piece.row else 1, md_heading=piece.heading, page=piece.page)
                  for piece, (start, end) in zip(extracted.pieces, spans) if piece.text]
    return doc


_FRONT_MATTER = re.compile(r"---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|$)", re.S)
_META_LINE = re.compile(r"^\s*(\w+)\s*:\s*(.*?)\s*$", re.M)


def _front_matter(text: str) -> tuple[dict[str, str], int]:
    """Markdown front matter (``---`` ... ``---``): its title/date, and where the body starts."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, 0
    meta = {k.lower(): v.strip("'\"") for k, v in _META_LINE.findall(match.group(1))}
    if "titre" in meta and "title" not in meta:
        meta["title"] = meta["titre"]
    return {k: v for k, v in meta.items() if v}, match.end()


_MD_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_MD_RULE = re.compile(r"^ {0,3}(?:(?:-[ \t]*){3,}|(?:\*[ \t]*){3,}|(?:_[ \t]*){3,}|=+[ \t]*)$")
def _split_blocks(text: str, pos: int, is_md: bool) -> list[Block]:
    """Blank-line separated blocks; in Markdown, heading lines are blocks of their own."""
    blocks: list[Block] = []
    current: list[Span] = []
    for line in text[pos:].split("\n"):
        span, pos = (pos, pos + len(line)), pos + len(line) + 1
        if is_md and _md_line(text, line, span, current, blocks):
            continue
        if line.strip():
            current.append(span)
        elif current:
            blocks.append(_make_block(text, current))
            current.clear()
    if current:
        blocks.append(_make_block(text, current))
    return [b for b in blocks if b.text]


def _md_line(text: str, line: str, span: Span, current: list[Span], blocks: list[Block]) -> bool:
    """Handle a Markdown ATX heading, setext underline or rule; True when the line is consumed."""
    if _MD_RULE.match(line):
        if len(current) == 1 and line.lstrip()[:1] in "=-":  # setext: the line above is a heading
            blocks.append(_trimmed_block(text, current[0][0], current[0][1], 1, md_heading=True))
        elif current:
            blocks.append(_make_block(text, current))
        current.clear()
        return True  # otherwise a rule separates, like a blank line
    match = _MD_HEADING.match(line)
    if not match:
        return False
    if current:
        blocks.append(_make_block(text, current))
        current.clear()
    if match.group(2):
        start = span[0] + match.start(2)
        blocks.append(_trimmed_block(text, start, start + len(match.group(2)), 1, md_heading=True))
    return True


def _make_block(text: str, lines: list[Span]) -> Block:
    start, end = lines[0][0], lines[-1][1]
    return _trimmed_block(text, start, end, len(lines))


def _trimmed_block(text: str, start: int, end: int, n_lines: int, md_heading: bool = False) -> Block:
    """A block with its span trimmed to the first and last non-space character."""
    chunk = text[start:end]
    words = chunk.split()
    if not words:
        return Block(start, start, "", n_lines, md_heading)
    start, end = start + len(chunk) - len(chunk.lstrip()), end - (len(chunk) - len(chunk.rstrip()))
    return Block(start, end, " ".join(words), n_lines, md_heading)


_DATE_MARKER = re.compile(
    r"\s*date\s*[:=]?\s*(\d{4}(?:[-/.]\d{1,2}(?:[-/.]\d{1,2})?)?|\d{1,2}[-/.]\d{1,2}[-/.]\d{4})(?=\s|$)\s*",
    re.I)


def _take_date_marker(doc: ParsedDocument) -> None:
    """Move a leading ``date 2019-04`` / ``date: 2019-04-12`` marker from the text to the date."""
    for block in doc.blocks:
        if not block.text:
            continue
        match = _DATE_MARKER.match(doc.text, block.start, block.end)
        if match:
            doc.date = doc.date or _parse_date(match.group(1))
            new = _trimmed_block(doc.text, match.end(), block.end, block.n_lines, block.md_heading)
            block.start, block.end, block.text = new.start, new.end, new.text
        break
    doc.blocks = [b for b in doc.blocks if b.text]


def _parse_date(value: str) -> str | None:
    """An ISO date string (``2019``, ``2019-04``, ``2019-04-12``) from common spellings."""
    parts = [p for p in re.split(r"[-/.T ]", value.strip()) if p][:3]
    if not parts or not all(p.isdigit() for p in parts):
        return value.strip() or None
    if len(parts[0]) != 4 and len(parts) == 3 and len(parts[2]) == 4:
        parts = parts[::-1]  # 12/04/2019
    if len(parts[0]) != 4:
        return None
    year, rest = parts[0], [int(p) for p in parts[1:]]
    if rest and not 1 <= rest[0] <= 12:
        return year
    if len(rest) == 2 and not _real_day(int(year), *rest):
        rest = rest[:1]  # 2019-02-30: the month is still known
    return "-".join([year, *(f"{v:02d}" for v in rest)])


def _real_day(year: int, month: int, day: int) -> bool:
    try:
        datetime.date(year, month, day)
    except ValueError:
        return False
    return True
