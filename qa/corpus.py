"""The import path ingestion had before it became the :mod:`qa.ingest` package (kept for callers).

New code imports :mod:`qa.ingest` for ingestion and :mod:`qa.records` for the data types.
"""

from .ingest import (  # noqa: F401
    EXTENSIONS, MAX_TOKENS, Corpus, Document, Passage, Source, deduplicate, estimate_tokens, load_corpus, normalise,
    passage_id, path_bytes, path_text, read_text, real_path, valid_text,
)
from .ingest.dedup import CONTAINMENT_MIN, CONTAINMENT_MIN_SHINGLES, JACCARD_MIN  # noqa: F401
