"""Shared fixtures: the real model and a real index of the default corpus, built once a session."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "corpus"
DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(scope="session")
def embedder():
    from qa.embedding import load_embedder

    e = load_embedder()
    e.embed_queries(["warm up"])  # load once, here, not inside the first test that uses it
    return e


@pytest.fixture(scope="session")
def corpus_index(tmp_path_factory, embedder) -> Path:
    """An index of the shipped corpus in a temporary folder (embeddings/ is left alone)."""
    from qa.index import build_index

    path = tmp_path_factory.mktemp("index")
    build_index([CORPUS], path, embedder)
    return path


@pytest.fixture(scope="session")
def retriever(corpus_index, embedder):
    from qa.index import PassageIndex
    from qa.search import Retriever

    return Retriever(PassageIndex.open(corpus_index), embedder)
