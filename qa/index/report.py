"""What a build reports and shares, whichever store it writes: the report, identity and diff.

Shared by the local build (:mod:`.building`) and the Milvus build (:mod:`.store_build`).
"""

from __future__ import annotations

from pydantic import BaseModel

from ..records import Passage
from .manifest import Chunking, IndexIdentity


class BuildReport(BaseModel):
    """What `build_index` did, for the summary line and for tests."""

    index: str
    documents: int
    passages: int
    new: int
    changed: int
    removed: int
    embedded: int
    seconds: float
    full: bool
    reason: str | None = None
    warnings: list[str] = []
    padding: float = 0.0  # share of the engine's token slots that were padding (batches sorted by length)
    stored: int | None = None  # vectors written to a Milvus store (None: FAISS files)

    def summary(self) -> str:
        how = "full rebuild" if self.full else "incremental"
        text = (f"{self.documents} documents, {self.passages} passages: {self.new} new, {self.changed} changed, "
                f"{self.removed} removed; embedded {self.embedded} passages in {self.seconds:.1f} s ({how})")
        text += f"; wrote {self.stored} vectors to the store" if self.stored is not None else ""
        return text + (f"; rebuilt because {self.reason}" if self.reason else "")


def token_counter(embedder):
    prefix = embedder.spec.passage_prefix

    def count(text: str) -> int:
        return embedder.count_tokens(prefix + text)

    return count


def identity_for(embedder) -> IndexIdentity:
    """What a build with `embedder` produces, before anything is embedded."""
    spec = embedder.spec
    return IndexIdentity(model_id=spec.model_id, model_fingerprint=spec.fingerprint, query_prefix=spec.query_prefix,
                         passage_prefix=spec.passage_prefix, chunking=Chunking(max_tokens=embedder.max_tokens),
                         passage_precision=embedder.passage_precision)


def passage_diff(old: list[Passage], new: list[Passage]) -> tuple[int, int, int]:
    """(new, changed, removed) passages, a passage being known by its place: (document, paragraph)."""
    before = {(p.doc_id, p.paragraph): p.content_hash() for p in old}
    after = {(p.doc_id, p.paragraph): p.content_hash() for p in new}
    added = sum(1 for key in after if key not in before)
    removed = sum(1 for key in before if key not in after)
    changed = sum(1 for key, digest in after.items() if key in before and before[key] != digest)
    return added, changed, removed
