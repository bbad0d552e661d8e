"""Reading a generation's arrays and checking them whole, so damage is found on open.

Every check is linear in the index size and pure numpy: a file with a valid header and garbage
after it must become one line naming the damage, never an IndexError or a `nan` score on some
later question.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import IndexStoreError
from ..records import Passage
from .generations import repair_command
from .manifest import FORMAT_VERSION, IndexManifest
from .tokens import TokenStore


@dataclass
class Vectors:
    """Passage vectors, sentence spans and stored tokens, aligned with a passage list."""

    passages: np.ndarray  # [n, dim]
    spans: np.ndarray  # [m, 3] int32: passage row, start, end
    tokens: TokenStore

    def sentence_rows(self) -> np.ndarray:
        """offsets[i]:offsets[i+1] are the sentence rows of passage i (sentences are grouped)."""
        return np.searchsorted(self.spans[:, 0], np.arange(len(self.passages) + 1)).astype(np.int64)


def structural_damage(manifest: IndexManifest, passages: list[Passage], vectors: Vectors,
                      documents: int | None = None) -> str | None:
    """Why the arrays cannot belong to these passages (shapes, counts, sentence spans, tokens),
    or None.

    Linear in the index size and pure numpy, so it runs on every open: a file with a valid header
    and garbage after it must not turn into an IndexError on some question.
    """
    n, dim = len(passages), manifest.dimension
    p, spans = vectors.passages, vectors.spans
    if n != manifest.passages or (documents is not None and documents != manifest.documents):
        return (f"passages.jsonl or documents.json disagree with the manifest "
                f"({n} passages, manifest {manifest.passages})")
    if p.ndim != 2 or p.shape[1] != dim or p.dtype.kind != "f":
        return f"vectors.npy holds {p.dtype}{list(p.shape)}, expected float vectors of {dim}"
    if len(p) != n:
        return f"vectors.npy has {len(p)} rows for {n} passages"
    if spans.ndim != 2 or spans.shape[1:] != (3,) or spans.dtype.kind not in "iu":
        return f"sentence_spans.npy holds {spans.dtype}{list(spans.shape)}, expected int [m, 3]"
    if manifest.tokens is not None and vectors.tokens.codec.record != manifest.tokens:
        return f"the token store is {vectors.tokens.codec.record.kind}, the manifest says {manifest.tokens.kind}"
    return _span_damage(passages, spans.astype(np.int64)) or vectors.tokens.damage(n, dim)


def _span_damage(passages: list[Passage], spans: np.ndarray) -> str | None:
    """Sentence owners must run 0, 0, 1, ... n-1 (every passage has one) and offsets fit its text."""
    owners, starts, ends = spans[:, 0], spans[:, 1], spans[:, 2]
    if len(passages) and (len(owners) == 0 or owners[0] != 0 or owners[-1] != len(passages) - 1
                          or not np.isin(np.diff(owners), (0, 1)).all()):
        return "sentence_spans.npy: sentence owners are not in passage order"
    lengths = np.fromiter((len(p.text) for p in passages), np.int64, len(passages))
    if not ((0 <= starts) & (starts <= ends) & (ends <= lengths[owners])).all():
        return "sentence_spans.npy: sentence offsets out of range"
    return None


# Every stored vector and token is L2-normalised, so no component exceeds 1 and no token's int8
# scale exceeds 1/127 (a little slack for rounding): larger finite values are damage too, which
# would otherwise turn into a score of `inf` (a scale of 3e38) rather than an error.
MAX_COMPONENT = 1.0 + 1e-3
MAX_TOKEN_SCALE = MAX_COMPONENT / 127


def invalid_passages(vectors: Vectors) -> np.ndarray:
    """Mask of the passages whose vector, or one of whose tokens' scales, is not a number a unit
    vector can hold: NaN, infinite, or out of range."""
    p = vectors.passages
    bad = ~(np.isfinite(p) & (np.abs(p) <= MAX_COMPONENT)).all(axis=1)
    tokens = vectors.tokens
    if len(tokens.codes):
        scales = tokens.codec.scales(np.asarray(tokens.codes))
        bad_tokens = np.flatnonzero(~(np.isfinite(scales) & (scales >= 0) & (scales <= MAX_TOKEN_SCALE)))
        bad[np.searchsorted(tokens.offsets, bad_tokens, side="right") - 1] = True
    return bad


def generation_damage(manifest: IndexManifest, passages: list[Passage], documents: int, vectors: Vectors,
                       counts: dict[str, tuple[int, int]]) -> str | None:
    """Every integrity check of a loaded generation, first problem only; `counts` are the FAISS
    indexes' (dimension, vector count), from the loaded objects or the files' headers."""
    return (structural_damage(manifest, passages, vectors, documents=documents)
            or _faiss_damage(manifest, vectors, counts) or _invalid_damage(vectors))


def _faiss_damage(manifest: IndexManifest, vectors: Vectors, counts: dict[str, tuple[int, int]]) -> str | None:
    expected = {"faiss.index": len(vectors.passages)}
    for name, (dim, ntotal) in counts.items():  # faiss.index is absent when a Milvus store holds the passages
        if (dim, ntotal) != (manifest.dimension, expected[name]):
            return f"{name} holds {ntotal} vectors of {dim}, expected {expected[name]} of {manifest.dimension}"
    return None


def _invalid_damage(vectors: Vectors) -> str | None:
    bad = int(invalid_passages(vectors).sum())
    return f"{bad} passages have vectors that are not finite unit vectors" if bad else None


def faiss_header(path: Path) -> tuple[int, int]:
    """(dimension, vector count) from a FAISS file: every index type starts fourcc, d, ntotal.

    Both index kinds qa writes (flat and HNSW-flat) store every vector in float32 after the
    header, so a file shorter than that is truncated, whatever its header says: `qa stats`
    must refuse what `qa ask` would refuse, without loading the file."""
    with open(path, "rb") as fh:
        head = fh.read(16)
        size = os.fstat(fh.fileno()).st_size
    if len(head) < 16:
        raise ValueError(f"{path.name} is truncated")
    _, dim, ntotal = struct.unpack("<4siq", head)
    if dim > 0 and ntotal >= 0 and size < 16 + 4 * dim * ntotal:
        raise ValueError(f"{path.name} is truncated ({size} bytes for {ntotal} vectors of {dim})")
    return dim, ntotal


def describe_error(exc: Exception, limit: int = 120) -> str:
    """An exception from reading a file, on one line: its type and the start of its message."""
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:limit]}"


def check_format(path: Path, manifest: IndexManifest) -> None:
    """An index of another format is refused with the command that rebuilds it."""
    if manifest.format_version != FORMAT_VERSION:
        raise IndexStoreError(f"the index at {path} has format {manifest.format_version}, this version of qa reads "
                              f"{FORMAT_VERSION}; rebuild it with {repair_command(path)} (then it is one full rebuild)")


def read_passages(generation: Path) -> list[Passage]:
    return [Passage.model_validate_json(line) for line in
            (generation / "passages.jsonl").read_text(encoding="utf-8").splitlines() if line]


def read_vectors(generation: Path, manifest: IndexManifest) -> Vectors:
    return Vectors(np.load(generation / "vectors.npy"), np.load(generation / "sentence_spans.npy"),
                   TokenStore.open(generation, manifest.dimension))
