"""Fast tests of the ranking arithmetic, filters, collapsing and configuration, on the fake
embedder (tests/fake_embedder.py) or on hand-made vectors: no model, a few seconds in all."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import get_args

import numpy as np
import pytest

from qa.errors import QAError
from qa.index import (ExactFaiss, HnswFaiss, IndexManifest, PassageIndex, Vectors, faiss_params, describe,
                      make_faiss_index, read_manifest)
from qa.records import Document, Passage, Source
from qa.ranking.search import DEFAULT_RANKING, MODES, Filters, Mode, RankingParams, Retriever, _date_in
from qa.index.tokens import CONTEXT_SENTENCE, Int8Codec, TokenStore, best_sentence, maxsim

from .conftest import CORPUS
from .fake_embedder import FakeEmbedder, ngram_vector

QUESTION = "where did Kim meet Putin?"


def places(hit) -> list:
    """(document id, date) of every source of a hit, the primary one first."""
    return [(hit.doc_id, hit.date), *((s.doc_id, s.date) for s in hit.other_sources)]


# --------------------------------------------------------------------------- filters


def test_a_misspelt_filter_is_an_error_not_a_search_of_everything(fake_retriever):
    with pytest.raises(TypeError, match="dco"):
        fake_retriever.search(QUESTION, dco="003_*")
    with pytest.raises(TypeError, match="date_form"):
        fake_retriever.ask(QUESTION, date_form="2019")
    with pytest.raises(TypeError, match="docs"):
        fake_retriever.ask_many([QUESTION], docs="003_*")
    with pytest.raises(ValueError, match="dco"):
        Filters(dco="003_*")


def test_doc_filter_keeps_only_matching_documents(fake_retriever):
    hits = fake_retriever.search(QUESTION, k=10, doc="003_*")
    assert hits and all(any(doc.startswith("003_") for doc, _ in places(h)) for h in hits)
    assert {h.doc_id for h in fake_retriever.search(QUESTION, k=10)} - {h.doc_id for h in hits}


def test_date_filters(fake_retriever):
    dates = sorted({d.date for d in fake_retriever.index.documents if d.date})
    assert dates, "the shipped corpus has dated articles"
    first = dates[0]
    hits = fake_retriever.search(QUESTION, k=20, date_from=first, date_to=first)
    assert hits and all(any(date and date.startswith(first) for _, date in places(h)) for h in hits)
    with pytest.raises(QAError, match="bad date"):
        fake_retriever.search(QUESTION, date_from="yesterday")
    with pytest.raises(QAError, match="reversed"):
        fake_retriever.search(QUESTION, date_from="2020", date_to="2019")
    with pytest.raises(QAError, match="no document matches 'zzz\\*'"):
        fake_retriever.search(QUESTION, doc="zzz*")


@pytest.mark.parametrize("date, start, end, inside", [
    ("2019-04", "2019", None, True), ("2019-04", "2019-05", None, False), ("2019-04", None, "2019-04-30", True),
    ("2019", "2019-06", "2019-07", True), ("2018-12-31", "2019", None, False), ("2019-04-12", None, "2019-04", True),
])
def test_dates_compare_at_the_precision_both_have(date, start, end, inside):
    assert _date_in(date, start, end) is inside


def test_a_filtered_search_is_exact_within_the_subset(fake_retriever):
    """The subset is searched in full: its best passage is found even when it is far from the top."""
    index, embedder = fake_retriever.index, fake_retriever.embedder
    rows = [i for i, p in enumerate(index.passages) if p.doc_id.startswith("003_")]
    qvec = embedder.embed_queries([QUESTION])[0]
    _, ids = index.search(qvec[None, :], 3, np.asarray(rows))
    expected = sorted(rows, key=lambda r: -float(index.vectors[r] @ qvec))[:3]
    assert list(ids[0]) == expected


# --------------------------------------------------------------------------- scores


def test_maxsim_is_the_mean_of_each_question_tokens_best_cosine():
    rng = np.random.default_rng(1)
    question = rng.normal(size=(4, 8)).astype(np.float32)
    counts = np.array([3, 0, 5, 1])
    tokens = rng.normal(size=(counts.sum(), 8)).astype(np.float32)
    similarities = question @ tokens.T
    scores = maxsim(similarities, counts)
    start = 0
    for i, n in enumerate(counts):
        block = tokens[start:start + n]
        expected = np.mean([max(float(q @ t) for t in block) for q in question]) if n else 0.0
        assert scores[i] == pytest.approx(expected, abs=1e-5)
        start += n
    assert similarities.shape == (4, counts.sum())


def test_best_sentence_is_the_sentence_with_the_best_maxsim_of_its_own():
    # question tokens x passage tokens; tokens 0-1: heading, 2-3: sentence 0, 4-6: sentence 1
    similarities = np.array([[0.99, 0.1, 0.5, 0.2, 0.4, 0.3, 0.1],
                             [0.99, 0.1, 0.1, 0.2, 0.6, 0.3, 0.7]], np.float32)
    sentences = np.array([CONTEXT_SENTENCE, CONTEXT_SENTENCE, 0, 0, 1, 1, 1], np.uint16)
    assert best_sentence(similarities, sentences) == 1  # (0.4 + 0.7) / 2 beats (0.5 + 0.2) / 2
    assert best_sentence(similarities[:, :4], sentences[:4]) == 0
    assert best_sentence(similarities[:, :2], sentences[:2]) is None  # heading only


def test_rerank_adds_the_weighted_maxsim_to_the_fused_score(fake_retriever):
    question = "Kim Jong-un Vladivostok"
    index, embedder = fake_retriever.index, fake_retriever.embedder
    params = RankingParams(lexical_weight_same_language=0.5, maxsim_weight=0.7, rerank_depth=50)
    hits = Retriever(index, embedder, params).search(question, k=5, mode="hybrid")
    query = embedder.embed_queries_with_tokens([question])
    top_bm25 = max(h.lexical for h in fake_retriever.search(question, k=50, mode="lexical"))
    for h in hits:
        row = next(i for i, p in enumerate(index.passages) if p.id == h.passage_id)
        tokens, counts = index.tokens.tokens(np.array([row]))
        expected_maxsim = float((query.of(0) @ tokens.T).max(1).mean())
        assert h.score == pytest.approx(h.similarity + 0.7 * expected_maxsim + 0.5 * h.lexical / top_bm25, abs=2e-3)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_marked_sentence_holds_the_question_words(fake_retriever):
    hit = fake_retriever.search("Vladivostok", k=1, mode="dense")[0]
    assert "Vladivostok" in hit.sentence and hit.sentence == hit.text[hit.sentence_start:hit.sentence_end]


def test_lexical_mode_is_bm25_order(fake_retriever):
    hits = fake_retriever.search("Vladivostok Poutine", k=5, mode="lexical")
    scores = fake_retriever.lexical.scores("Vladivostok Poutine")
    assert [h.lexical for h in hits] == sorted((h.lexical for h in hits), reverse=True)
    assert hits[0].lexical == pytest.approx(float(scores.max()), abs=1e-3)
    assert "Vladivostok" in hits[0].text


def test_fusion_adds_the_weighted_max_normalised_bm25_score(fake_retriever):
    question = "Kim Jong-un Vladivostok"  # French words: the corpus's language, BM25 counts
    params = RankingParams(lexical_weight_same_language=0.5, maxsim_weight=0.0)
    retriever = Retriever(fake_retriever.index, fake_retriever.embedder, params)
    hits = retriever.search(question, k=5, mode="hybrid")
    top_bm25 = max(h.lexical for h in retriever.search(question, k=50, mode="lexical"))
    for h in hits:
        assert h.score == pytest.approx(h.similarity + 0.5 * h.lexical / top_bm25, abs=2e-3)
    dense_only = Retriever(fake_retriever.index, fake_retriever.embedder,
                           RankingParams(lexical_weight_same_language=0.0, maxsim_weight=0.0)).search(question, k=5,
                                                                                                      mode="hybrid")
    assert [h.score for h in dense_only] == [h.similarity for h in dense_only]


def test_weak_margin_comes_from_the_params(fake_retriever):
    strict = Retriever(fake_retriever.index, fake_retriever.embedder, RankingParams(weak_margin=10.0))
    lenient = Retriever(fake_retriever.index, fake_retriever.embedder, RankingParams(weak_margin=-1.0))
    assert strict.ask(QUESTION).weak and strict.ask(QUESTION).note
    assert not lenient.ask(QUESTION).weak


# --------------------------------------------------------------------------- collapsing, on hand-made vectors


def tiny_index(vectors: list[list[float]], tmp_path: Path) -> PassageIndex:
    """An in-memory index of one-sentence passages p0, p1, ... with exactly these vectors."""
    p = np.asarray(vectors, np.float32)
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    passages = [Passage(id=f"p{i}", text=f"text {i}.", doc_id=f"d{i}.txt", paragraph=1, start=0, end=7)
                for i in range(len(p))]
    spans = np.asarray([[i, 0, 7] for i in range(len(p))], np.int32)
    manifest = IndexManifest(model_id="fake", model_fingerprint="f", query_prefix="", passage_prefix="",
                             chunking={"max_tokens": 510}, dimension=p.shape[1], faiss=faiss_params(len(p)),
                             passages=len(p), documents=len(p), corpus_fingerprint="c", sources=[], built_at=0)
    documents = [Document(doc_id=x.doc_id, path=x.doc_id, sha256="0", n_passages=1) for x in passages]
    tokens = TokenStore(Int8Codec(p.shape[1]), Int8Codec(p.shape[1]).encode(p), np.arange(len(p) + 1),
                        np.zeros(len(p), np.uint16))
    return PassageIndex(tmp_path, tmp_path / "g000001", manifest, passages, documents, Vectors(p, spans, tokens),
                        make_faiss_index(p, manifest.faiss))


def test_collapse_folds_near_duplicates_into_the_first_hit(tmp_path):
    index = tiny_index([[1, 0, 0], [0.999, 0.04, 0], [0, 1, 0], [0, 0, 1]], tmp_path)
    retriever = Retriever(index, FakeEmbedder(dimension=3))
    rows = np.array([0, 1, 2, 3])
    fused = np.array([0.9, 0.8, 0.7, 0.6])
    hits = retriever._collapse(rows, fused, fused, np.zeros(4), None, k=2)
    assert [h.passage_id for h in hits] == ["p0", "p2"]  # p1 is p0's near-duplicate, k counts kept hits
    assert [s.doc_id for s in hits[0].other_sources] == ["d1.txt"]
    assert [h.rank for h in hits] == [1, 2] and hits[0].score == 0.9
    assert index.passages[0].other_sources == []  # the stored passage is not changed by a search
    looser = Retriever(index, FakeEmbedder(dimension=3), RankingParams(duplicate_cosine=1.01))
    assert len(looser._collapse(rows, fused, fused, np.zeros(4), None, k=4)) == 4


def test_a_hit_is_its_passage_plus_its_ranking(fake_retriever):
    hit = fake_retriever.search(QUESTION, k=1)[0]
    passage = next(p for p in fake_retriever.index.passages if p.id == hit.passage_id)
    for name in Source.model_fields | {"text": None, "context": None}:
        assert getattr(hit, name) == getattr(passage, name)
    assert hit.sentence == hit.text[hit.sentence_start:hit.sentence_end]
    assert set(json.loads(hit.model_dump_json())) >= {"rank", "score", "passage_id", "doc_id", "other_sources"}


# --------------------------------------------------------------------------- configuration


def test_modes_and_params():
    assert MODES == get_args(Mode) == ("default", "dense", "lexical", "hybrid")
    params = RankingParams()
    assert (params.lexical_weight_same_language, params.candidates, params.weak_margin) == (0.15, 100, 0.032)
    with pytest.raises(dataclasses.FrozenInstanceError):
        params.weak_margin = 0.1  # type: ignore[misc]
    with pytest.raises(TypeError, match="weak_margn"):
        RankingParams(weak_margn=0.1)  # type: ignore[call-arg]


@pytest.mark.parametrize("call", [
    lambda r: r.search(QUESTION, k=0), lambda r: r.ask_many([QUESTION], k=-1), lambda r: r.search(QUESTION, mode="bm25"),
])
def test_bad_k_and_mode_are_one_line_errors(fake_retriever, call):
    with pytest.raises(QAError):
        call(fake_retriever)


def test_manifest_is_typed_and_reads_old_dicts(fake_index):
    manifest = read_manifest(PassageIndex.open(fake_index).generation)
    assert isinstance(manifest.faiss, ExactFaiss) and manifest.faiss["kind"] == "IndexFlatIP"
    assert manifest.dimension == FakeEmbedder().dimension and manifest.chunking.max_tokens == 510
    old = json.loads(manifest.model_dump_json())
    old["faiss"] = {"kind": "IndexHNSWFlat", "exact": False, "M": 32, "efConstruction": 200, "efSearch": 128,
                    "metric": "inner_product", "approximate_from": 200000}
    hnsw = IndexManifest.model_validate(old).faiss
    assert isinstance(hnsw, HnswFaiss) and hnsw["efSearch"] == 128
    assert json.loads(IndexManifest.model_validate(old).model_dump_json())["faiss"] == old["faiss"]


def test_describe_is_what_stats_show(fake_index, fake_retriever):
    stats = describe(fake_index)
    assert stats == fake_retriever.index.describe()
    assert (stats.passages, stats.faiss, stats.exact) == (len(fake_retriever.index), "IndexFlatIP", True)
    from qa.render import render_stats

    assert f"passages: {stats.passages}" in render_stats(stats)


def test_fake_embedder_is_deterministic_and_normalised():
    a, b = ngram_vector("Kim a rencontré Poutine", 64), ngram_vector("Kim a rencontré Poutine", 64)
    assert np.array_equal(a, b) and np.linalg.norm(a) == pytest.approx(1.0)
    assert float(a @ ngram_vector("Poutine et Kim", 64)) > float(a @ ngram_vector("le thon rouge", 64))


# --------------------------------------------------------------------------- opening the default index


def test_open_builds_the_missing_default_index(tmp_path, monkeypatch, fake_embedder):
    import qa.ranking.search

    monkeypatch.setenv("QA_INDEX", str(tmp_path / "embeddings"))
    monkeypatch.setenv("QA_CORPUS", str(CORPUS))
    monkeypatch.setattr(qa.ranking.search, "load_embedder", lambda *a, **k: fake_embedder)
    messages: list[str] = []
    with pytest.raises(QAError, match="no index at"):
        Retriever.open()  # without build_missing, the library never builds behind the caller's back
    retriever = Retriever.open(build_missing=True, notify=messages.append)
    assert messages[0] == "building the index of the default corpus (it does not exist yet)…"
    assert "documents" in messages[-1] and len(retriever.index) == len(PassageIndex.open(tmp_path / "embeddings"))
    messages.clear()
    Retriever.open(build_missing=True, notify=messages.append)
    assert messages == []  # up to date: opened as it is


def test_default_locations_follow_the_project_folder(tmp_path, monkeypatch):
    from qa import paths

    monkeypatch.delenv("QA_INDEX", raising=False)
    monkeypatch.delenv("QA_CORPUS", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    assert paths.default_index_dir() == tmp_path / "data" / "qa" / "embeddings"
    (tmp_path / "corpus").mkdir()
    assert paths.default_index_dir() == tmp_path / "embeddings"
    assert paths.default_corpus() == tmp_path / "corpus"
    monkeypatch.setenv("QA_INDEX", "/elsewhere")
    assert paths.default_index_dir() == Path("/elsewhere")


def test_int8_tokens_score_as_their_decoded_form_to_the_rounding():
    rng = np.random.default_rng(3)
    tokens = rng.normal(size=(500, 384)).astype(np.float32)
    tokens /= np.linalg.norm(tokens, axis=1, keepdims=True)
    codec = Int8Codec(384)
    assert codec.record.kind == "int8" and codec.record.bytes_per_token == 388
    codes = codec.encode(tokens)
    assert codes.dtype == np.uint8 and codes.shape == (500, 388)
    question = tokens[-3:]
    direct = codec.similarities(question, codes)
    assert np.allclose(direct, question @ codec.decode(codes).T, atol=1e-5)
    assert np.abs(direct - question @ tokens.T).max() < 0.01  # int8 rounding only


def test_budget_batches_cover_every_row_longest_first_within_the_budget():
    from qa.engines.base import budget_batches

    lengths = np.array([5, 512, 40, 40, 300, 7, 120, 1, 2048])
    batches = list(budget_batches(lengths, 1024, 4))
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(lengths)))
    assert [lengths[b].max() for b in batches] == sorted((lengths[b].max() for b in batches), reverse=True)
    for rows in batches:
        assert len(rows) <= 4 and (len(rows) == 1 or len(rows) * lengths[rows].max() <= 1024)
    assert [lengths[b].tolist() for b in batches] == [[2048], [512, 300], [120, 40, 40, 7], [5, 1]]  # 4 rows at most


def test_a_question_in_another_language_is_matched_by_bm25_on_its_numbers_only(fake_retriever):
    english = "By how much did trade between the two countries fall in 2018?"
    assert fake_retriever.lexical.language == "french"
    assert fake_retriever._lexical_plan(english, "default") == (DEFAULT_RANKING.numbers_weight_other_language, "2018")
    assert fake_retriever._lexical_plan("Where did Kim meet Putin?", "default") == (0.0, "")
    french = "Où Kim a-t-il rencontré Poutine en 2019 ?"
    assert fake_retriever._lexical_plan(french, "default") == (DEFAULT_RANKING.lexical_weight_same_language, french)
    assert fake_retriever._lexical_plan(english, "hybrid")[1] == english
    off = Retriever(fake_retriever.index, fake_retriever.embedder, RankingParams(numbers_weight_other_language=0.0))
    assert off._lexical_plan(english, "default")[0] == 0.0
    hits = fake_retriever.search(english, k=10)
    by_numbers = fake_retriever.lexical.scores("2018")
    assert by_numbers.max() > 0 and any(h.lexical > 0 for h in hits)
    for h in hits:
        row = next(i for i, p in enumerate(fake_retriever.index.passages) if p.id == h.passage_id)
        assert h.lexical == pytest.approx(float(by_numbers[row]), abs=1e-3)
