"""What a question's filters let in: documents by glob, passages by date, at the dates' precision.

A passage may stand in several documents (near-duplicates collapsed into one, each with its own
source): a filter lets it in when any source matches, and the hit then cites a matching source.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from ..records import Document, Excerpt, Passage, Source


class Filters(BaseModel):
    """Restrict the search to some documents (glob on the document id) and/or a date range.

    Unknown keys are refused: a misspelt filter must not silently search everything."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    doc: str | None = None
    date_from: str | None = None
    date_to: str | None = None

    def active(self) -> bool:
        return bool(self.doc or self.date_from or self.date_to)


def doc_matches(doc_id: str, glob: str) -> bool:
    """A document id matches the glob whole or by its file name (`report.pdf` for `docs/report.pdf`)."""
    return fnmatch.fnmatch(doc_id, glob) or fnmatch.fnmatch(Path(doc_id).name, glob)


def date_in(date: str, start: str | None, end: str | None) -> bool:
    """Compare at the precision both sides have: '2019-04' is within 2019 and within 2019-04-..."""
    if start and date[: len(start)] < start[: len(date)]:
        return False
    if end and date[: len(end)] > end[: len(date)]:
        return False
    return True


def source_matches(source: Source, f: Filters) -> bool:
    """Whether one source (document, paragraph, date) is one the filters ask for."""
    if f.doc and not doc_matches(source.doc_id, f.doc):
        return False
    if f.date_from or f.date_to:
        return bool(source.date) and date_in(source.date, f.date_from, f.date_to)
    return True


def matches(p: Passage, f: Filters) -> bool:
    """Whether the filters let the passage in: some source of it in a matching document, some dated
    source in the range (not necessarily the same one, as before sources were tracked one by one)."""
    sources = p.sources()
    if f.doc and not any(doc_matches(s.doc_id, f.doc) for s in sources):
        return False
    if f.date_from or f.date_to:
        return any(date_in(s.date, f.date_from, f.date_to) for s in sources if s.date)
    return True


def lead_with_a_match(hit: Excerpt, f: Filters) -> None:
    """Make a source the filters asked for the hit's primary one: `--doc report.pdf` on a paragraph
    that is also in report.docx cites report.pdf first (the same text; the others stay listed)."""
    sources = hit.sources()
    match = next((s for s in sources if source_matches(s, f)), None)
    if match is None or match is sources[0]:
        return
    for name, value in match.model_dump().items():
        setattr(hit, name, value)
    hit.other_sources = [s for s in sources if s is not match]


def no_match_message(f: Filters, documents: Sequence[Document]) -> str:
    """Why nothing passed the filters: no such document (with some that exist), or the known dates."""
    if f.doc and not any(doc_matches(d.doc_id, f.doc) for d in documents):
        names = ", ".join(d.doc_id for d in documents[:5]) + (", ..." if len(documents) > 5 else "")
        return f"no document matches {f.doc!r} (documents: {names})"
    dates = sorted({d.date for d in documents if d.date})
    known = f"known dates: {', '.join(dates)}" if dates else "no document has a date"
    return f"no passage matches these filters ({known})"
