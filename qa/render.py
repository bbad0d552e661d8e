"""Showing results to a person or a program: answers, hits, articles and index statistics.

One renderer serves `qa ask`, `qa stats` and the REPL. Text comes with ANSI colours when colour
is on (a terminal, NO_COLOR unset) and plain otherwise, the answering sentence then between **
markers, so the mark survives pipes and copy-paste; JSON is the records' own fields.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import textwrap

from pydantic import BaseModel

from .index import IndexStats
from .paths import no_colour
from .ingest.chunking import CONTEXT_JOINER
from .ranking.search import Answer, Hit
from .records import Document, Passage, Source

BOLD, DIM, RESET = "\x1b[1m", "\x1b[2m", "\x1b[0m"
HIGHLIGHT = "\x1b[1;33m"
CYAN, RED = "\x1b[36m", "\x1b[31m"
# Markers around the sentence while the text is wrapped, swapped for colours (or **) after:
# private-use characters never occur in articles, so they cannot collide with the text.
_ON, _OFF = "\ue000", "\ue001"
INDENT = "   "


def use_colour(stream=None) -> bool:
    stream = stream or sys.stdout
    return not no_colour() and hasattr(stream, "isatty") and stream.isatty()


def terminal_width(default: int = 100) -> int:
    return max(40, min(shutil.get_terminal_size((default, 24)).columns, 120))


def to_json(record: BaseModel | list[BaseModel], *, compact: bool = False, exclude_none: bool = False) -> str:
    """A record (an answer, a hit, statistics) as JSON: one line when `compact` (JSON Lines)."""
    records = record if isinstance(record, list) else [record]
    dumped = [r.model_dump(exclude_none=exclude_none) for r in records]
    data = dumped if isinstance(record, list) else dumped[0]
    return json.dumps(data, ensure_ascii=False, indent=None if compact else 2)


def render_answer(answer: Answer, *, colour: bool, width: int | None = None, full: bool = False) -> str:
    width = width or terminal_width()
    if not answer.hits:
        return "No passage found."
    lines = []
    if answer.weak:
        lines.append(_paint("No passage answers this clearly; the closest ones:", RED, colour))
        lines.append("")
    for hit in answer.hits:
        lines.extend(render_hit(hit, colour=colour, width=width))
        lines.append("")
    return "\n".join(lines).rstrip("\n")


def place(source: Source) -> str:
    """Where a passage is, in the source's own terms: ``report.pdf p. 12 ¶3``."""
    return f"{source.doc_id}" + (f" p. {source.page}" if source.page else "") + f" ¶{source.paragraph}"


def render_hit(hit: Hit, *, colour: bool, width: int, text: str | None = None) -> list[str]:
    """A hit as lines: header (rank, source, page, paragraph, date, score), title and URL,
    section and context, wrapped text, other sources."""
    where = place(hit) + (f" · {hit.date}" if hit.date else "")
    lines = [_paint(f"{hit.rank}. {where}", BOLD, colour) + _paint(f" · score {hit.score:.3f}", DIM, colour)]
    indent = INDENT
    about = " · ".join(x for x in (hit.title, hit.author, hit.url) if x)
    if about:
        lines.append(indent + _paint(about, DIM, colour))
    if hit.section and hit.section != hit.title and hit.section not in (hit.context or "").split(CONTEXT_JOINER):
        lines.append(indent + _paint(f"§ {hit.section}", CYAN, colour))
    if hit.context and hit.context != hit.title:
        lines.append(indent + _paint(hit.context, CYAN, colour))
    marked = hit.text[: hit.sentence_start] + _ON + hit.sentence + _OFF + hit.text[hit.sentence_end:]
    for line in textwrap.wrap(text or marked, width=width - len(indent), break_on_hyphens=False):
        lines.append(indent + _colour_marks(line, colour))
    if hit.other_sources:
        also = ", ".join(place(s) for s in hit.other_sources)
        lines.append(indent + _paint(f"also in: {also}", DIM, colour))
    return _close_open_marks(lines, colour)


def _colour_marks(line: str, colour: bool) -> str:
    if colour:
        return line.replace(_ON, HIGHLIGHT).replace(_OFF, RESET)
    return line.replace(_ON, "**").replace(_OFF, "**")


