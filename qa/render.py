"""Showing answers to a person: ranked passages, the answering sentence highlighted, sources.

One renderer serves `qa ask` and the REPL. It returns text with ANSI colours when colour is on
(a terminal, NO_COLOR unset) and plain text with the sentence between ** markers otherwise, so
the mark survives pipes and copy-paste.
"""

from __future__ import annotations

import os
import shutil
import sys
import textwrap

from .search import Answer, Hit

BOLD, DIM, RESET = "\x1b[1m", "\x1b[2m", "\x1b[0m"
HIGHLIGHT = "\x1b[1;33m"
CYAN, RED = "\x1b[36m", "\x1b[31m"
# Markers around the sentence while the text is wrapped, swapped for colours (or **) after:
# private-use characters never occur in articles, so they cannot collide with the text.
_ON, _OFF = "\ue000", "\ue001"


def use_colour(stream=None) -> bool:
    stream = stream or sys.stdout
    return "NO_COLOR" not in os.environ and hasattr(stream, "isatty") and stream.isatty()


def terminal_width(default: int = 100) -> int:
    return max(40, min(shutil.get_terminal_size((default, 24)).columns, 120))


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


def render_hit(hit: Hit, *, colour: bool, width: int, text: str | None = None) -> list[str]:
    """A hit as lines: header (rank, source, paragraph, score), context, wrapped text, sources."""
    where = f"{hit.doc_id} ¶{hit.paragraph}" + (f" · {hit.date}" if hit.date else "")
    lines = [_paint(f"{hit.rank}. {where}", BOLD, colour) + _paint(f" · score {hit.score:.3f}", DIM, colour)]
    indent = "   "
    if hit.title:
        lines.append(indent + _paint(hit.title, DIM, colour))
    if hit.context and hit.context != hit.title:
        lines.append(indent + _paint(hit.context, CYAN, colour))
    marked = hit.text[: hit.sentence_start] + _ON + hit.sentence + _OFF + hit.text[hit.sentence_end:]
    for line in textwrap.wrap(text or marked, width=width - len(indent), break_on_hyphens=False):
        lines.append(indent + _colour_marks(line, colour))
    if hit.other_sources:
        also = ", ".join(f"{s.doc_id} ¶{s.paragraph}" for s in hit.other_sources)
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
