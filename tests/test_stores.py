"""The vector-store seam on the real engines: Milvus Lite against FAISS (same answers, filters,
incremental updates, a build killed mid-insert), --store parsing, and the scale extra's message."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qa.errors import QAError
from qa.stores.base import PassageFields, Restriction
from qa.stores.faiss_store import FaissStore
from qa.stores.location import parse_store

from .conftest import CORPUS, DATA, REPO

pytest.importorskip("pymilvus", reason="the scale extra: pip install 'qa[scale]'")


def seed_questions() -> list[str]:
    return [json.loads(line)["question"] for line in (DATA / "seed_questions.jsonl").read_text().splitlines() if line]


def milvus(tmp_path: Path, name: str = "v.db"):
    from qa.stores.milvus_store import MilvusStore

    return MilvusStore.connect(parse_store(f"milvus:{tmp_path / name}"))


# ---------------------------------------------------------------------- fast: no model


def test_store_uris(tmp_path, monkeypatch):
    assert parse_store(None, tmp_path).kind == "faiss" and parse_store(None, tmp_path).local == tmp_path
    lite = parse_store(f"milvus:{tmp_path}/x.db")
    assert (lite.kind, lite.lite, lite.uri, lite.local) == ("milvus", True, f"{tmp_path}/x.db", tmp_path / "x.db.qa")
    monkeypatch.setenv("QA_MILVUS_TOKEN", "root:Milvus")
    server = parse_store("http://milvus.example:19530/news", tmp_path / "meta")
    assert (server.uri, server.collection, server.token, server.local, server.lite) == (
        "http://milvus.example:19530", "news", "root:Milvus", tmp_path / "meta", False)
    assert parse_store("https://h:443").collection == "qa_passages"
    for bad, message in (("milvus:x.sqlite", "ends in .db"), ("http://host", "HOST:PORT"),
                         ("grpc://h:1", "unknown kind of store"), ("http://h:1/bad-name", "collection name")):
        with pytest.raises(QAError, match=message):
            parse_store(bad)


def test_without_the_extra_one_line_says_what_to_install(tmp_path):
    for module, args in (("pymilvus", ["ask", "--store", f"milvus:{tmp_path}/x.db", "x"]),
                         ("ray", ["index", "--ray", "--index", str(tmp_path / "i"), str(CORPUS)])):
        code = f"import sys; sys.modules[{module!r}] = None\nfrom qa.cli import main\nsys.exit(main({args!r}))"
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
        assert result.returncode == 1, result.stderr
        assert result.stderr.strip().splitlines() == [
            f"qa: error: {'--store milvus:' + str(tmp_path) + '/x.db' if module == 'pymilvus' else '--ray'} "
            "needs the scale extra, which is not installed: pip install 'qa[scale]'"]


def test_faiss_and_milvus_stores_agree(tmp_path):
    """The interface on both engines: add, replace, delete, count, search, restricted search."""
    rng = np.random.default_rng(7)
    vectors = rng.standard_normal((300, 32)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    ids = [f"h{i:03d}" for i in range(300)]
    fields = [PassageFields((f"doc{i % 7}",), (f"2019-0{1 + i % 3}",) if i % 2 else ()) for i in range(300)]
    store = milvus(tmp_path)
    store.create(32, {"model_fingerprint": "test"}, index_type="FLAT")
    local = FaissStore(dimension=32)
    with store:
        for s in (store, local):
            s.add(ids, vectors, fields)
            s.add(ids[:10], -vectors[:10], fields[:10])  # replaced, not added
            s.delete(ids[-20:] + ["unknown"])
        store.flush()
        assert store.count() == local.count() == 280
        queries = vectors[[3, 50, 120]]
        for restriction in (None, Restriction(doc_ids=frozenset({"doc2", "doc5"})),
                            Restriction(dates=frozenset({"2019-02"})),
                            Restriction(doc_ids=frozenset({"doc1"}), dates=frozenset({"2019-03"}))):
            got, want = store.search(queries, 10, restriction), local.search(queries, 10, restriction)
            assert [[i for i, _ in row] for row in got] == [[i for i, _ in row] for row in want], restriction
            assert np.allclose([s for row in got for _, s in row], [s for row in want for _, s in row], atol=1e-5)
        assert store.properties() == {"model_fingerprint": "test"}


def test_a_faiss_index_searches_through_its_vector_store(fake_index):
    """One seam for both: PassageIndex asks its FaissStore (ids are the rows), which answers as the
    FAISS index itself does, and exactly over a subset."""
    from qa.index import PassageIndex

    index = PassageIndex.open(fake_index)
    store = index.vector_store
    assert isinstance(store, FaissStore) and store.count() == len(index) and store.ids[3] == "3"
    queries = np.asarray(index.vectors[[0, 7, 20]], np.float32)
    scores, rows = index.search(queries, 10)
    want_scores, want_rows = index.faiss_passages.search(queries, 10)
    assert (rows == want_rows).all() and np.allclose(scores, want_scores)
    assert [[int(i) for i, _ in hits] for hits in store.search(queries, 10)] == rows.tolist()
    subset = np.arange(5, len(index), 3)
    _, narrow = index.search(queries, 4, subset)
    exact = np.argsort(-(queries @ np.asarray(index.vectors)[subset].T), axis=1, kind="stable")[:, :4]
    assert (narrow == subset[exact]).all()


# ---------------------------------------------------------------------- slow: the real model


def live_name(store: str) -> str | None:
    """The generation CURRENT names in a Milvus index (read from the store: nothing is local)."""
    from qa.index.stored import open_log

    location = parse_store(store)
    milvus_store, log = open_log(location)
    try:
        return log.current()
    finally:
        milvus_store.close()


@pytest.fixture(scope="module")
def milvus_index(tmp_path_factory, embedder):
    from qa.index import build_index

    folder = tmp_path_factory.mktemp("milvus")
    store = f"milvus:{folder / 'seed.db'}"
    report = build_index([CORPUS], None, embedder, store=store)
    assert report.stored == report.passages == 53
    assert sorted(p.name for p in folder.iterdir()) == ["seed.db"]  # no local half beside it
    return store


def test_milvus_lite_answers_as_faiss_exact_on_every_seed_question(milvus_index, retriever, embedder):
    from qa.ranking.search import Retriever

    assert retriever.index.manifest.faiss.exact
    served = Retriever.open(store=milvus_index)
    try:
        assert served.index.store is not None and served.index.faiss_passages is None
        for question in seed_questions():
            assert ([h.passage_id for h in served.search(question, k=5)] ==
                    [h.passage_id for h in retriever.search(question, k=5)]), question
        for filters in ({"doc": "003_*"}, {"date_from": "2019-04"}, {"date_to": "2019-03"},
                        {"doc": "00[01]_*", "date_from": "2019"}):
            for question in seed_questions()[:12]:
                try:
                    want = [h.passage_id for h in retriever.search(question, k=5, **filters)]
                except QAError as exc:
                    with pytest.raises(QAError, match=str(exc)[:30]):
                        served.search(question, k=5, **filters)
                    continue
                assert [h.passage_id for h in served.search(question, k=5, **filters)] == want, (question, filters)
        hit, local = served.search(seed_questions()[0], k=1)[0], retriever.search(seed_questions()[0], k=1)[0]
        assert hit.model_dump() == local.model_dump()  # text, sources, answer sentence: all from the store
    finally:
        served.index.close()


def test_a_question_fetches_vectors_and_tokens_in_two_queries(milvus_index, embedder):
    """The rerank's tokens come from the store for the candidates only: one query for their
    vectors, one for the reranked ones' tokens, and none for a question asked again."""
    from qa.ranking.search import Retriever

    served = Retriever.open(store=milvus_index)
    try:
        rows = served.index.rows
        served.search("where did Kim meet Putin?", k=5)
        assert rows.queries == 2 and len(rows.blocks) == served.params.rerank_depth < len(rows.vectors) <= 53
        served.search("where did Kim meet Putin?", k=5)
        assert rows.queries == 2
    finally:
        served.index.close()


