"""The persistent passage index: vectors, FAISS, passage metadata and a manifest on disk.

Layout of an index folder::

    CURRENT              names the live generation, replaced atomically (os.replace)
    g000007/             one complete generation
        manifest.json    format, model id and fingerprint, prefixes, chunking, FAISS kind, ...
        passages.jsonl   one Passage a line (text, sources, offsets, content hash)
        documents.json   the documents and their sha256
        vectors.npy      float32 [n, dim], L2-normalised, row i = passage i
        faiss.index      the passage vectors: exact inner product, or HNSW from APPROXIMATE_FROM on
        token_codes.npy  every passage's content tokens, compressed (:mod:`.tokens`), memory-mapped
        token_offsets.npy    int64 [n + 1]: passage i's tokens are rows offsets[i]:offsets[i + 1]
        token_sentences.npy  uint16 [T]: the sentence of its passage each token is in
        sentence_spans.npy   int32 [m, 3]: owning passage, start, end (offsets in its text)

One forward pass per passage gives its vector and its tokens. Candidates come from the vectors
(and BM25); the best are reranked by MaxSim between the question's tokens and theirs (see
:mod:`qa.ranking.search`), and the sentence holding the best-matching tokens is the one marked as the answer.

A build writes a new generation beside the live one and only then switches CURRENT, so a build
killed at any moment (kill -9 included) leaves the previous index intact, and a reader that
opened the previous generation keeps reading it (the previous generation is kept).
Incremental builds re-embed only passages whose content hash is not in the live generation.

With `--store milvus:PATH.db` or `--store http://host:19530` the passage vectors are also written
to a Milvus collection (:mod:`qa.stores.milvus_store`), which then answers the passage search
with document and date filters pushed down to it; the generation records the store in its
manifest and holds no faiss.index. See :mod:`qa.stores.milvus_store` for how a build keeps the
generations atomic there.
One module a concern: :mod:`.manifest` (what a generation records), :mod:`.generations` (which
one is live, which are complete), :mod:`.integrity` (reading the arrays, checking them whole),
:mod:`.reading` (:class:`PassageIndex`, `describe`), :mod:`.tokens` (the int8 token store and
MaxSim), :mod:`.encoding` (one forward pass per passage), :mod:`.building` (what to embed),
:mod:`.writing` (atomic generations, the build lock).
"""

from .building import BuildReport, build_index, ensure_default_index, read_corpus, token_counter, update_index
from .generations import (GENERATION_FILES, live_generation, pointer_problem, read_manifest, rebuild_reason,
                          recorded_sources, repair_command)
from .integrity import Vectors, invalid_passages, structural_damage
from .manifest import (APPROXIMATE_FROM, FORMAT_VERSION, HNSW_EF_CONSTRUCTION, HNSW_EF_SEARCH, HNSW_M, Chunking,
                       ExactFaiss, HnswFaiss, IndexIdentity, IndexManifest, faiss_params, make_faiss_index)
from .reading import IndexStats, PassageIndex, describe, inspect_index

__all__ = ["APPROXIMATE_FROM", "FORMAT_VERSION", "GENERATION_FILES", "HNSW_EF_CONSTRUCTION", "HNSW_EF_SEARCH", "HNSW_M",
           "BuildReport", "Chunking", "ExactFaiss", "HnswFaiss", "IndexIdentity", "IndexManifest", "IndexStats",
           "PassageIndex", "Vectors", "build_index", "read_corpus", "describe", "ensure_default_index", "faiss_params",
           "inspect_index", "live_generation", "make_faiss_index", "invalid_passages", "pointer_problem", "read_manifest",
           "rebuild_reason", "recorded_sources", "repair_command", "structural_damage", "token_counter", "update_index"]
