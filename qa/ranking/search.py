"""Answering questions: dense retrieval fused with BM25, reranked by MaxSim, sentence marked.

`Retriever.open()` loads an index; `search()` returns ranked :class:`Hit` objects and `ask()`
the same plus the weak-answer signal. The ranking, per question:

1. the question is embedded with the model's query prefix: one pass gives its vector and its
   content tokens;
2. candidates: the best passages by their vector and by BM25;
3. fusion: a passage's cosine plus a weighted, max-normalised BM25 score; the weight depends
   on whether the question is in the corpus's language, since BM25 cannot match across
   languages;
4. late interaction: the best candidates are reranked with MaxSim added, the mean over the
   question's tokens of their best cosine among the passage's stored tokens (qa.index.tokens);
5. near-duplicates collapse into one hit listing every source;
6. in each hit, the sentence whose own tokens best match the question's is marked.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from pydantic import BaseModel, model_serializer

from ..engines import Embedder, load_embedder
from ..errors import QAError
from ..index import BuildReport, PassageIndex, build_index, ensure_default_index, live_generation, read_manifest
from ..index.generations import is_default
from .filters import Filters, date_in, doc_matches, lead_with_a_match, matches, no_match_message
from .filters import date_in as _date_in  # noqa: F401  (its former name)
from .lexical import LexicalIndex, guess_language
from ..model import model_name_for
from .params import DEFAULT_RANKING, MODES, Mode, RankingParams, check_date, check_k, check_mode  # noqa: F401
from ..paths import default_index_dir
from ..records import Excerpt, Passage
from ..stores.base import Restriction
from ..stores.location import parse_store
from ..text import valid_text, words
from ..index.tokens import best_sentence, maxsim

# The constants by their former names, for scripts that read them.
LEXICAL_WEIGHT_SAME_LANGUAGE = DEFAULT_RANKING.lexical_weight_same_language
LEXICAL_WEIGHT_OTHER_LANGUAGE = DEFAULT_RANKING.lexical_weight_other_language
CANDIDATES = DEFAULT_RANKING.candidates
DUPLICATE_COSINE = DEFAULT_RANKING.duplicate_cosine
WEAK_MARGIN = DEFAULT_RANKING.weak_margin


class Hit(Excerpt):
    """One ranked answer: a passage's excerpt (text, sources), its ranking and its best sentence."""

    passage_id: str
    rank: int
    score: float
    similarity: float
    lexical: float
    sentence: str
    sentence_start: int
    sentence_end: int

    @model_serializer(mode="wrap")
    def _ranking_first(self, handler):
        """JSON shows the ranking and the text first, then where it comes from (the order of
        `qa ask --json` before Hit extended Excerpt)."""
        data = handler(self)
        return {k: data[k] for k in _HIT_JSON_FIRST if k in data} | data


_HIT_JSON_FIRST = ("rank", "score", "similarity", "lexical", "text", "sentence", "sentence_start", "sentence_end",
                   "passage_id")


class Answer(BaseModel):
    question: str
    hits: list[Hit]
    weak: bool
    confidence: float  # how far the best passage stands above the typical candidate
    note: str | None = None