def test_a_filter_is_pushed_down_to_milvus(milvus_index):
    """The restriction reaches Milvus as a scalar filter: Milvus's own top 3 are all in 003_."""
    from qa.index import PassageIndex
    from qa.ranking.search import Filters, Retriever

    index = PassageIndex.open(None, parse_store(milvus_index))
    try:
        restriction = Retriever(index, None)._restriction(Filters(doc="003_*"))
        assert restriction.doc_ids == frozenset({"003_f371d312f86c9442.txt"})
        hits = index.store.search(index.vectors[:1], 3, restriction)[0]  # passage 0 is not in 003_
        known = dict(zip(index.keys, index.passages))
        assert len(hits) == 3 and all(any(s.doc_id.startswith("003_") for s in known[h].sources()) for h, _ in hits)
        subset = Retriever(index, None)._subset(Filters(doc="003_*"))
        from qa.stores.milvus_store import filter_expression

        asked = filter_expression(index._by_first_source(subset, restriction))  # what a question sends
        assert asked.startswith('doc_id in ["003_') and "array_contains" not in asked
        _, rows = index.search(index.vectors[:1], 3, subset, restriction)
        assert len(rows[0]) == 3 and set(rows[0].tolist()) <= set(subset.tolist())
        dated = index.store.search(index.vectors[:1], 50, Retriever(index, None)._restriction(
            Filters(date_from="2019-04", date_to="2019-04")))[0]
        assert dated and all(any(s.date == "2019-04" for s in known[h].sources()) for h, _ in dated)
    finally:
        index.close()


