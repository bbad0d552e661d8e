"""Every default location and environment variable qa reads, in one place.

Defaults must be right from a wheel install, where the package's own folder is read-only and
holds no articles, so nothing here is relative to the package:

* the corpus and the index follow the working directory when it looks like a qa project
  (it holds ``corpus/`` or ``embeddings/``), else they live in the user's data folder
  (``$XDG_DATA_HOME/qa``, else ``~/.local/share/qa``);
* the model cache and evaluation indexes in ``$QA_CACHE_DIR``, else ``$XDG_CACHE_HOME/qa``;
* the REPL history in ``$QA_STATE_DIR``, else ``$XDG_STATE_HOME/qa``.

``$QA_CORPUS`` and ``$QA_INDEX`` override the corpus and the index; ``$QA_MODEL``,
``$QA_BACKEND``, ``$QA_THREADS`` and ``$QA_PRECISION`` choose the model and its engine; ``$QA_MILVUS_TOKEN`` is the
token sent to a Milvus server (`--store http://host:19530`); ``$QA_DEBUG`` shows
tracebacks; ``$NO_COLOR`` turns colour off; ``$HF_HUB_OFFLINE`` and ``$HF_ENDPOINT`` are the
Hugging Face hub's own, honoured when a hub model is resolved. Each is read when asked for,
never at import, so tests can set them. (The engines *set* a few library variables, such as
``TOKENIZERS_PARALLELISM``, with setdefault; those are settings, not configuration.)
"""

from __future__ import annotations

import os
from pathlib import Path

CORPUS_FOLDER = "corpus"
INDEX_FOLDER = "embeddings"


def env(name: str) -> str | None:
    """An environment variable, empty counting as unset."""
    return os.environ.get(name) or None


def _xdg(variable: str, fallback: tuple[str, ...]) -> Path:
    base = env(variable)
    return (Path(base).expanduser() if base else Path.home().joinpath(*fallback)) / "qa"


def data_dir() -> Path:
    """Where the corpus and index go outside a project folder: $XDG_DATA_HOME/qa."""
    return _xdg("XDG_DATA_HOME", (".local", "share"))


def cache_dir() -> Path:
    """Per-user cache (models, evaluation indexes): $QA_CACHE_DIR, else $XDG_CACHE_HOME/qa."""
    if value := env("QA_CACHE_DIR"):
        return Path(value).expanduser()
    return _xdg("XDG_CACHE_HOME", (".cache",))


def state_dir() -> Path:
    """Per-user state (the REPL history): $QA_STATE_DIR, else $XDG_STATE_HOME/qa."""
    if value := env("QA_STATE_DIR"):
        return Path(value).expanduser()
    return _xdg("XDG_STATE_HOME", (".local", "state"))


def history_path() -> Path:
    return state_dir() / "history"


def project_dir() -> Path:
    """The working directory when it is a qa project (holds corpus/ or embeddings/), else the data dir."""
    here = Path.cwd()
    if (here / CORPUS_FOLDER).is_dir() or (here / INDEX_FOLDER).is_dir():
        return here
    return data_dir()


def default_corpus() -> Path:
    """$QA_CORPUS, else corpus/ of the project folder (see :func:`project_dir`)."""
    return Path(env("QA_CORPUS") or project_dir() / CORPUS_FOLDER)


def default_index_dir() -> Path:
    """$QA_INDEX, else embeddings/ of the project folder (see :func:`project_dir`)."""
    return Path(env("QA_INDEX") or project_dir() / INDEX_FOLDER)


def default_model_name() -> str | None:
    return env("QA_MODEL")


def default_backend() -> str | None:
    return env("QA_BACKEND")


def precision_setting() -> str | None:
    """$QA_PRECISION: the ONNX engine's precision (auto, fp32, int8; validated by the engine factory)."""
    return env("QA_PRECISION")


def threads_setting() -> str:
    """$QA_THREADS as written (validated by the engine factory)."""
    return os.environ.get("QA_THREADS", "").strip()


def debug() -> bool:
    """$QA_DEBUG: show tracebacks instead of one line."""
    return bool(env("QA_DEBUG"))


def no_colour() -> bool:
    """$NO_COLOR set (to anything, https://no-color.org): plain text even on a terminal."""
    return "NO_COLOR" in os.environ


def hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in {"1", "true", "yes"}


def hub_endpoint() -> str:
    return env("HF_ENDPOINT") or "https://huggingface.co"


def milvus_token() -> str | None:
    """$QA_MILVUS_TOKEN: the token for a Milvus server ("user:password" or an API key)."""
    return env("QA_MILVUS_TOKEN")


def server_store_dir(host: str, port: int, collection: str) -> Path:
    """The local half (passages, manifest) of an index whose vectors are on a Milvus server,
    when no --index names it: beside the default index, one folder per server and collection."""
    return project_dir() / f"{INDEX_FOLDER}.milvus-{host}-{port}-{collection}"
