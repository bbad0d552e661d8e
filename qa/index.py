"""The persistent passage index: vectors, FAISS, passage metadata and a manifest on disk.

Layout of an index folder::

    CURRENT              names the live generation, replaced atomically (os.replace)
    g000007/             one complete generation
        manifest.json    format, model id and fingerprint, prefixes, chunking, FAISS kind, ...
        passages.jsonl   one Passage a line (text, sources, offsets, content hash)
        documents.json   the documents and their sha256
        vectors.npy      float32 [n, dim], L2-normalised, row i = passage i
        sentences.npy    float32 [m, dim], the sentences of every passage, passage by passage
        sentence_spans.npy   int32 [m, 3]: owning passage, start, end (offsets in its text)
        faiss.index      passages: exact inner product, or HNSW from APPROXIMATE_FROM sentences on
        sentences.faiss  sentences, the same kind of index

Sentences get vectors of their own because a question usually asks for one fact: a passage is
scored by its own vector and by its best sentence (see `search`), and that sentence is the one
marked as the answer, with no embedding at question time.

A build writes a new generation beside the live one and only then switches CURRENT, so a build
killed at any moment (kill -9 included) leaves the previous index intact, and a reader that
opened the previous generation keeps reading it (the previous generation is kept).
Incremental builds re-embed only passages whose content hash is not in the live generation.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from pydantic import BaseModel

from .corpus import Corpus, Document, Passage, load_corpus
from .errors import IndexStoreError, QAError
from .sentences import split_sentences

FORMAT_VERSION = 2
# Exact search while the sentence count (the larger of the two indexes) is below this, HNSW from
# there on. Measured with `python scripts/bench.py --only scaling` (BENCHMARKS.md), three runs on
# this 2-core machine: exact search costs 0.9-1.6 ms per 10k vectors per query, and a question
# searches both indexes, so at 200k sentences (~45k passages) the pair costs 22-37 ms, as much as
# embedding the question (25-32 ms): past that, search would dominate. HNSW (M=32, efSearch=128)
# answers in 0.2-1.6 ms, but its recall@10 against exact search was 0.987 on real sentence
# vectors (PIAF) and only 0.52 on 100k random vectors, so we stay exact while it is affordable.
APPROXIMATE_FROM = 200_000
HNSW_M, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH = 32, 200, 128


class IndexManifest(BaseModel):
    """What an index was built with; a mismatch with the current run forces a full rebuild."""

    format_version: int = FORMAT_VERSION
    model_id: str
    model_fingerprint: str
    query_prefix: str
    passage_prefix: str
    chunking: dict
    dimension: int
    faiss: dict
    passages: int
    documents: int
    corpus_fingerprint: str
    sources: list[str]
    built_at: float

    def incompatibility(self, other: IndexManifest) -> str | None:
        """Why an index with manifest `self` cannot be reused for a run described by `other`."""
        if self.format_version != other.format_version:
            return f"index format {self.format_version}, this version of qa writes {other.format_version}"
        if self.model_fingerprint != other.model_fingerprint:
            return f"built with model {self.model_id} ({self.model_fingerprint}), not {other.model_id} ({other.model_fingerprint})"
        if (self.query_prefix, self.passage_prefix) != (other.query_prefix, other.passage_prefix):
            return "built with other query/passage prefixes"
        if self.chunking != other.chunking:
            return f"built with other chunking parameters ({self.chunking} vs {other.chunking})"
        return None


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

    def summary(self) -> str:
        how = "full rebuild" if self.full else "incremental"
        text = (f"{self.documents} documents, {self.passages} passages: {self.new} new, {self.changed} changed, "
                f"{self.removed} removed; embedded {self.embedded} passages in {self.seconds:.1f} s ({how})")
        return text + (f"; rebuilt because {self.reason}" if self.reason else "")


# --------------------------------------------------------------------------- locations


def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def default_corpus() -> Path:
    """$QA_CORPUS, else the articles shipped in the repository's corpus/."""
    return Path(os.environ.get("QA_CORPUS") or repo_root() / "corpus")