def test_milvus_updates_incrementally_like_faiss(tmp_path, embedder):
    from qa.index import PassageIndex, build_index

    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    store = f"milvus:{tmp_path / 'inc.db'}"
    build_index([corpus], None, embedder, store=store)
    again = build_index([corpus], None, embedder, store=store)
    assert (again.embedded, again.stored, again.new, again.changed) == (0, 0, 0, 0)
    before = PassageIndex.open(None, parse_store(store))
    previous_keys = set(before.keys)
    before.close()
    first = sorted(corpus.glob("*.txt"))[0]
    first.write_text(first.read_text(encoding="utf-8") + "\n\nUn paragraphe ajouté sur le port de Vladivostok.\n",
                     encoding="utf-8")
    sorted(corpus.glob("*.txt"))[-1].unlink()
    updated = build_index(None, None, embedder, store=store)  # the sources the store's manifest records
    faiss = build_index([corpus], tmp_path / "faiss", embedder)
    assert updated.embedded == updated.new == 1 and updated.removed > 0
    # written: the new passage, and those that lost a source with the deleted file (their old
    # row's vector and tokens, under a new key: the previous generation's rows never change)
    assert 1 <= updated.stored < 10
    assert (updated.passages, updated.documents) == (faiss.passages, faiss.documents)
    from qa.ranking.search import Retriever

    served, local = Retriever.open(store=store), Retriever.open(tmp_path / "faiss")
    try:
        for question in seed_questions()[:20] + ["le port de Vladivostok"]:
            assert [h.passage_id for h in served.search(question)] == [h.passage_id for h in local.search(question)]
        # the previous generation's rows stay until the next build; nothing else is left
        assert served.index.store.count() == len(set(served.index.keys) | previous_keys)
    finally:
        served.index.close()


KILLED_BUILD = """
import sys, time
sys.path.insert(0, {repo!r})
from qa.index import build_index
import pymilvus
from qa.stores import milvus_store
from tests.fake_embedder import FakeEmbedder
real_upsert = pymilvus.MilvusClient.upsert
def upsert(self, *args, **kwargs):
    print("INSERTING", flush=True)  # a spy: the real insert runs, batch by batch
    return real_upsert(self, *args, **kwargs)
pymilvus.MilvusClient.upsert = upsert
milvus_store.BATCH = 200
build_index([{corpus!r}], None, FakeEmbedder(), store={store!r})
print("DONE", flush=True)
"""


def test_a_build_killed_mid_insert_leaves_the_previous_generation(tmp_path, fake_embedder):
    from qa.index import PassageIndex, build_index
    from qa.ranking.search import Retriever

    store = f"milvus:{tmp_path / 'kill.db'}"
    build_index([CORPUS], None, fake_embedder, store=store)
    big = tmp_path / "big"
    shutil.copytree(CORPUS, big)
    rng = np.random.default_rng(0)
    words = [f"mot{i}" for i in range(3000)]
    for f in range(40):
        paragraphs = [" ".join(rng.choice(words, 40)) + "." for _ in range(150)]
        (big / f"synthetic_{f:02d}.txt").write_text("\n\n".join(paragraphs), encoding="utf-8")
    child = subprocess.Popen([sys.executable, "-c", KILLED_BUILD.format(repo=str(REPO), corpus=str(big), store=store)],
                             stdout=subprocess.PIPE, text=True, cwd=REPO)
    for _ in range(3):
        assert child.stdout.readline().strip() == "INSERTING"
    child.kill()  # SIGKILL, mid-insert
    child.wait()
    assert live_name(store) == "g000001"
    index = PassageIndex.open(None, parse_store(store))
    try:
        stored = index.store.count()
        assert 53 < stored < 53 + 6000, stored  # killed with part of the new rows inserted
        hits = Retriever(index, fake_embedder).search("où Kim a-t-il rencontré Poutine ?", k=5)
        assert len(hits) == 5 and all(not h.doc_id.startswith("synthetic") for h in hits)
    finally:
        index.close()
    again = build_index([CORPUS], None, fake_embedder, store=store)  # the next build cleans up
    assert again.embedded == 0 and live_name(store) == "g000002"
    index = PassageIndex.open(None, parse_store(store))
    try:
        assert index.store.count() == 53
    finally:
        index.close()


