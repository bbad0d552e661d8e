"""Retrieval quality on a dataset: `qa eval DATASET_DIR`.

A dataset folder holds `corpus.jsonl` ({id, doc_id, text} a line) and `queries.jsonl`
({id, question, lang, gold_ids} a line), the format of `../shared/datasets/`. The corpus is
indexed as given (its paragraphs are the passages, their ids the dataset's), in a cache folder
keyed by the corpus's hash and the model, so a second run embeds nothing.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, Field, ValidationError

from .errors import QAError
from .paths import cache_dir
from .records import Corpus, Document, Passage
from .ranking import MODES, check_k  # noqa: F401  (MODES: scripts/eval_all.py reads it here)
from .ranking.search import Retriever


def _number_as_id(value):
    """Ids may be written as JSON numbers; any other non-string is left for validation to refuse."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


Id = Annotated[str, BeforeValidator(_number_as_id)]


class Query(BaseModel):
    id: Id
    question: str
    lang: str | None = None
    gold_ids: list[Id]


class QueryRow(Query):
    """A line of queries.jsonl: a question that cannot be scored without gold ids is refused."""

    gold_ids: list[Id] = Field(min_length=1)


class CorpusRow(BaseModel):
    """A line of corpus.jsonl."""

    id: Id
    doc_id: Id
    text: str


class Scores(BaseModel):
    """Percentages, as in the datasets' README."""

    dataset: str
    mode: str
    questions: int
    recall_at_1: float
    recall_at_k: float
    mrr_at_k: float
    ndcg_at_k: float
    k: int


def load_dataset(folder: Path) -> tuple[Corpus, list[Query]]:
    corpus_file, queries_file = folder / "corpus.jsonl", folder / "queries.jsonl"
    for f in (corpus_file, queries_file):
        if not f.is_file():
            raise QAError(f"{folder} is not a dataset folder: {f.name} is missing")
    rows = _read_rows(corpus_file, CorpusRow)
    queries: list[Query] = _read_rows(queries_file, QueryRow)
    passages, paragraph_of = [], {}
    for row in rows:
        paragraph_of[row.doc_id] = paragraph_of.get(row.doc_id, 0) + 1
        passages.append(Passage(id=row.id, text=row.text, doc_id=row.doc_id, title=row.doc_id,
                                paragraph=paragraph_of[row.doc_id], start=0, end=len(row.text)))
    documents = [Document(doc_id=d, path=str(corpus_file), sha256=_sha(corpus_file), n_passages=n)
                 for d, n in paragraph_of.items()]
    return Corpus(documents=documents, passages=passages, warnings=[]), queries