def default_index_dir() -> Path:
    """$QA_INDEX, else embeddings/ at the repository root."""
    return Path(os.environ.get("QA_INDEX") or repo_root() / "embeddings")


# --------------------------------------------------------------------------- reading


@dataclass
class Vectors:
    """Passage vectors and sentence vectors, aligned with a passage list."""

    passages: np.ndarray  # [n, dim]
    sentences: np.ndarray  # [m, dim]
    spans: np.ndarray  # [m, 3] int32: passage row, start, end

    def sentence_rows(self) -> np.ndarray:
        """offsets[i]:offsets[i+1] are the sentence rows of passage i (sentences are grouped)."""
        return np.searchsorted(self.spans[:, 0], np.arange(len(self.passages) + 1)).astype(np.int64)


class PassageIndex:
    """One generation of an index, loaded in memory (vectors, FAISS indexes, passages)."""

    def __init__(self, path: Path, generation: Path, manifest: IndexManifest, passages: list[Passage],
                 documents: list[Document], vectors: Vectors, faiss_passages, faiss_sentences):
        self.path, self.generation, self.manifest = path, generation, manifest
        self.passages, self.documents = passages, documents
        self.vectors, self.sentence_vectors, self.sentence_spans = vectors.passages, vectors.sentences, vectors.spans
        self.sentence_offsets = vectors.sentence_rows()
        self.faiss_passages, self.faiss_sentences = faiss_passages, faiss_sentences

    def __len__(self) -> int:
        return len(self.passages)

    @classmethod
    def open(cls, path: Path | str | None = None) -> PassageIndex:
        """Load the live generation of the index at `path` (default: embeddings/)."""
        path = Path(path or default_index_dir())
        generation = live_generation(path)
        if generation is None:
            how = "`qa index`" if path == default_index_dir() else f"`qa index PATH... --index {path}`"
            raise IndexStoreError(f"no index at {path}; build it with {how}")
        try:
            manifest = read_manifest(generation)
            passages = _read_passages(generation)
            documents = [Document.model_validate(d) for d in
                         json.loads((generation / "documents.json").read_text(encoding="utf-8"))]
            vectors = _read_vectors(generation)
            import faiss

            faiss_passages = faiss.read_index(str(generation / "faiss.index"))
            faiss_sentences = faiss.read_index(str(generation / "sentences.faiss"))
        except (OSError, ValueError, RuntimeError) as exc:
            raise IndexStoreError(f"the index at {path} is damaged ({type(exc).__name__}: {str(exc)[:120]}); "
                                  "rebuild it with `qa index --full`") from None
        if not (len(passages) == len(vectors.passages) == faiss_passages.ntotal
                and len(vectors.sentences) == len(vectors.spans) == faiss_sentences.ntotal):
            raise IndexStoreError(f"the index at {path} is inconsistent; rebuild it with `qa index --full`")
        for index in (faiss_passages, faiss_sentences):
            if "efSearch" in manifest.faiss:
                index.hnsw.efSearch = manifest.faiss["efSearch"]
        return cls(path, generation, manifest, passages, documents, vectors, faiss_passages, faiss_sentences)

    def search(self, queries: np.ndarray, k: int, subset: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k passage rows for each query: by the passage's vector or by one of its sentences.

        `subset` restricts the search to those passage rows, exactly, so a narrow filter still
        returns its best matches instead of whatever survives a global top-k.
        """
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if subset is not None:
            return self._search_subset(queries, k, subset)
        k_passages = min(k, len(self.passages))
        k_sentences = min(k, len(self.sentence_vectors))
        if k_passages == 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        p_scores, p_ids = self.faiss_passages.search(queries, k_passages)
        s_scores, s_ids = self.faiss_sentences.search(queries, k_sentences) if k_sentences else (p_scores[:, :0],) * 2
        owners = np.where(s_ids >= 0, self.sentence_spans[np.maximum(s_ids, 0), 0], -1)
        return np.concatenate([p_scores, s_scores], 1), np.concatenate([p_ids, owners], 1)

    def _search_subset(self, queries: np.ndarray, k: int, subset: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores = queries @ self.vectors[subset].T
        k = min(k, len(subset))
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(scores, top, 1), subset[top]


def _read_passages(generation: Path) -> list[Passage]:
    return [Passage.model_validate_json(line) for line in
            (generation / "passages.jsonl").read_text(encoding="utf-8").splitlines() if line]


def _read_vectors(generation: Path) -> Vectors:
    return Vectors(np.load(generation / "vectors.npy"), np.load(generation / "sentences.npy"),
                   np.load(generation / "sentence_spans.npy"))


def live_generation(path: Path) -> Path | None:
    current = path / "CURRENT"
    try:
        name = current.read_text().strip()
    except OSError:
        return None
    generation = path / name
    return generation if name and (generation / "manifest.json").is_file() else None


def rebuild_reason(path: Path, spec) -> str | None:
    """Why the index at `path` cannot serve model `spec` as it is (None: it can).

    Lets the default index rebuild itself after an upgrade instead of failing on first use.
    """
    generation = live_generation(path)
    if generation is None:
        return "it does not exist yet"
    try:
        manifest = read_manifest(generation)
    except IndexStoreError:
        return "its manifest is unreadable"
    if manifest.format_version != FORMAT_VERSION:
        return f"it has index format {manifest.format_version}, this version of qa reads {FORMAT_VERSION}"
    if manifest.model_fingerprint != spec.fingerprint:
        return f"it was built with another model ({manifest.model_id})"
    return None


def read_manifest(generation: Path) -> IndexManifest:
    try:
        return IndexManifest.model_validate_json((generation / "manifest.json").read_text())
    except (OSError, ValueError) as exc:
        raise IndexStoreError(f"unreadable index manifest in {generation}: {str(exc)[:120]}; "
                              "rebuild it with `qa index --full`") from None


# --------------------------------------------------------------------------- building


def build_index(paths: Sequence[str | Path] | None, index_dir: str | Path | None, embedder, *,
                full: bool = False, progress: bool = False) -> BuildReport:
    """Build or update the index at `index_dir` from `paths` (default: the shipped corpus).

    With no paths, an existing index is updated from the paths it was built from.
    """
    index_dir = Path(index_dir or default_index_dir())
    previous = live_generation(index_dir)
    recorded = read_manifest(previous).sources if previous is not None and not paths else None
    sources = [str(Path(p).resolve()) for p in paths] if paths else recorded or [str(default_corpus().resolve())]
    corpus = load_corpus(sources, count_tokens=_token_counter(embedder), max_tokens=embedder.max_tokens)
    return update_index(corpus, index_dir, embedder, sources=sources, full=full, progress=progress)


def update_index(corpus: Corpus, index_dir: str | Path, embedder, *, sources: list[str] | None = None,
                 full: bool = False, progress: bool = False) -> BuildReport:
    """Make the index at `index_dir` hold exactly `corpus`, embedding only what it lacks."""
    started = time.perf_counter()
    index_dir = Path(index_dir)
    if not corpus.passages:
        raise QAError(f"no passages found in {', '.join(sources or []) or 'the corpus'}")
    if index_dir.exists() and not index_dir.is_dir():
        raise IndexStoreError(f"the index path {index_dir} is a file, not a folder")
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise IndexStoreError(f"cannot create the index folder {index_dir}: {exc.strerror or exc}") from None
    with _build_lock(index_dir):
        previous = _previous_state(index_dir)
        target = _manifest_for(corpus, embedder, sources or [])
        reason = previous[0].incompatibility(target) if previous is not None and not full else None
        reuse = {} if (full or reason or previous is None) else previous[1]
        vectors, embedded = _vectors_for(corpus.passages, reuse, embedder, progress)
        target.faiss = _faiss_params(len(vectors.sentences))
        try:
            _write_generation(index_dir, target, corpus, vectors)
        except OSError as exc:  # disk full, permissions: the live generation is untouched
            raise IndexStoreError(f"could not write the index at {index_dir} ({exc.strerror or exc}); "
                                  "the previous index, if any, is unchanged") from None
        new, changed, removed = _diff(previous[2] if previous else [], corpus.passages)
    return BuildReport(index=str(index_dir), documents=len(corpus.documents), passages=len(corpus.passages),
                       new=new, changed=changed, removed=removed, embedded=embedded,
                       seconds=time.perf_counter() - started, full=bool(full or reason or previous is None),
                       reason=reason, warnings=corpus.warnings)


def _token_counter(embedder):
    prefix = embedder.spec.passage_prefix

    def count(text: str) -> int:
        return embedder.count_tokens(prefix + text)

    return count


@contextlib.contextmanager
def _build_lock(index_dir: Path):
    with open(index_dir / ".lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise IndexStoreError(f"another `qa index` is building {index_dir}; wait for it to finish") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _previous_state(index_dir: Path):
    """(manifest, {content_hash: (passage vector, sentence vectors, spans)}, passages), or None."""
    generation = live_generation(index_dir)
    if generation is None:
        return None
    try:
        manifest = read_manifest(generation)
        passages = _read_passages(generation)
        vectors = _read_vectors(generation)
    except (IndexStoreError, OSError, ValueError):
        return None  # a damaged index is simply rebuilt in full
    if len(passages) != len(vectors.passages):
        return None
    rows = vectors.sentence_rows()
    reuse = {p.content_hash(): (vectors.passages[i], vectors.sentences[rows[i]:rows[i + 1]],
                                vectors.spans[rows[i]:rows[i + 1], 1:])
             for i, p in enumerate(passages)}
    return manifest, reuse, passages


def _manifest_for(corpus: Corpus, embedder, sources: list[str]) -> IndexManifest:
    fingerprint = hashlib.sha256()
    for doc in sorted(corpus.documents, key=lambda d: d.doc_id):
        fingerprint.update(f"{doc.doc_id}\0{doc.sha256}\n".encode())
    spec = embedder.spec
    return IndexManifest(
        model_id=spec.model_id, model_fingerprint=spec.fingerprint, query_prefix=spec.query_prefix,
        passage_prefix=spec.passage_prefix, chunking={"unit": "paragraph", "max_tokens": embedder.max_tokens},
        dimension=0, faiss={}, passages=len(corpus.passages), documents=len(corpus.documents),
        corpus_fingerprint=fingerprint.hexdigest()[:32], sources=sources, built_at=time.time(),
    )


def _vectors_for(passages: list[Passage], reuse: dict, embedder, progress: bool) -> tuple[Vectors, int]:
    """Reuse stored vectors by content hash; embed the rest, passages and sentences, in one call.

    A passage of one sentence and no context reuses its own vector for that sentence.
    """
    missing = [i for i, p in enumerate(passages) if p.content_hash() not in reuse]
    texts, plan = [], {}
    for i in missing:
        p = passages[i]
        spans = split_sentences(p.text) or [(0, len(p.text))]
        own = len(texts)
        texts.append(p.embed_text())
        if len(spans) == 1 and p.embed_text() == p.text:
            plan[i] = (own, [own], spans)
        else:
            plan[i] = (own, list(range(len(texts), len(texts) + len(spans))), spans)
            texts.extend(p.text[a:b] for a, b in spans)
    fresh = embedder.embed_passages(texts, progress=progress and len(texts) > 64) if texts else None
    rows_p, rows_s, rows_spans = [], [], []
    for i, p in enumerate(passages):
        if i in plan:
            own, sentence_rows, spans = plan[i]
            vector, sentences, spans = fresh[own], fresh[sentence_rows], np.asarray(spans, np.int32)
        else:
            vector, sentences, spans = reuse[p.content_hash()]
        rows_p.append(vector)
        rows_s.append(sentences)
        rows_spans.append(np.column_stack([np.full(len(spans), i, np.int32), spans]).astype(np.int32))
    vectors = Vectors(np.asarray(rows_p, np.float32), np.concatenate(rows_s).astype(np.float32),
                      np.concatenate(rows_spans))
    return vectors, len(missing)


def _faiss_params(n: int) -> dict:
    if n < APPROXIMATE_FROM:
        return {"kind": "IndexFlatIP", "exact": True, "approximate_from": APPROXIMATE_FROM}
    return {"kind": "IndexHNSWFlat", "exact": False, "M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION,
            "efSearch": HNSW_EF_SEARCH, "metric": "inner_product", "approximate_from": APPROXIMATE_FROM}


def make_faiss_index(vectors: np.ndarray, params: dict):
    """The FAISS index that `params` (from `_faiss_params`) describes, filled with `vectors`."""
    import faiss

    dim = vectors.shape[1]
    if params["kind"] == "IndexFlatIP":
        index = faiss.IndexFlatIP(dim)
    else:
        index = faiss.IndexHNSWFlat(dim, params["M"], faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = params["efConstruction"]
        index.hnsw.efSearch = params["efSearch"]
    index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


def _write_generation(index_dir: Path, manifest: IndexManifest, corpus: Corpus, vectors: Vectors) -> None:
    """Write a complete new generation, fsync it, then switch CURRENT to it atomically."""
    import faiss

    previous = live_generation(index_dir)
    number = 1 + max([int(p.name[1:]) for p in index_dir.glob("g[0-9]*") if p.name[1:].isdigit()] or [0])
    generation = index_dir / f"g{number:06d}"
    staging = index_dir / f".tmp-g{number:06d}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    manifest.dimension = int(vectors.passages.shape[1])
    with open(staging / "passages.jsonl", "w", encoding="utf-8") as fh:
        for p in corpus.passages:
            fh.write(p.model_dump_json() + "\n")
    (staging / "documents.json").write_text(
        json.dumps([d.model_dump() for d in corpus.documents], ensure_ascii=False, indent=1), encoding="utf-8")
    np.save(staging / "vectors.npy", vectors.passages)
    np.save(staging / "sentences.npy", vectors.sentences)
    np.save(staging / "sentence_spans.npy", vectors.spans)
    faiss.write_index(make_faiss_index(vectors.passages, manifest.faiss), str(staging / "faiss.index"))
    faiss.write_index(make_faiss_index(vectors.sentences, manifest.faiss), str(staging / "sentences.faiss"))
    (staging / "manifest.json").write_text(manifest.model_dump_json(indent=2))
    for item in staging.iterdir():
        _fsync(item)
    os.replace(staging, generation)
    pointer = index_dir / f".CURRENT.tmp-{os.getpid()}"
    pointer.write_text(generation.name + "\n")
    _fsync(pointer)
    os.replace(pointer, index_dir / "CURRENT")
    _fsync(index_dir)
    _remove_stale(index_dir, keep={generation.name, previous.name if previous else ""})


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_stale(index_dir: Path, keep: set[str]) -> None:
    """Generations older than the previous one, and leftovers of killed builds."""
    for item in index_dir.iterdir():
        stale_generation = item.name.startswith("g") and item.name[1:].isdigit() and item.name not in keep
        if stale_generation or item.name.startswith((".tmp-g", ".CURRENT.tmp-")):
            if item.name.endswith(f"-{os.getpid()}"):
                continue
            shutil.rmtree(item, ignore_errors=True) if item.is_dir() else item.unlink(missing_ok=True)


def _diff(old: list[Passage], new: list[Passage]) -> tuple[int, int, int]:
    """(new, changed, removed) passages, a passage being known by its place: (document, paragraph)."""
    before = {(p.doc_id, p.paragraph): p.content_hash() for p in old}
    after = {(p.doc_id, p.paragraph): p.content_hash() for p in new}
    added = sum(1 for key in after if key not in before)
    removed = sum(1 for key in before if key not in after)
    changed = sum(1 for key, digest in after.items() if key in before and before[key] != digest)
    return added, changed, removed