class Retriever:
    """Question -> ranked passages, over one index and one model. Safe to share across threads."""

    def __init__(self, index: PassageIndex, embedder: Embedder, params: RankingParams = DEFAULT_RANKING):
        self.index, self.embedder, self.params = index, embedder, params
        self._lexical: LexicalIndex | None = None
        self._lock = threading.Lock()

    @classmethod
    def open(cls, index: str | Path | None = None, model: str | None = None, *, backend: str | None = None,
             threads: int | None = None, precision: str | None = None, params: RankingParams = DEFAULT_RANKING,
             build_missing: bool = False,
             notify: Callable[[str], None] | None = None, progress: bool = False,
             store: str | None = None) -> Retriever:
        """Open the index (default: embeddings/) with the model it was built with.

        `model` overrides the model; it must be the one the index was built with. `backend`
        (auto, onnx, torch), `threads` and `precision` (auto, fp32, int8) choose the engine; any engine
        serves any index of its model.
        With `build_missing` and no `index`, the default index is first (re)built from the default
        corpus when it is missing or made with another model (what `qa` and `qa ask` do), with
        `model`; `notify` receives the one-line messages and `progress` shows a progress bar.
        `store` is a --store URI (:mod:`qa.stores.location`): `milvus:PATH.db` or
        `http://host:19530` name a Milvus index, which lives wholly in the store (`index` is not used).
        """
        location = parse_store(store, index)
        if location.kind == "milvus":  # the whole index is in the store: its manifest names the model
            stored = PassageIndex.open(None, location)
            try:
                embedder = cls._embedder_for(stored.manifest, stored.path, model, backend, threads, precision)
            except BaseException:
                stored.close()
                raise
            return cls(stored, embedder, params)
        if store is not None:
            index = location.local
        if index is None and build_missing and store is None:
            embedder = load_embedder(model, backend=backend, threads=threads, precision=precision)
            embedder.preload()  # the engine loads while the index is checked and read
            path = ensure_default_index(embedder, notify=notify or (lambda message: None), progress=progress)
            return cls(PassageIndex.open(path), embedder, params)
        path = Path(index or default_index_dir())
        generation = live_generation(path)
        if generation is None:
            PassageIndex.open(path)  # raises the one-line "no index at ..." error
        embedder = cls._embedder_for(read_manifest(generation), path, model, backend, threads, precision)
        embedder.preload()  # the engine loads while the index is read
        return cls(PassageIndex.open(path), embedder, params)

    @staticmethod
    def _embedder_for(manifest, where, model: str | None, backend: str | None, threads: int | None,
                      precision: str | None) -> Embedder:
        """The engine of the model the index was built with (`model` must be that one)."""
        embedder = load_embedder(model or model_name_for(manifest.model_id), backend=backend, threads=threads,
                                 precision=precision)
        if embedder.spec.fingerprint != manifest.model_fingerprint:
            raise QAError(_model_mismatch(where, manifest, embedder.spec))
        return embedder

    def reindexed(self, progress: bool = False) -> tuple[Retriever, BuildReport]:
        """Update the index from the sources it records (only new or changed passages are
        embedded) and return a retriever over the new generation, its BM25 index built, with
        the same engine and parameters; this retriever keeps reading the old generation."""
        store = getattr(self.index, "location", None) if self.index.store is not None else None
        if store is not None:
            self.index.close()  # Milvus Lite serves one process, one client at a time
        report = build_index(None, self.index.path, self.embedder, progress=progress, store=store)
        fresh = Retriever(PassageIndex.open(self.index.path, store), self.embedder, self.params)
        _ = fresh.lexical
        return fresh, report

    @property
    def lexical(self) -> LexicalIndex:
        if self._lexical is None:
            with self._lock:
                if self._lexical is None:
                    self._lexical = LexicalIndex([p.embed_text() for p in self.index.passages])
        return self._lexical

    def warm_up(self) -> None:
        """Load the model and the lexical index now rather than on the first question."""
        self.embedder.embed_queries_with_tokens(["warm up"])
        _ = self.lexical

    # ------------------------------------------------------------------ public API

    def search(self, question: str, k: int = 5, *, mode: Mode = "default", doc: str | None = None,
               date_from: str | None = None, date_to: str | None = None) -> list[Hit]:
        """The `k` best hits for `question`, optionally only in documents matching the glob `doc`
        and dated from `date_from` to `date_to` (YYYY, YYYY-MM or YYYY-MM-DD, inclusive)."""
        return self.ask(question, k, mode=mode, doc=doc, date_from=date_from, date_to=date_to).hits

    def ask(self, question: str, k: int = 5, *, mode: Mode = "default", doc: str | None = None,
            date_from: str | None = None, date_to: str | None = None) -> Answer:
        """:meth:`search` plus the weak-answer signal."""
        return self.ask_many([question], k, mode=mode, doc=doc, date_from=date_from, date_to=date_to)[0]

    def ask_many(self, questions: Sequence[str], k: int = 5, *, mode: Mode = "default", doc: str | None = None,
                 date_from: str | None = None, date_to: str | None = None) -> list[Answer]:
        """Answer several questions with one batched embedding call."""
        questions = [valid_text(q).strip() for q in questions]  # the tokenizer takes valid str only
        if any(not q for q in questions):
            raise QAError("empty question: type a question, e.g. \"where did Kim meet Putin?\"")
        check_k(k)
        check_mode(mode)
        filters = Filters(doc=doc, date_from=check_date(date_from) if date_from else None,
                          date_to=check_date(date_to) if date_to else None)
        subset = self._subset(filters)
        restriction = self._restriction(filters) if subset is not None and self.index.store is not None else None
        embedded = self.embedder.embed_queries_with_tokens(questions) if mode != "lexical" else None
        answers = []
        for i, question in enumerate(questions):
            query = (embedded.vectors[i], embedded.of(i)) if embedded is not None else None
            ranked, confidence = self._rank(question, query, k, mode, subset, restriction)
            if filters.active():
                for hit in ranked:
                    lead_with_a_match(hit, filters)
            weak = mode != "lexical" and confidence < self.params.weak_margin
            answers.append(Answer(question=question, hits=ranked, weak=weak, confidence=round(confidence, 4),
                                  note="no passage answers this clearly" if weak else None))
        return answers

    def rank_ids(self, questions: Sequence[str], k: int = 10, *, mode: Mode = "default") -> list[list[str]]:
        """Passage ids in rank order: what evaluation needs."""
        return [[h.passage_id for h in a.hits] for a in self.ask_many(questions, k, mode=mode)]

    # ------------------------------------------------------------------ ranking

    def _rank(self, question: str, query: tuple[np.ndarray, np.ndarray] | None, k: int, mode: Mode,
              subset: np.ndarray | None, restriction: Restriction | None = None) -> tuple[list[Hit], float]:
        """Candidates from the passage vectors and BM25, fused; the best reranked by MaxSim."""
        qvec, qtokens = query if query is not None else (None, None)
        n_candidates = max(self.params.candidates, 4 * k)
        candidates: set[int] = set()
        if qvec is not None:
            _, ids = self.index.search(qvec[None, :], n_candidates, subset, restriction)
            candidates.update(int(i) for i in ids[0] if i >= 0)
        lexical = np.zeros(len(self.index), np.float32)
        weight, lexical_query = self._lexical_plan(question, mode)
        if weight > 0:
            lexical = self.lexical.scores(lexical_query)
            if subset is not None:
                keep = np.zeros(len(self.index), bool)
                keep[subset] = True
                lexical = np.where(keep, lexical, 0)
            top_lexical = np.argsort(-lexical, kind="stable")[:n_candidates]
            candidates.update(int(i) for i in top_lexical if lexical[i] > 0)
        if not candidates:
            return [], 0.0
        rows = np.fromiter(sorted(candidates), np.int64)
        dense = self.index.vectors[rows] @ qvec if qvec is not None else np.zeros(len(rows), np.float32)
        lexical_scores = lexical[rows]
        lexical_norm = lexical_scores / lexical_scores.max() if lexical_scores.max() > 0 else lexical_scores
        fused = lexical_norm if mode == "lexical" else dense + weight * lexical_norm
        order = np.argsort(-fused, kind="stable")
        alignments: dict[int, np.ndarray] = {}
        if qtokens is not None:
            order, fused, alignments = self._rerank(rows, order, fused, qtokens, k)
        hits = self._collapse(rows[order], fused[order], dense[order], lexical_scores[order], qtokens, k, alignments)
        return hits, self._confidence(dense)

    def _rerank(self, rows: np.ndarray, order: np.ndarray, fused: np.ndarray, qtokens: np.ndarray,
                k: int) -> tuple[np.ndarray, np.ndarray, dict[int, np.ndarray]]:
        """The first max(rerank_depth, 2 k) candidates in `order` reordered by their fused score
        plus maxsim_weight x MaxSim; the others follow in their order. Also each reranked
        passage's question-by-token cosines, by passage row, for marking its answer sentence."""
        depth = min(len(order), max(self.params.rerank_depth, 2 * k)) if self.params.rerank_depth else 0
        if depth == 0 or len(qtokens) == 0 or self.params.maxsim_weight == 0:
            return order, fused, {}
        top = order[:depth]
        similarities, counts = self.index.tokens.similarities(qtokens, rows[top])
        fused = fused.copy()
        fused[top] += self.params.maxsim_weight * maxsim(similarities, counts)
        ends = np.cumsum(counts)
        alignments = {int(row): similarities[:, end - count:end] for row, end, count in zip(rows[top], ends, counts)}
        return np.concatenate([top[np.argsort(-fused[top], kind="stable")], order[depth:]]), fused, alignments

    def _lexical_plan(self, question: str, mode: Mode) -> tuple[float, str]:
        """(BM25's weight in the fusion, the text BM25 is asked): the whole question when it is
        in the corpus's language or its language cannot be told, else only its numbers (also
        when the corpus's own language could not be told: a mixed corpus)."""
        if mode == "dense":
            return 0.0, question
        if mode == "lexical":
            return 1.0, question
        if mode == "hybrid":
            return self.params.lexical_weight_same_language, question
        question_language = guess_language([question])
        if question_language is None or question_language == self.lexical.language:
            return self.params.lexical_weight_same_language, question
        if self.params.lexical_weight_other_language > 0:
            return self.params.lexical_weight_other_language, question
        numbers = " ".join(word for word in words(question) if any(c.isdigit() for c in word))
        return (self.params.numbers_weight_other_language if numbers else 0.0), numbers

    @staticmethod
    def _confidence(dense_scores: np.ndarray) -> float:
        """Best dense score minus the median candidate's: relative, since e5 cosines bunch up."""
        if len(dense_scores) < 5:
            return 1.0  # too few passages to tell; never call an answer weak on that alone
        return float(dense_scores.max() - np.median(dense_scores))

    def _collapse(self, rows, fused, dense, lexical, qtokens: np.ndarray | None, k: int,
                  alignments: dict[int, np.ndarray] | None = None) -> list[Hit]:
        """Take hits in order, folding a near-duplicate of an earlier hit into its sources."""
        kept: list[int] = []
        hits: list[Hit] = []
        for row, score, sim, lex in zip(rows, fused, dense, lexical):
            passage = self.index.passages[row]
            duplicate_of = next((j for j, r in enumerate(kept) if self._near_duplicate(r, int(row))), None)
            if duplicate_of is not None:
                _merge_sources(hits[duplicate_of], passage)
                continue
            if len(hits) == k:
                break
            kept.append(int(row))
            _, start, end = (int(x) for x in self.index.sentence_spans[self._answer_sentence(int(row), qtokens, alignments or {})])
            hits.append(_hit(passage, len(hits) + 1, float(score), float(sim), float(lex), start, end))
        return hits

    def _answer_sentence(self, row: int, qtokens: np.ndarray | None, alignments: dict[int, np.ndarray]) -> int:
        """The sentence row to mark: the one whose tokens best match the question's (MaxSim
        over that sentence alone); the passage's first sentence without question tokens. The
        rerank has computed the cosines of the passages it reordered (`alignments`)."""
        first = int(self.index.sentence_offsets[row])
        count = int(self.index.sentence_offsets[row + 1]) - first
        if qtokens is None or len(qtokens) == 0 or count <= 1:
            return first
        similarities = alignments.get(row)
        if similarities is None:
            similarities, _ = self.index.tokens.similarities(qtokens, np.array([row]))
        number = best_sentence(similarities, self.index.tokens.sentences_of(row))
        return first + min(number, count - 1) if number is not None else first

    def _near_duplicate(self, a: int, b: int) -> bool:
        return float(self.index.vectors[a] @ self.index.vectors[b]) >= self.params.duplicate_cosine

    # ------------------------------------------------------------------ filters

    def _subset(self, filters: Filters) -> np.ndarray | None:
        if not filters.active():
            return None
        for value in (filters.date_from, filters.date_to):
            if value:
                check_date(value)
        if filters.date_from and filters.date_to and not date_in(filters.date_from, None, filters.date_to):
            raise QAError(f"the date range is reversed: from {filters.date_from} to {filters.date_to}")
        rows = [i for i, p in enumerate(self.index.passages) if matches(p, filters)]
        if not rows:
            raise QAError(no_match_message(filters, self.index.documents))
        return np.asarray(rows, np.int64)

    def _restriction(self, filters: Filters) -> Restriction:
        """The filters as scalar conditions a vector store applies itself: the document ids the
        glob matches and the dates within the range, both read from the local documents.json."""
        docs = dates = None
        if filters.doc:
            docs = frozenset(d.doc_id for d in self.index.documents if doc_matches(d.doc_id, filters.doc))
        if filters.date_from or filters.date_to:
            known = {s.date for p in self.index.passages for s in p.sources() if s.date}
            dates = frozenset(d for d in known if date_in(d, filters.date_from, filters.date_to))
        return Restriction(doc_ids=docs, dates=dates)


