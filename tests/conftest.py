"""Shared fixtures: the real model and a real index of the default corpus, built once a session;
and the same index over the fake embedder, for fast tests.

Tests that need the real model are marked `slow` (registered in pyproject.toml): by the
fixtures they use (below), or by hand. `pytest -m "not slow"` runs the rest in seconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "corpus"
DATA = Path(__file__).resolve().parent / "data"

# Fixtures that load the real model: a test using one, directly or through another fixture
# (pytest lists the whole closure in `fixturenames`), is slow.
MODEL_FIXTURES = {"embedder", "onnx_embedder", "torch_embedder"}


def pytest_collection_modifyitems(items) -> None:
    for item in items:
        if MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def embedder():
    from qa.engines import load_embedder

    e = load_embedder()
    e.embed_queries(["warm up"])  # load once, here, not inside the first test that uses it
    return e


def index_of_corpus(tmp_path_factory, name: str, embedder) -> Path:
    """An index of the shipped corpus in a temporary folder (embeddings/ is left alone)."""
    from qa.index import build_index

    path = tmp_path_factory.mktemp(name)
    build_index([CORPUS], path, embedder)
    return path


def open_retriever(path: Path, embedder):
    from qa.index import PassageIndex
    from qa.ranking.search import Retriever

    return Retriever(PassageIndex.open(path), embedder)


@pytest.fixture(scope="session")
def corpus_index(tmp_path_factory, embedder) -> Path:
    return index_of_corpus(tmp_path_factory, "index", embedder)


@pytest.fixture(scope="session")
def retriever(corpus_index, embedder):
    return open_retriever(corpus_index, embedder)


@pytest.fixture(scope="session")
def fake_embedder():
    from .fake_embedder import FakeEmbedder

    return FakeEmbedder()


@pytest.fixture(scope="session")
def fake_index(tmp_path_factory, fake_embedder) -> Path:
    """The shipped corpus indexed with the fake embedder: the real index code, no model."""
    return index_of_corpus(tmp_path_factory, "fake-index", fake_embedder)


@pytest.fixture(scope="session")
def fake_retriever(fake_index, fake_embedder):
    return open_retriever(fake_index, fake_embedder)
