"""Ingestion: files and folders of articles into passages, the unit that is embedded and retrieved.

A passage is a paragraph of an article, because a paragraph is the smallest block that is still
self-contained in news prose. Around the paragraphs, saved web pages carry clutter that must not
be retrieved as an answer, so ingestion

* reads ``.txt`` and ``.md`` files, recursively, in sorted order (deterministic ids and order),
  decoding UTF-8 or, failing that, a detected encoding, and HTML pages, PDF, DOCX, EPUB and ODT
  files through their format's reader (:mod:`.readers`: the article's main text, PDF pages,
  headings, the document's own title, author, date and URL), cached and in parallel
  (:mod:`.extraction`); a bad file is skipped with a warning, never aborting the build;
* splits the text into blank-line separated blocks and classifies each block as content,
  heading/title (kept as the ``context`` of the paragraph it introduces), or boilerplate
  (advertising markers, comment forms, share/subscribe/cookie/copyright notices, short lines
  repeated within a document or across documents, and everything after a comment form);
* parses a leading ``date 2019-04`` marker (or Markdown front matter) into the document's date;
* splits a paragraph too long for the model at sentence boundaries, never truncating it;
* indexes a paragraph that appears in several articles once, with every source recorded, using
  near-duplicate detection (word 3-gram shingles, Jaccard resemblance or containment), because
  agencies' copy is reused with small wording changes.

Character offsets (``start``/``end``) index into :func:`read_text` of the source file, so an
interface can show or highlight the passage inside the whole article.

One module a step: :mod:`.files` (collecting, decoding), :mod:`.readers` (one module a format
other than text), :mod:`.extraction` (running the readers: cache, worker processes),
:mod:`.blocks` (paragraphs, Markdown, dates; a reader's blocks), :mod:`.classify` (boilerplate,
headings), :mod:`.chunking` (passages that fit the model), :mod:`.dedup` (near-duplicates),
:mod:`.sentences` (sentence spans). This module runs them in order.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable

from ..errors import QAError
from ..records import Corpus, Document, Passage, Source
from ..text import normalise, path_bytes, path_text, real_path, valid_text
from .blocks import ParsedDocument, read_document
from .chunking import MAX_TOKENS, CountTokens, document_passages, estimate_tokens, passage_id
from .classify import repeated_short_keys
from .dedup import deduplicate
from .extraction import FileProgress, extract_files
from .files import EXTENSIONS, collect_files, read_text

__all__ = ["EXTENSIONS", "MAX_TOKENS", "Corpus", "Document", "Passage", "Source", "deduplicate", "estimate_tokens",
           "load_corpus", "normalise", "passage_id", "path_bytes", "path_text", "read_text", "real_path",
           "valid_text"]


def load_corpus(paths: str | os.PathLike | Iterable[str | os.PathLike], *,
                count_tokens: CountTokens | None = None, max_tokens: int = MAX_TOKENS,
                progress: Callable[[int, int], None] | None = None,
                progress_files: FileProgress | None = None, use_cache: bool = True) -> Corpus:
    """Read files/folders into a deduplicated list of passages that each fit ``max_tokens``.

    ``count_tokens`` should be the model tokenizer's counter (applied to the text that will be
    embedded, context included); without one a conservative estimate is used. ``progress(done, total)``
    is told the characters split so far and in all; ``progress_files(done, total, name)`` the
    files of other formats than text parsed so far (``use_cache=False``: parse them all). Raises
    :class:`QAError` for a path that does not exist or a folder without articles; a single bad
    file only produces a warning.
    """
    if max_tokens < 1:
        raise QAError(f"max_tokens must be at least 1, not {max_tokens}")
    count = count_tokens or estimate_tokens
    warnings: list[str] = []
    files = collect_files(paths, warnings)
    extracted, n_parsed = extract_files(files, progress_files, use_cache=use_cache)
    parsed = [doc for f in files if (doc := read_document(f, warnings, extracted.get(f.path)))]
    repeated = repeated_short_keys(parsed)
    passages: list[Passage] = []
    total, before = sum(len(doc.text) for doc in parsed), 0
    for doc in parsed:
        advance = (lambda position, before=before: progress(before + position, total)) if progress else None
        found = document_passages(doc, repeated, count, max_tokens, advance)
        before += len(doc.text)
        if not found:
            warnings.append(f"{doc.file.display}: no passages (only headings or boilerplate)")
        passages.extend(found)
    unique = deduplicate(passages)
    return Corpus(documents=_documents(parsed, unique), passages=unique, warnings=warnings, parsed=n_parsed,
                  reused=len(extracted) - n_parsed)


def _documents(parsed: list[ParsedDocument], passages: list[Passage]) -> list[Document]:
    """Documents with the number of (deduplicated) passages that cite each."""
    cites: Counter[str] = Counter()
    for passage in passages:
        cites.update({source.doc_id for source in passage.sources()})
    return [doc.document(cites[doc.file.doc_id]) for doc in parsed]
