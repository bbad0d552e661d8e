"""What an index generation records about itself: its identity, sizes and FAISS parameters.

The manifest is what a build checks to decide whether the live generation can be reused (same
format, model, prompts and chunking: :meth:`IndexIdentity.incompatibility`) and what a reader
checks the arrays against. The FAISS parameters are chosen here from the passage count.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, Field, TypeAdapter

from ..stores.base import StoreRecord
from ..text import real_path
from .tokens import TokenFormat


FORMAT_VERSION = 3  # 3: token store, no sentence vectors (format 2 is rebuilt in full)


# Exact search while the passage count is below this, HNSW from there on: about where one exact
# search costs as much as embedding the question with the ONNX engine, so that past it search
# would dominate.
# The figures (exact cost, HNSW recall on vectors with real e5 structure at 100k and 1M, the
# efSearch sweep) are in BENCHMARKS.md, "1M passages with the structure of real e5 vectors".
APPROXIMATE_FROM = 100_000


HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 200, 256


class _Params(BaseModel):
    """Typed parameters that scripts may still read the way they read the old dicts: p["M"]."""

    def __getitem__(self, key: str):
        return getattr(self, key)


class ExactFaiss(_Params):
    """Exact inner-product search (IndexFlatIP): below APPROXIMATE_FROM passages."""

    kind: Literal["IndexFlatIP"] = "IndexFlatIP"
    exact: Literal[True] = True
    approximate_from: int | None = None


class HnswFaiss(_Params):
    """Approximate search (IndexHNSWFlat); the names are FAISS's own, as the manifest stores them."""

    kind: Literal["IndexHNSWFlat"] = "IndexHNSWFlat"
    exact: Literal[False] = False
    M: int
    efConstruction: int
    efSearch: int
    metric: Literal["inner_product"] = "inner_product"
    approximate_from: int | None = None


FaissParams = Annotated[ExactFaiss | HnswFaiss, Field(discriminator="kind")]


_FAISS_ADAPTER = TypeAdapter(FaissParams)


class Chunking(_Params):
    """How the corpus was cut into passages: a different cut means different passages."""

    unit: str = "paragraph"
    max_tokens: int


class IndexIdentity(BaseModel):
    """What an index must share with a run to be reused: format, model, prompts, chunking."""

    format_version: int = FORMAT_VERSION
    model_id: str
    model_fingerprint: str
    query_prefix: str
    passage_prefix: str
    chunking: Chunking
    # The ONNX engine's precision for passages (fp32 or int8); absent from older manifests: fp32.
    # Questions of either precision search either (EVALUATION.md, "int8 engine").
    passage_precision: str = "fp32"

    def incompatibility(self, other: IndexIdentity) -> str | None:
        """Why an index with this identity cannot be reused for a run described by `other`."""
        if self.format_version != other.format_version:
            return f"index format {self.format_version}, this version of qa writes {other.format_version}"
        if self.model_fingerprint != other.model_fingerprint:
            return f"built with model {self.model_id} ({self.model_fingerprint}), not {other.model_id} ({other.model_fingerprint})"
        if (self.query_prefix, self.passage_prefix) != (other.query_prefix, other.passage_prefix):
            return "built with other query/passage prefixes"
        if self.passage_precision != other.passage_precision:
            return (f"its passages were embedded at {self.passage_precision}, this build embeds them at "
                    f"{other.passage_precision}")
        if self.chunking != other.chunking:
            return (f"built with other chunking parameters ({self.chunking.model_dump()} vs "
                    f"{other.chunking.model_dump()})")
        return None


class IndexManifest(IndexIdentity):
    """A generation's record: its identity, then what was built (sizes, FAISS, sources, time)."""

    dimension: int
    faiss: FaissParams
    tokens: TokenFormat | None = None  # None only in manifests of format 2
    passages: int
    documents: int
    corpus_fingerprint: str
    sources: list[str]  # as shown: bytes that are not UTF-8 escaped (see corpus.path_text)
    built_at: float
    raw_sources: list[str | None] = []  # the exact bytes (hex) of each source that is not UTF-8
    store: StoreRecord | None = None  # None: FAISS files in the generation

    def source_paths(self) -> list[str]:
        """The sources as paths that open the files again, whatever their names' bytes."""
        raw = self.raw_sources or [None] * len(self.sources)
        return [real_path(text, r) for text, r in zip(self.sources, raw, strict=True)]


def faiss_params(n: int) -> ExactFaiss | HnswFaiss:
    """The FAISS index for `n` passage vectors."""
    if n < APPROXIMATE_FROM:
        return ExactFaiss(approximate_from=APPROXIMATE_FROM)
    return HnswFaiss(M=HNSW_M, efConstruction=HNSW_EF_CONSTRUCTION, efSearch=HNSW_EF_SEARCH,
                     approximate_from=APPROXIMATE_FROM)


def make_faiss_index(vectors: np.ndarray, params: ExactFaiss | HnswFaiss | dict):
    """The FAISS index that `params` (from `faiss_params`, or its old dict form) describes, filled."""
    import faiss

    if isinstance(params, dict):
        params = _FAISS_ADAPTER.validate_python(params)
    dim = vectors.shape[1]
    if isinstance(params, ExactFaiss):
        index = faiss.IndexFlatIP(dim)
    else:
        index = faiss.IndexHNSWFlat(dim, params.M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = params.efConstruction
        index.hnsw.efSearch = params.efSearch
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index
