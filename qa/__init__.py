"""qa: semantic question answering over a folder of articles, offline, in English and French.

    from qa import Retriever
    retriever = Retriever.open()                 # the index in embeddings/, its model
    for hit in retriever.search("where did Kim meet Putin?", k=3):
        print(hit.rank, hit.doc_id, hit.paragraph, hit.sentence)

Names are imported on first use, so `import qa` stays light (no torch until a model loads).
"""

from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {
    "Retriever": "ranking.search", "Hit": "ranking.search", "Answer": "ranking.search", "Filters": "ranking.search",
    "RankingParams": "ranking", "Mode": "ranking", "MODES": "ranking",
    "PassageIndex": "index", "build_index": "index", "BuildReport": "index", "IndexStats": "index",
    "describe": "index",
    "Embedder": "engines", "load_embedder": "engines",
    "load_corpus": "ingest", "Passage": "records", "Source": "records", "Document": "records", "Corpus": "records",
    "resolve_model": "model", "build_default_model": "model", "ModelSpec": "model",
    "QAError": "errors", "ModelError": "errors", "IndexStoreError": "errors",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'qa' has no attribute {name!r}")
