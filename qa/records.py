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
    """What is known of a document wherever it is cited: its id, title and date."""

    doc_id: str
    title: str | None = None
    date: str | None = None


class Source(DocumentInfo):
    """Where a passage's text occurs: a document and the character span of the paragraph."""

    paragraph: int
    start: int
    end: int


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
    """The result of ingestion: documents, unique passages, and one warning line per problem."""

    documents: list[Document]
    passages: list[Passage]
    warnings: list[str]