def _close_open_marks(lines: list[str], colour: bool) -> list[str]:
    """A highlighted sentence may span lines: re-open the colour on each continued line."""
    if not colour:
        return lines
    out, inside = [], False
    for line in lines:
        if inside:
            line = line[:3] + HIGHLIGHT + line[3:]
        last_on, last_off = line.rfind(HIGHLIGHT), line.rfind(RESET)
        inside = last_on > last_off if (last_on >= 0 or last_off >= 0) else inside
        out.append(line + (RESET if inside else ""))
    return out


def _paint(text: str, code: str, colour: bool) -> str:
    return f"{code}{text}{RESET}" if colour else text


def render_details(hit: Hit, *, colour: bool, width: int, paths: dict[str, str], partial: bool) -> str:
    """A hit in full: its text, its score's parts, every source with its file (`paths` by
    document id), and whether the passage is one window of a longer paragraph (`partial`)."""
    lines = render_hit(hit.model_copy(update={"other_sources": []}), colour=colour, width=width)
    lines.append(INDENT + _paint(f"score {hit.score:.3f}: similarity {hit.similarity:.3f}, "
                                 f"BM25 {hit.lexical:.2f}", DIM, colour))
    sources = [hit, *hit.other_sources]
    lines.append(INDENT + ("sources:" if len(sources) > 1 else "source:"))
    for s in sources:
        about = " · ".join(x for x in (s.date, s.title, s.url) if x)
        path = paths.get(s.doc_id)
        lines.append(INDENT + f"  {place(s)}" + (f" · {about}" if about else "")
                     + _paint(f"  ({path})" if path else "", DIM, colour))
    if partial:
        lines.append(INDENT + _paint(f"part of a longer paragraph: :article {hit.rank} shows it whole", DIM, colour))
    return "\n".join(lines)


def render_article(document: Document, text: str, hit: Hit, *, colour: bool, width: int, changed: bool) -> str:
    """The whole article of `hit`, its passage highlighted; `changed`: the file differs from
    what was indexed, so the highlight may be off."""
    about = " · ".join(x for x in (document.date, str(document.path)) if x)
    lines = [_paint(document.title or document.doc_id, BOLD, colour)
             + _paint(f"  [{document.doc_id} · {about}]", DIM, colour)]
    if changed:
        lines.append(_paint("note: the file changed since it was indexed, the highlight may be off "
                            "(:reindex updates the index)", DIM, colour))
    if 0 <= hit.start <= hit.end <= len(text):
        text = text[:hit.start] + _ON + text[hit.start:hit.end] + _OFF + text[hit.end:]
    for paragraph in re.split(r"\n[ \t]*\n", text.strip("\n")):
        if not paragraph.strip():
            continue
        lines.append("")
        for line in textwrap.wrap(" ".join(paragraph.split()), width=width - len(INDENT), break_on_hyphens=False) or [""]:
            lines.append(INDENT + _colour_marks(line, colour))
    return "\n".join(_close_open_marks(lines, colour))


def render_document_text(document: Document, places: list[tuple[Source, Passage]]) -> str:
    """`qa text`: a document's fields, then each passage as indexed (its place, page, section,
    context, and its text on one line, unwrapped so that it can be searched and compared)."""
    facts = [document.title and f"title: {document.title}", document.date and f"date: {document.date}",
             document.author and f"author: {document.author}", document.url and f"url: {document.url}",
             f"{len(places)} passages"]
    lines = [f"== {document.doc_id} · " + " · ".join(f for f in facts if f)]
    for source, passage in places:
        head = place(source) + (f" § {source.section}" if source.section else "")
        lines.append("")
        lines.append(head + (f"  [{passage.context}]" if passage.context else ""))
        lines.append(passage.text)
    return "\n".join(lines) + "\n"


def render_stats(stats: IndexStats) -> str:
    """Index statistics as aligned `key: value` lines (lists joined by commas)."""
    info = stats.model_dump(exclude_none=True)
    width = max(map(len, info))
    return "\n".join(f"{key:>{width}}: {', '.join(value) if isinstance(value, list) else value}"
                     for key, value in info.items())


def paint(text: str, style: str, colour: bool) -> str:
    """A message in one of the styles the REPL uses ("dim", "error"), or as it is."""
    code = {"dim": DIM, "error": RED}.get(style, "")
    return f"{code}{text}{RESET}" if colour and code else text
