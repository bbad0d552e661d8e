"""`qa index --ray`: embedding on a local Ray (Ray Data, an actor pool of ONNX engines) gives
the single-process build's passages and vectors. One local Ray for the module (it is slow to start)."""

from __future__ import annotations

import numpy as np
import pytest

from .conftest import CORPUS

ray = pytest.importorskip("ray", reason="the scale extra: pip install 'qa[scale]'")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray():
    from qa.engines.distributed import start_ray

    started = not ray.is_initialized()
    yield start_ray(None, num_cpus=2)
    if started:
        ray.shutdown()


def test_a_ray_build_equals_the_plain_build(local_ray, tmp_path, embedder, corpus_index):
    from qa.engines.distributed import RayEmbedder
    from qa.index import PassageIndex, build_index

    distributed = RayEmbedder(embedder, workers=2)
    report = build_index([CORPUS], tmp_path / "ray", distributed)
    assert report.embedded == report.passages == 53
    plain, by_ray = PassageIndex.open(corpus_index), PassageIndex.open(tmp_path / "ray")
    assert [p.id for p in by_ray.passages] == [p.id for p in plain.passages]
    assert (by_ray.vectors * plain.vectors).sum(1).min() >= 0.9999
    rows = np.arange(len(plain.passages))
    (ray_tokens, ray_counts), (plain_tokens, plain_counts) = by_ray.tokens.tokens(rows), plain.tokens.tokens(rows)
    assert np.array_equal(ray_counts, plain_counts)  # the same content tokens, passage by passage
    ray_tokens, plain_tokens = (np.asarray(t, np.float32) for t in (ray_tokens, plain_tokens))
    cosines = (ray_tokens * plain_tokens).sum(1) / np.linalg.norm(ray_tokens, axis=1) / np.linalg.norm(plain_tokens, axis=1)
    assert cosines.min() >= 0.999  # stored as float16 (or PQ codes): compared after storage
    assert by_ray.manifest.model_fingerprint == plain.manifest.model_fingerprint
    query = distributed.embed_queries(["where did Kim meet Putin?"])  # questions stay in this process
    assert np.allclose(query, embedder.embed_queries(["where did Kim meet Putin?"]), atol=1e-6)


def test_a_ray_build_into_milvus_lite(local_ray, tmp_path, embedder):
    from qa.engines.distributed import RayEmbedder
    from qa.index import build_index
    from qa.ranking.search import Retriever

    store = f"milvus:{tmp_path / 'ray.db'}"
    report = build_index([CORPUS], None, RayEmbedder(embedder, workers=2), store=store)
    assert report.stored == 53
    retriever = Retriever.open(store=store)
    try:
        assert "Vladivostok" in retriever.search("where did Kim meet Putin?", k=1)[0].text
    finally:
        retriever.index.close()
