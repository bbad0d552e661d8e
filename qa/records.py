"""The records ingestion produces and the index stores: documents, sources, passages, a corpus.

Each record extends the one it contains instead of repeating its fields: a :class:`Source` is
a place in a document (:class:`DocumentInfo` + paragraph and span), an :class:`Excerpt` is the
text found there with its other places, a :class:`Passage` is an excerpt with an id, and a
search hit (:class:`qa.ranking.search.Hit`) is an excerpt with its ranking.
"""

from __future__ import annotations

import hashlib

from pydantic import BaseModel

from .text import real_path


def embed_text(context: str | None, text: str) -> str:
    """The text given to the model: the heading (context) helps the paragraph match its topic."""
    return f"{context}\n{text}" if context else text


class DocumentInfo(BaseModel):
    """What is known of a document wherever it is cited: its id, title and date, and for a web
    page or an e-book its canonical URL and author (from the page's own metadata)."""

    doc_id: str
    title: str | None = None
    date: str | None = None
    url: str | None = None
    author: str | None = None


class Source(DocumentInfo):
    """Where a passage's text occurs: a document and the character span of the paragraph, in
    the source's own terms too: the PDF page it is printed on (1-based) and the section heading
    it falls under (a DOCX/HTML/EPUB heading, a Markdown one), so a citation can say
    ``report.pdf p. 12`` or ``§ Methods``."""

    paragraph: int
    start: int
    end: int
    page: int | None = None
    section: str | None = None


class Excerpt(Source):
    """A paragraph's text (or a window of a long one) at its primary source, with the headings
    before it (`context`) and the other places the same text occurs."""

    text: str
    context: str | None = None
    other_sources: list[Source] = []

    def source(self) -> Source:
        """The primary source alone."""
        return Source(**{name: getattr(self, name) for name in Source.model_fields})

    def sources(self) -> list[Source]:
        """Every occurrence of this text, the primary one first."""
        return [self.source(), *self.other_sources]

    def excerpt_fields(self) -> dict:
        """This excerpt's fields, for a record that extends it (the sources list copied)."""
        fields = {name: getattr(self, name) for name in Excerpt.model_fields}
        return fields | {"other_sources": list(self.other_sources)}


class Passage(Excerpt):
    """One retrievable unit: an excerpt with a stable id (see :func:`qa.ingest.chunking.passage_id`)."""

    id: str

    def embed_text(self) -> str:
        """The text given to the model: the heading helps the paragraph match its topic."""
        return embed_text(self.context, self.text)

    def content_hash(self) -> str:
        """Hash of what is embedded, so an incremental build re-embeds only what changed."""
        return hashlib.sha256(self.embed_text().encode("utf-8")).hexdigest()


class Document(DocumentInfo):
    """An ingested file; ``n_passages`` counts the passages that cite it (after deduplication).

    ``path`` is for display (see :func:`qa.text.path_text`); ``raw_path`` keeps the exact bytes
    of a name that is not UTF-8, so the file can still be opened: use :meth:`file`.
    """

    path: str
    sha256: str
    n_passages: int
    raw_path: str | None = None

    def file(self) -> str:
        """The path that opens the file, whatever the bytes of its name."""
        return real_path(self.path, self.raw_path)


class Corpus(BaseModel):
    """The result of ingestion: documents, unique passages, and one warning line per problem;
    `parsed` files of other formats than text were extracted, `reused` came from the cache."""

    documents: list[Document]
    passages: list[Passage]
    warnings: list[str]
    parsed: int = 0
    reused: int = 0

    def by_document(self) -> list[tuple[Document, list[tuple[Source, Passage]]]]:
        """Each document with the passages found in it, in its order, each with its place there
        (a passage shared by several documents is listed under each)."""
        places: dict[str, list[tuple[Source, Passage]]] = {d.doc_id: [] for d in self.documents}
        for passage in self.passages:
            for source in passage.sources():
                places.setdefault(source.doc_id, []).append((source, passage))
        return [(d, sorted(places[d.doc_id], key=lambda item: (item[0].start, item[0].end)))
                for d in self.documents]
