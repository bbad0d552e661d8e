"""Building a Milvus index: passages embedded and written to the store as they come, then switched in.

Nothing is written locally. A build connects to the store, reads the live generation (its rows'
keys and records), writes only the rows the store lacks — a passage whose text is unchanged but
whose sources moved gets a new row from its old row's vector and tokens, without the model —
embedding the rest in slices of STREAM_PASSAGES and writing each slice as soon as it is done
(a 1M-passage build never holds more than one slice of tokens). Then it flushes, writes the new
generation's documents, row list and manifest (:mod:`qa.stores.milvus_meta`), switches CURRENT,
and only then deletes the rows and generations that neither the new nor the previous one uses.
Killed at any moment, it leaves the previous generation answering; its stray rows are named by
no generation and the next build deletes them.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..engines.base import progress_bar
from ..errors import IndexStoreError, QAError
from ..ingest import load_corpus
from ..ingest.sentences import split_sentences
from ..records import Corpus, Passage
from ..stores.base import StoreRecord
from ..stores.location import StoreLocation
from ..stores.milvus_index import index_for, move_aside, passage_fields
from ..stores.milvus_store import MAX_SOURCES, SCHEMA_VERSION, TOKEN_FIELDS
from ..text import path_bytes, path_text
from .encoding import PassageInput, encode_passages
from .manifest import ExactFaiss, IndexIdentity, IndexManifest
from .report import BuildReport, token_counter
from .report import identity_for as _identity_for
from .report import passage_diff as _diff
from .stored import (StoredBuildState, decode_tokens, encode_tokens, open_log, previous_state, read_live, record_json,
                     row_key, unreadable)
from .tokens import Int8Codec

STREAM_PASSAGES = 512  # passages embedded, then written, at a time


def build_in_store(paths: Sequence[str | Path] | None, location: StoreLocation, embedder, *, full: bool = False,
                   progress: bool = False):
    """`qa index --store milvus:...|http://...`: the paths given, else those the live generation
    was built from."""
    if paths:
        sources = [str(Path(p).resolve()) for p in paths]
    else:
        sources = _recorded_sources(location)
    corpus = load_corpus(sources, count_tokens=token_counter(embedder), max_tokens=embedder.max_tokens)
    return update_in_store(corpus, location, embedder, sources=sources, full=full, progress=progress)


def _recorded_sources(location: StoreLocation) -> list[str]:
    shown = location.shown()
    try:
        store, log = open_log(location)
    except IndexStoreError:
        raise QAError(f"what should {shown} index? name the files or folders: `qa index --store {shown} PATH`") from None
    try:
        _, manifest, _ = read_live(location, store, log)
        return manifest.source_paths()
    except IndexStoreError:
        raise QAError(f"what should {shown} index? name the files or folders: `qa index --store {shown} PATH`") from None
    finally:
        store.close()


def update_in_store(corpus: Corpus, location: StoreLocation, embedder, *, sources: list[str] | None = None,
                    full: bool = False, progress: bool = False):
    """Make the Milvus index at `location` hold exactly `corpus`, embedding only what it lacks."""
    started = time.perf_counter()
    if not corpus.passages:
        raise QAError(f"no passages found in {', '.join(map(path_text, sources or [])) or 'the corpus'}")
    notes: list[str] = []
    identity = _identity_for(embedder)
    store, log, previous = _prepare(location, full, notes, embedder.dimension, len(corpus.passages))
    try:
        reason = previous.manifest.incompatibility(identity) if previous is not None and not full else None
        stored, embedded, dropped = _write_rows(store, corpus.passages, previous, embedder,
                                                reuse=not (full or reason), progress=progress)
        if dropped:
            notes.append(f"{dropped} sources of passages cited in thousands of places were not stored (a Milvus "
                         "row holds 65,535 bytes)")
        keys = stored["keys"]
        manifest = _manifest(identity, corpus, embedder.dimension, sources or [], location)
        name = log.next_name()
        documents = json.dumps([d.model_dump(mode="json") for d in corpus.documents], ensure_ascii=True)
        log.write(name, manifest.model_dump_json(), documents, keys)
        log.switch(name)
        notes += _clean_up(store, log, name, keys, previous)
    except (IndexStoreError, QAError):
        raise
    except Exception as exc:  # noqa: BLE001 - pymilvus's errors: one line, the previous generation intact
        raise IndexStoreError(f"could not write the index to {location.shown()} "
                              f"({' '.join(str(getattr(exc, 'message', '') or exc).split())[:160]}); "
                              "the previous generation, if any, still answers") from None
    finally:
        store.close()
    new, changed, removed = _diff(previous.passages if previous else [], corpus.passages)
    return BuildReport(index=location.shown(), documents=len(corpus.documents), passages=len(corpus.passages),
                       new=new, changed=changed, removed=removed, embedded=embedded,
                       seconds=time.perf_counter() - started, full=bool(full or reason or previous is None),
                       reason=reason, warnings=corpus.warnings + notes, stored=stored["written"])


def _prepare(location: StoreLocation, full: bool, notes: list[str], dimension: int, n: int):
    """(store, log, live generation or None), the collections created when missing or of another
    format; with --full, a damaged Milvus Lite file is moved aside and a new one started."""
    store = None
    try:
        store, log = open_log(location, create=True)
        previous = previous_state(location, store, log) if store.exists() and log.exists() else None
        if _needs_new_collections(store, log, previous, dimension):
            if store.exists() or log.exists():
                notes.append(f"replaced the collection {location.collection}: it was not a complete qa index of "
                             "this format and dimension")
            _reset(store, log, dimension, n)
            previous = None
        return store, log, previous
    except Exception as exc:  # noqa: BLE001 - damage: repaired by --full on Milvus Lite, else one line
        if store is not None:
            store.close()
        if not (full and location.lite) or "another process has it open" in str(exc):
            raise exc if isinstance(exc, IndexStoreError) else unreadable(location, exc) from None
    aside = move_aside(location)
    notes.append(f"moved the damaged {location.uri} aside to {aside}")
    store, log = open_log(location, create=True)
    _reset(store, log, dimension, n)
    return store, log, None


def _reset(store, log, dimension: int, n: int) -> None:
    store.drop(), log.drop()
    store.create(dimension, {"schema": SCHEMA_VERSION}, **index_for(n))
    log.create()


def _needs_new_collections(store, log, previous: StoredBuildState | None, dimension: int) -> bool:
    """Whether the collections must be made anew: missing, of another format or dimension, or with
    no readable generation to keep (a first build killed, or damage: nothing there answers)."""
    if previous is None or store.schema_version() != SCHEMA_VERSION:
        return True
    return previous.manifest.dimension != dimension


def _write_rows(store, passages: list[Passage], previous: StoredBuildState | None, embedder, *, reuse: bool,
                progress: bool) -> tuple[dict, int, int]:
    """Every row the generation needs, written: ({keys, written}, passages embedded, sources dropped)."""
    fingerprint = embedder.spec.fingerprint
    spans = [np.asarray(split_sentences(p.text) or [(0, len(p.text))], np.int32) for p in passages]
    records, dropped = [], 0
    for p, s in zip(passages, spans):
        text, lost = record_json(p, s)
        records.append(text)
        dropped += lost
    keys = [row_key(fingerprint, r) for r in records]
    present = set(store.fetch(keys, [])) if reuse else set()
    missing = [i for i, key in enumerate(keys) if key not in present]
    old_rows = {}
    if reuse and previous is not None:
        old_rows = {p.content_hash(): k for p, k in zip(previous.passages, previous.keys)}
    copied = [i for i in missing if passages[i].content_hash() in old_rows]
    written, copied_keys = 0, set()
    width = Int8Codec(embedder.dimension).width
    for start in range(0, len(copied), 256):  # sources changed, text not: the old row's vector and tokens
        chunk = copied[start:start + 256]
        old = store.fetch([old_rows[passages[i].content_hash()] for i in chunk], ["vector", *TOKEN_FIELDS])
        rows = []
        for i in chunk:
            found = old.get(old_rows[passages[i].content_hash()])
            if found is None:
                continue
            tokens = {name: found.get(name) or "" for name in TOKEN_FIELDS}
            try:
                decode_tokens(tokens, width)  # a damaged row is re-embedded, not copied
            except ValueError:
                continue
            rows.append(_row(keys[i], passages[i], records[i], np.asarray(found["vector"], np.float32), tokens))
        written += store.write_rows(rows)
        copied_keys.update(row["pk"] for row in rows)
    to_embed = [i for i in missing if keys[i] not in copied_keys]
    bar = progress_bar(len(to_embed), progress and len(to_embed) > 64)
    for start in range(0, len(to_embed), STREAM_PASSAGES):  # written as embedded: one slice of tokens held
        chunk = to_embed[start:start + STREAM_PASSAGES]
        inputs = [PassageInput(passages[i].embed_text(), len(passages[i].embed_text()) - len(passages[i].text),
                               spans[i][:, 1].astype(np.int64)) for i in chunk]
        encoded = encode_passages(embedder, inputs, bar=bar)
        rows = [_row(keys[i], passages[i], records[i], encoded.vectors[j], encode_tokens(encoded.blocks[j]))
                for j, i in enumerate(chunk)]
        written += store.write_rows(rows)
    bar.close()
    if written:
        store.flush()
    return {"keys": keys, "written": written}, len(to_embed), dropped


def _row(key: str, passage: Passage, record: str, vector: np.ndarray, tokens: dict) -> dict:
    fields = passage_fields(passage)
    return {"pk": key, "content_hash": passage.content_hash(), "vector": np.asarray(vector, np.float32),
            "doc_ids": list(fields.doc_ids[:MAX_SOURCES]), "dates": list(fields.dates[:MAX_SOURCES]),
            "doc_id": passage.doc_id, "date": passage.date or "", "record": record, **tokens}


def _manifest(identity: IndexIdentity, corpus: Corpus, dimension: int, sources: list[str],
              location: StoreLocation) -> IndexManifest:
    fingerprint = hashlib.sha256()
    for doc in sorted(corpus.documents, key=lambda d: d.doc_id):
        fingerprint.update(f"{doc.doc_id}\0{doc.sha256}\n".encode())
    return IndexManifest(
        **dict(identity), dimension=dimension, faiss=ExactFaiss(), tokens=Int8Codec(dimension).record,
        passages=len(corpus.passages), documents=len(corpus.documents),
        corpus_fingerprint=fingerprint.hexdigest()[:32], sources=[path_text(s) for s in sources],
        raw_sources=[path_bytes(s) for s in sources] if any(map(path_bytes, sources)) else [], built_at=time.time(),
        store=StoreRecord(uri=location.uri, collection=location.collection, owner=uuid.uuid4().hex))


def _clean_up(store, log, name: str, keys: list[str], previous: StoredBuildState | None) -> list[str]:
    """After the switch: rows and generations neither the new nor the previous generation uses."""
    keep = set(keys) | set(previous.keys if previous else ())
    try:
        log.forget({name, previous.name if previous else name})
        stale = store.all_ids() - keep
        if stale:
            store.delete(sorted(stale))
    except Exception as exc:  # noqa: BLE001 - the new generation is live: say it, do not fail the build
        return [f"could not delete unused rows from {store.location.shown()} "
                f"({' '.join(str(exc).split())[:120]}); the next build retries"]
    return []