def _read_rows(path: Path, model: type[BaseModel]) -> list:
    """Every non-blank line of a JSON Lines file as `model`; the first bad one is a one-line
    QAError naming the file, the line number and the field."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise QAError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            rows.append(model.model_validate_json(line))
        except ValidationError as exc:
            raise QAError(f"{path}, line {number}: {_first_problem(exc)}") from None
    return rows


def _first_problem(exc: ValidationError) -> str:
    """The first validation error as `field: message` (or the JSON/row problem itself)."""
    error = exc.errors()[0]
    if error["type"] == "json_invalid":
        return f"not valid JSON ({error['msg'].removeprefix('Invalid JSON: ')})"
    if error["type"] == "model_type":
        return "the row is not a JSON object"
    field = ".".join(str(part) for part in error["loc"]) or "row"
    return f"field {field!r}: {error['msg'].lower()}"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def dataset_index_dir(folder: Path, fingerprint: str, passage_precision: str = "fp32") -> Path:
    """The cached index of a dataset: one per corpus, model and passage precision (fp32 keeps
    the key it always had)."""
    variant = "" if passage_precision == "fp32" else f":{passage_precision}"
    key = hashlib.sha256(f"{_sha(folder / 'corpus.jsonl')}:{fingerprint}{variant}".encode()).hexdigest()[:16]
    return cache_dir() / "eval" / f"{folder.resolve().name}-{key}"


def open_dataset(folder: Path, model: str | None = None, progress: bool = True, *, backend: str | None = None,
                 threads: int | None = None, store: str | None = None, precision: str | None = None):
    """(retriever over the dataset's corpus, queries), indexing the corpus if not cached. A
    Milvus `store` (--store URI) holds the vectors; the local half is cached beside the others."""
    from .engines import load_embedder
    from .index import PassageIndex, update_index
    from .stores.location import parse_store

    corpus, queries = load_dataset(folder)
    embedder = load_embedder(model, backend=backend, threads=threads, precision=precision)
    index_dir = dataset_index_dir(folder, embedder.spec.fingerprint, embedder.passage_precision)
    location = parse_store(store, index_dir)
    if location.kind == "milvus":
        location = parse_store(store, index_dir.with_name(index_dir.name + "-milvus"))
    location = location if location.kind == "milvus" else None
    index_dir = location.local if location else index_dir
    update_index(corpus, index_dir, embedder, sources=[str(folder.resolve())], progress=progress, store=location)
    return Retriever(PassageIndex.open(index_dir, location), embedder), queries


def score(rankings: Sequence[Sequence[str]], queries: Sequence[Query], k: int, dataset: str, mode: str) -> Scores:
    r1 = rk = mrr = ndcg = 0.0
    for ranked, query in zip(rankings, queries):
        gold = set(query.gold_ids)
        top = list(ranked)[:k]
        r1 += len(gold & set(top[:1])) / len(gold)
        rk += len(gold & set(top)) / len(gold)
        first = next((i for i, pid in enumerate(top) if pid in gold), None)
        mrr += 1 / (first + 1) if first is not None else 0
        dcg = sum(1 / math.log2(i + 2) for i, pid in enumerate(top) if pid in gold)
        ideal = sum(1 / math.log2(i + 2) for i in range(min(len(gold), k)))
        ndcg += dcg / ideal
    n = max(len(queries), 1)
    return Scores(dataset=dataset, mode=mode, questions=len(queries), k=k, recall_at_1=round(100 * r1 / n, 1),
                  recall_at_k=round(100 * rk / n, 1), mrr_at_k=round(100 * mrr / n, 1), ndcg_at_k=round(100 * ndcg / n, 1))


def evaluate(retriever, queries: Sequence[Query], *, mode: str = "default", k: int = 10, dataset: str = "",
             progress: bool = True, batch: int = 64) -> Scores:
    """Rank every question (embedded in batches) and score the rankings."""
    from tqdm import tqdm

    rankings: list[list[str]] = []
    bar = tqdm(total=len(queries), desc=f"{dataset} {mode}", unit="q", disable=not progress, file=sys.stderr)
    for start in range(0, len(queries), batch):
        chunk = queries[start:start + batch]
        rankings.extend(retriever.rank_ids([q.question for q in chunk], k, mode=mode))
        bar.update(len(chunk))
    bar.close()
    return score(rankings, queries, k, dataset, mode)


def run_eval(dataset: str | Path, modes: Sequence[str] = ("default",), *, k: int = 10, limit: int | None = None,
             model: str | None = None, backend: str | None = None, threads: int | None = None,
             progress: bool = True, store: str | None = None, precision: str | None = None) -> list[Scores]:
    """`qa eval`: the scores of each mode on the dataset folder (its first `limit` questions).
    `progress` shows the indexing bar; the per-mode bars appear only on a terminal."""
    folder = Path(dataset)
    if not folder.is_dir():
        raise QAError(f"no such dataset folder: {folder}")
    check_k(k, "-k")
    if limit is not None and limit < 1:
        raise QAError(f"--limit must be at least 1 (got {limit})")
    retriever, queries = open_dataset(folder, model, progress=progress, backend=backend, threads=threads,
                                      store=store, precision=precision)
    if limit is not None:
        queries = queries[:limit]
    return [evaluate(retriever, queries, mode=m, k=k, dataset=folder.name, progress=sys.stderr.isatty())
            for m in modes]


def markdown_table(results: Sequence[Scores]) -> str:
    k = results[0].k if results else 10
    lines = [f"| set | mode | questions | R@1 | R@{k} | MRR@{k} | nDCG@{k} |", "|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r.dataset} | {r.mode} | {r.questions} | {r.recall_at_1} | {r.recall_at_k} | "
                     f"{r.mrr_at_k} | {r.ndcg_at_k} |")
    return "\n".join(lines)


def seed_queries(questions_file: Path, index, corpus_root: Path) -> list[Query]:
    """Our own question set (answers given as quotes from the articles) as gold passage ids.

    A quote names its file; the gold passage is the one with a source in that file whose span
    holds the quote. Unanswerable questions come back with no gold ids.
    """
    from .ingest import read_text

    texts: dict[str, str] = {}
    queries = []
    for line in questions_file.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        item = json.loads(line)
        gold: list[str] = []
        for answer in item["answers"]:
            doc = answer["doc_id"]
            text = texts.setdefault(doc, read_text(corpus_root / doc))
            at = text.find(answer["quote"])
            if at < 0:
                raise QAError(f"{questions_file.name}: quote of {item['id']} not found in {doc}")
            owner = next((p.id for p in index.passages for s in p.sources()
                          if s.doc_id == doc and s.start <= at < s.end), None)
            if owner is None:
                raise QAError(f"{questions_file.name}: quote of {item['id']} is in no passage of {doc}")
            if owner not in gold:
                gold.append(owner)
        queries.append(Query(id=item["id"], question=item["question"], lang=item.get("lang"), gold_ids=gold))
    return queries