def _hit(p: Passage, rank: int, score: float, similarity: float, lexical: float, start: int, end: int) -> Hit:
    return Hit(**p.excerpt_fields(), passage_id=p.id, rank=rank, score=round(score, 4),
               similarity=round(similarity, 4), lexical=round(lexical, 3), sentence=p.text[start:end],
               sentence_start=start, sentence_end=end)


def _merge_sources(hit: Hit, duplicate: Passage) -> None:
    known = {(hit.doc_id, hit.paragraph)} | {(s.doc_id, s.paragraph) for s in hit.other_sources}
    for source in duplicate.sources():
        if (source.doc_id, source.paragraph) not in known:
            hit.other_sources.append(source)
            known.add((source.doc_id, source.paragraph))


def _model_mismatch(path: Path | str, manifest, spec) -> str:
    """Why the index cannot be asked with this model, and the command that rebuilds it for it
    (`path` is a folder, or a Milvus index's --store as the user wrote it)."""
    if manifest.model_id == spec.model_id:
        what = (f"another copy of {spec.model_id} (weights {manifest.model_fingerprint}; this one's are "
                f"{spec.fingerprint})")
    else:
        what = f"{manifest.model_id}, not {spec.model_id}"
    if isinstance(path, str):
        return f"the index in {path} was built with {what}; rebuild it with `qa index --full --store {path}`, or pass its --model"
    rebuild = "`qa index --full`" if is_default(path) else f"`qa index --full --index {path}`"
    return f"the index at {path} was built with {what}; rebuild it with {rebuild}, or pass its --model"
