"""What an index holds, as `qa stats` and the REPL's :stats show it, whichever store holds it."""

from __future__ import annotations

from pydantic import BaseModel


class IndexStats(BaseModel):
    """What an index holds, as `qa stats` and the REPL's :stats show it."""

    index: str
    generation: str
    documents: int
    passages: int
    model: str
    passage_precision: str  # what the passages were embedded at (fp32, or int8 with --precision int8)
    dimension: int
    faiss: str
    exact: bool
    bytes_on_disk: int
    built_at: str
    sources: list[str]
    store: str | None = None  # where the passage vectors are searched, when not in faiss.index
    vector_index: str | None = None  # the Milvus index over them (FLAT, IVF_FLAT ...), for a Milvus index
    note: str | None = None  # why another generation than CURRENT's is used