def test_two_processes_answer_from_the_store_alone_after_the_builder_exits(tmp_path):
    """The done-when scenario: `qa index --store milvus:X.db`, then `qa ask` in a fresh folder
    with no embeddings/, twice, each a process of its own; nothing but X.db is written."""
    from .test_model import qa_cli

    store = f"milvus:{tmp_path / 'x.db'}"
    built = qa_cli("index", "-q", "--store", store, str(CORPUS), timeout=300)
    assert built.returncode == 0, built.stderr
    assert "53 passages" in built.stdout and "wrote 53 vectors to the store" in built.stdout
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    answers = []
    for _ in range(2):
        answer = subprocess.run([sys.executable, "-m", "qa", "ask", "--json", "-k", "5", "--store", store,
                                 "where did Kim meet Putin?"], capture_output=True, text=True, cwd=fresh,
                                timeout=120, stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONPATH": str(REPO)})
        assert answer.returncode == 0, answer.stderr
        answers.append(json.loads(answer.stdout))
    assert "Vladivostok" in answers[0]["hits"][0]["text"]
    assert [h["passage_id"] for h in answers[0]["hits"]] == [h["passage_id"] for h in answers[1]["hits"]]
    assert list(fresh.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["fresh", "x.db"]
    stats = qa_cli("stats", "--json", "--store", store)
    described = json.loads(stats.stdout)
    assert stats.returncode == 0 and described["store"] == store and described["vector_index"] == "FLAT"
    assert described["faiss"] == "none" and described["passages"] == 53
    lite_folder = sum(f.stat().st_size for f in (tmp_path / "x.db").rglob("*") if f.is_file())
    assert described["bytes_on_disk"] == lite_folder > 0


def test_a_milvus_index_keeps_its_live_and_previous_generations_only(tmp_path, fake_embedder):
    """Each build adds a generation to the metadata collection, switches CURRENT to it, then
    forgets all but it and the previous one (whose readers may still be answering)."""
    from qa.index import build_index
    from qa.index.stored import open_log

    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    store = f"milvus:{tmp_path / 'gen.db'}"
    seen = []
    for i in range(3):
        (corpus / f"extra{i}.txt").write_text(f"Un paragraphe numéro {i} sur le port de Vladivostok.\n",
                                              encoding="utf-8")
        report = build_index([corpus], None, fake_embedder, store=store)
        milvus_store, log = open_log(parse_store(store))
        try:
            seen.append((sorted(log.names()), log.current(), milvus_store.count(), report.embedded))
        finally:
            milvus_store.close()
    assert seen == [(["g000001"], "g000001", 54, 54), (["g000001", "g000002"], "g000002", 55, 1),
                    (["g000002", "g000003"], "g000003", 56, 1)]


def test_a_damaged_current_falls_back_to_the_newest_complete_generation(tmp_path, fake_embedder):
    """CURRENT in the metadata collection is read as a local CURRENT is: a name that is not a
    complete generation falls back to the newest complete one, with a note; a valid older one is used."""
    from qa.index import PassageIndex, build_index
    from qa.index.stored import open_log

    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS, corpus)
    store = f"milvus:{tmp_path / 'cur.db'}"
    build_index([corpus], None, fake_embedder, store=store)
    (corpus / "extra.txt").write_text("Un paragraphe de plus sur le port de Vladivostok.\n", encoding="utf-8")
    build_index([corpus], None, fake_embedder, store=store)
    for pointer, generation, passages, noted in (("not a name", "g000002", 54, True), ("g000009", "g000002", 54, True),
                                                 ("g000001", "g000001", 53, False)):
        milvus_store, log = open_log(parse_store(store))
        log.switch(pointer)
        milvus_store.close()
        index = PassageIndex.open(None, parse_store(store))
        try:
            assert (index.generation, len(index), index.note is not None) == (generation, passages, noted), pointer
        finally:
            index.close()
