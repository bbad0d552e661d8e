"""Building and updating an index: the corpus read, only new passages embedded, a generation written.

Incremental builds re-embed only passages whose content hash is not in the live generation (its
damaged rows are repaired, not reused); another model, format or chunking rebuilds in full. With
a Milvus store the whole index goes there instead (:mod:`.store_build`); here the local
generation is written and switched in (:mod:`.writing`).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..engines.base import progress_bar
from ..errors import IndexStoreError, QAError
from ..ingest import load_corpus
from ..ingest.sentences import split_sentences
from ..paths import default_corpus, default_index_dir
from ..records import Corpus, Passage
from ..stores.location import StoreLocation, parse_store
from ..text import path_bytes, path_text
from .encoding import PassageInput, encode_passages
from .generations import (generations, is_default, live_damage, live_generation, newest_complete, pointer_name,
                          pointer_problem, read_manifest, rebuild_reason, sources_record)
from .integrity import Vectors, describe_error, invalid_passages, read_passages, read_vectors, structural_damage
from .manifest import FORMAT_VERSION, IndexIdentity, IndexManifest, faiss_params
from .tokens import Int8Codec, TokenStore
from .report import BuildReport, token_counter
from .report import identity_for as _identity_for
from .report import passage_diff as _diff
from .writing import build_lock, write_error, write_generation


def build_index(paths: Sequence[str | Path] | None, index_dir: str | Path | None, embedder, *,
                full: bool = False, progress: bool = False, store: str | StoreLocation | None = None) -> BuildReport:
    """Build or update the index at `index_dir` from `paths` (default: the shipped corpus).

    With no paths, an existing index is updated from the paths it was built from. `store` is a
    --store URI (see :mod:`qa.stores.location`): a Milvus store then holds the whole index and
    `index_dir` is not used (:mod:`.store_build`).
    """
    location = store if isinstance(store, StoreLocation) else parse_store(store, index_dir)
    if location.kind == "milvus":  # the whole index goes to the store, nothing local
        from .store_build import build_in_store

        return build_in_store(paths, location, embedder, full=full, progress=progress)
    index_dir = location.local
    sources = _sources_for(paths, index_dir)
    corpus = read_corpus(sources, embedder, progress=progress)
    note = _older_record_note(paths, index_dir)
    report = update_index(corpus, index_dir, embedder, sources=sources, full=full, progress=progress,
                          store=location if location.kind == "milvus" else None)
    report.warnings[:0] = note
    return report


def read_corpus(sources: Sequence[str | Path], embedder, *, progress: bool = False) -> Corpus:
    """The passages an index of `sources` holds, split by `embedder`'s tokenizer (what `qa text`
    prints, too); `progress`: bars over the files parsed and over long input split."""
    with _SplittingBar(progress) as bar, _ParsingBar(progress) as parsing:
        return load_corpus(sources, count_tokens=token_counter(embedder), max_tokens=embedder.max_tokens,
                           progress=bar.report, progress_files=parsing.report)


class _ParsingBar:
    """A progress bar over the files of other formats than text being parsed, naming each as
    it goes (cached ones are not parsed, so an unchanged folder shows none)."""

    def __init__(self, enabled: bool):
        self.enabled, self.bar = enabled, None

    def report(self, done: int, total: int, name: str) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            self.bar = progress_bar(total, True, desc="parsing", unit="file")
        self.bar.update(done - getattr(self.bar, "n", done))
        if name and hasattr(self.bar, "set_postfix_str"):
            self.bar.set_postfix_str(Path(name).name[-40:])

    def __enter__(self) -> _ParsingBar:
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()


class _SplittingBar:
    """A progress bar over the characters split into passages, on input long enough to wait
    for (a multi-megabyte paragraph is windowed to the model's limit with its tokenizer)."""

    MIN_CHARS = 500_000

    def __init__(self, enabled: bool):
        self.enabled, self.bar = enabled, None

    def report(self, done: int, total: int) -> None:
        if not self.enabled or total < self.MIN_CHARS:
            return
        if self.bar is None:
            self.bar = progress_bar(total, True, desc="splitting", unit="char")
        self.bar.update(done - self.bar.n)

    def __enter__(self) -> _SplittingBar:
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()


def ensure_default_index(embedder, *, notify: Callable[[str], None], progress: bool = False) -> Path:
    """The default index, rebuilt in full from the default corpus first when it is missing or
    cannot serve `embedder`'s model (an upgrade), so the first `qa` just works; `notify` gets
    the one-line messages."""
    path = default_index_dir()
    reason = rebuild_reason(path, embedder.spec)
    if reason is not None:
        notify(f"building the index of the default corpus ({reason})…")
        report = build_index(None, None, embedder, full=True, progress=progress)
        for warning in report.warnings:
            notify(f"warning: {warning}")
        notify(report.summary())
    return path


def _older_record_note(paths: Sequence[str | Path] | None, index_dir: Path) -> list[str]:
    """The warning for a rebuild whose sources come from an older generation's record (the
    live one is gone with its own), so sources added since must be named again."""
    record = None if paths else sources_record(index_dir)
    name = pointer_name(index_dir)
    if record is None or name is None or record[1].name == name:
        return []
    return [f"the live generation {name} is gone with its record of its sources; rebuilt from the "
            f"{len(record[0])} sources {record[1].name} recorded: name PATH if sources were added since"]


def _sources_for(paths: Sequence[str | Path] | None, index_dir: Path) -> list[str]:
    """The paths given, else those the index recorded, else the shipped corpus for the default index.

    Any other index without a readable record is refused: filling it with the shipped articles
    would silently replace an index of another corpus (the build deletes older generations).
    """
    if paths:
        return [str(Path(p).resolve()) for p in paths]
    record = sources_record(index_dir)
    if record:
        return record[0]
    if is_default(index_dir):
        corpus = default_corpus()
        if not corpus.exists():
            raise QAError(f"no articles to index: {path_text(corpus)} does not exist; run qa in a folder that "
                          "holds corpus/, set QA_CORPUS, or name them: `qa index PATH`")
        return [str(corpus.resolve())]
    if generations(index_dir):
        raise IndexStoreError(f"the index at {index_dir} has no readable record of what it was built from; "
                              f"name it: `qa index PATH --index {index_dir}`")
    raise QAError(f"what should {index_dir} index? name the files or folders: `qa index PATH --index {index_dir}`")


def update_index(corpus: Corpus, index_dir: str | Path, embedder, *, sources: list[str] | None = None,
                 full: bool = False, progress: bool = False, store: StoreLocation | None = None) -> BuildReport:
    """Make the index at `index_dir` hold exactly `corpus`, embedding only what it lacks (with a
    Milvus `store`, the index is there and `index_dir` is not used)."""
    if store is not None:
        from .store_build import update_in_store

        return update_in_store(corpus, store, embedder, sources=sources, full=full, progress=progress)
    started = time.perf_counter()
    index_dir = Path(index_dir)
    if not corpus.passages:
        raise QAError(f"no passages found in {', '.join(map(path_text, sources or [])) or 'the corpus'}")
    if index_dir.exists() and not index_dir.is_dir():
        raise IndexStoreError(f"the index path {index_dir} is a file, not a folder")
    try:
        index_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise IndexStoreError(f"cannot create the index folder {index_dir}: {exc.strerror or exc}") from None
    with build_lock(index_dir):
        base, damage, notes = _starting_point(index_dir)
        previous = _previous_state(base) if base is not None else None
        identity = _identity_for(embedder)
        reason = previous.reason(identity) if previous is not None and not full else None
        reuse = {} if (full or reason or previous is None) else previous.reuse
        reason = damage or reason
        if previous is not None and previous.repaired and reuse:
            notes.append(f"re-embedded {previous.repaired} passages whose stored vectors were not finite unit vectors")
        vectors, embedded, padding = _vectors_for(corpus.passages, previous, reuse, embedder, progress)
        manifest = _manifest_for(identity, corpus, vectors, sources or [])
        stored = None
        if previous is not None and previous.manifest.store is not None:
            notes.append(f"the previous generation's vectors stay in {previous.manifest.store.uri}")
        try:
            write_generation(index_dir, manifest, corpus, vectors)
        except (OSError, RuntimeError) as exc:  # disk full (faiss raises RuntimeError), permissions
            raise IndexStoreError(f"could not write the index at {index_dir} ({write_error(exc)}); "
                                  "the previous index, if any, is unchanged") from None
        new, changed, removed = _diff(previous.passages if previous else [], corpus.passages)
    return BuildReport(index=str(index_dir), documents=len(corpus.documents), passages=len(corpus.passages),
                       new=new, changed=changed, removed=removed, embedded=embedded,
                       seconds=time.perf_counter() - started, full=bool(full or reason or previous is None),
                       reason=reason, warnings=corpus.warnings + notes, padding=round(padding, 4), stored=stored)


@dataclass
class _Previous:
    """The live generation as a build sees it: what may be reused, and what must not be."""

    manifest: IndexManifest
    reuse: dict  # content hash -> (passage vector, sentence spans [k, 2], stored token block)
    passages: list[Passage]
    damage: str | None = None  # the arrays cannot be trusted at all
    repaired: int = 0  # passages left out of `reuse` because their vectors are not finite

    def reason(self, target: IndexIdentity) -> str | None:
        """Why nothing can be reused (a rebuild in full), or None."""
        problem = self.manifest.incompatibility(target)
        return problem or (f"the stored index was damaged ({self.damage})" if self.damage else None)


def _starting_point(index_dir: Path) -> tuple[Path | None, str | None, list[str]]:
    """(the generation a build reuses vectors from, why the live one must be rebuilt, notes).

    A damaged live generation (CURRENT names one that is missing or incomplete) is rebuilt in
    full from its own record of its sources; vectors are still reused, by content hash, from
    the newest complete generation, whose arrays are checked like any live one's.
    """
    damage = live_damage(index_dir)
    if damage is not None:
        base = newest_complete(index_dir, but=pointer_name(index_dir))
        how = f"; unchanged passages reuse the vectors of {base.name}" if base is not None else ""
        return base, damage, [f"the index was damaged ({damage}): rebuilt in full{how}"]
    live = live_generation(index_dir)
    problem = pointer_problem(index_dir)
    return live, None, [f"{problem}; updated from {live.name}"] if problem and live is not None else []


def _previous_state(generation: Path) -> _Previous:
    """A generation as a build sees it, checked like `PassageIndex.open` does: damage is repaired,
    not reused."""
    manifest = read_manifest(generation)
    if manifest.format_version != FORMAT_VERSION:
        return _Previous(manifest, {}, _read_passages_or_none(generation))
    try:
        passages = read_passages(generation)
        vectors = read_vectors(generation, manifest)
        damage = structural_damage(manifest, passages, vectors)
    except (OSError, ValueError, RuntimeError) as exc:
        return _Previous(manifest, {}, [], damage=describe_error(exc, 80))
    if damage:
        return _Previous(manifest, {}, passages, damage=damage)
    rows, bad = vectors.sentence_rows(), invalid_passages(vectors)
    reuse = {p.content_hash(): (vectors.passages[i], vectors.spans[rows[i]:rows[i + 1], 1:], vectors.tokens.block(i))
             for i, p in enumerate(passages) if not bad[i]}
    return _Previous(manifest, reuse, passages, repaired=int(bad.sum()))


def _read_passages_or_none(generation: Path) -> list[Passage]:
    try:
        return read_passages(generation)
    except (OSError, ValueError):
        return []


def _manifest_for(identity: IndexIdentity, corpus: Corpus, vectors: Vectors, sources: list[str]) -> IndexManifest:
    """The complete manifest of a generation holding `corpus` embedded as `vectors`."""
    fingerprint = hashlib.sha256()
    for doc in sorted(corpus.documents, key=lambda d: d.doc_id):
        fingerprint.update(f"{doc.doc_id}\0{doc.sha256}\n".encode())
    return IndexManifest(
        **dict(identity), dimension=int(vectors.passages.shape[1]), faiss=faiss_params(len(vectors.passages)),
        tokens=vectors.tokens.codec.record,
        passages=len(corpus.passages), documents=len(corpus.documents),
        corpus_fingerprint=fingerprint.hexdigest()[:32], sources=[path_text(s) for s in sources],
        raw_sources=[path_bytes(s) for s in sources] if any(map(path_bytes, sources)) else [], built_at=time.time(),
    )


def _vectors_for(passages: list[Passage], previous: _Previous | None, reuse: dict, embedder,
                 progress: bool) -> tuple[Vectors, int, float]:
    """Reuse stored vectors and tokens by content hash; embed the rest, one forward pass each."""
    missing = [i for i, p in enumerate(passages) if p.content_hash() not in reuse]
    spans_of = {i: np.asarray(split_sentences(passages[i].text) or [(0, len(passages[i].text))], np.int32)
                for i in missing}
    inputs = [PassageInput(passages[i].embed_text(), len(passages[i].embed_text()) - len(passages[i].text),
                           spans_of[i][:, 1].astype(np.int64)) for i in missing]
    encoded = encode_passages(embedder, inputs, progress=progress and len(inputs) > 64)
    fresh = dict(zip(missing, range(len(missing))))
    rows_p, rows_spans, blocks = [], [], []
    for i, p in enumerate(passages):
        if i in fresh:
            vector, spans, block = encoded.vectors[fresh[i]], spans_of[i], encoded.blocks[fresh[i]]
        else:
            vector, spans, block = reuse[p.content_hash()]
        rows_p.append(vector)
        blocks.append(block)
        rows_spans.append(np.column_stack([np.full(len(spans), i, np.int32), spans]).astype(np.int32))
    codec = Int8Codec(embedder.dimension)
    codes = np.concatenate([b.codes for b in blocks]) if blocks else codec.empty()
    offsets = np.concatenate([[0], np.cumsum([len(b.codes) for b in blocks])]).astype(np.int64)
    sentences = np.concatenate([b.sentences for b in blocks]).astype(np.uint16) if blocks else np.zeros(0, np.uint16)
    vectors = Vectors(np.asarray(rows_p, np.float32).reshape(len(passages), -1), np.concatenate(rows_spans),
                      TokenStore(codec, codes, offsets, sentences))
    return vectors, len(missing), encoded.padding
