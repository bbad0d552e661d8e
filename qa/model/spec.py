"""A resolved embedding model's identity: where it is, its name, fingerprint and prompts.

Its own module because every side needs it: :mod:`qa.model.resolve` makes specs, the default
model's build (:mod:`qa.model.default`) reads a fresh folder's, and the engines
(:mod:`qa.engines`) consume them. Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

MANIFEST_NAME = "qa-model.json"  # the default model folder's record: sources, prompts, output hashes
E5_PROMPTS = {"query": "query: ", "passage": "passage: ", "document": "passage: "}
ENGINE_EXPORT_FOLDERS = ("onnx", "openvino")


@dataclass(frozen=True)
class ModelSpec:
    """A resolved model: what to hand to SentenceTransformer, and how to describe it."""

    location: str  # a local folder, or a hub name
    model_id: str  # a human name, stored in index manifests
    fingerprint: str  # changes whenever the weights or tokenizer change
    query_prefix: str
    passage_prefix: str
    is_local: bool


def prefixes_for(folder: Path | None, name: str) -> tuple[str, str]:
    """The model's own query/passage prompts; E5 names get E5's prefixes; else none."""
    if folder is not None and (folder / "config_sentence_transformers.json").is_file():
        prompts = json.loads((folder / "config_sentence_transformers.json").read_text()).get("prompts") or {}
        if prompts.get("query") or prompts.get("passage") or prompts.get("document"):
            return prompts.get("query", ""), prompts.get("passage") or prompts.get("document", "")
    if re.search(r"(^|[/_-])e5([_-]|$)", name.lower()):
        return E5_PROMPTS["query"], E5_PROMPTS["passage"]
    return "", ""


def spec_for_folder(folder: Path, model_id: str) -> ModelSpec:
    query, passage = prefixes_for(folder, model_id)
    return ModelSpec(str(folder), model_id, folder_fingerprint(folder), query, passage, True)


def folder_fingerprint(folder: Path) -> str:
    """The identity of a model folder's weights and tokenizer, whatever engine runs them.

    The default model's is the hash of its weights, from its manifest. A foreign folder is known
    by its JSON files and the sizes of its weight files; engine exports (`onnx/`, `openvino/`)
    are left out, so writing an export never changes the identity indexes were built with.
    """
    manifest = folder / MANIFEST_NAME
    if manifest.is_file():
        return json.loads(manifest.read_text())["outputs"]["model.safetensors"][:16]
    digest = hashlib.sha256()
    for item in sorted(folder.rglob("*")):
        relative = item.relative_to(folder)
        if relative.parts[0] in ENGINE_EXPORT_FOLDERS or relative.parts[0].startswith("."):
            continue
        if item.is_file() and item.suffix in {".json", ".safetensors", ".bin", ".txt", ".model"}:
            digest.update(f"{relative}:{item.stat().st_size}\n".encode())
            if item.suffix == ".json":
                digest.update(item.read_bytes())
    return digest.hexdigest()[:16]
