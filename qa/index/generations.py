"""Generations on disk: which one is live, whether one is complete, what it was built from.

An index folder holds numbered generations (`g000007/`) and `CURRENT`, which names the live one
and is replaced atomically. A damaged or missing pointer falls back to the newest complete
generation; the messages that name the damage also name the command that repairs it.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..errors import IndexStoreError
from ..paths import default_index_dir
from ..text import real_path
from .manifest import FORMAT_VERSION, IndexManifest
from .tokens import FILES as TOKEN_FILES


GENERATION_NAME = re.compile(r"g\d{6}")


GENERATION_FILES = ("manifest.json", "passages.jsonl", "documents.json", "vectors.npy", "sentence_spans.npy",
                    "faiss.index", *TOKEN_FILES)


def live_generation(path: Path) -> Path | None:
    """The generation CURRENT names if it is valid, else the newest complete one, else None.

    CURRENT is only ever a plain generation name inside `path` (a `../` path is not followed), so
    a damaged, truncated or deleted pointer costs nothing as long as one complete generation is
    left: readers and the next build use it instead of seeing "no index" and rebuilding over it.
    """
    name = _pointer(path)
    if name is not None and _complete(path / name):
        return path / name
    return next((g for g in generations(path) if _complete(g)), None)


def pointer_problem(path: Path) -> str | None:
    """What is wrong with CURRENT (None: it names a complete generation), for warnings."""
    name = _pointer(path)
    if name is not None and _complete(path / name):
        return None
    if not (path / "CURRENT").exists():
        return "CURRENT is missing"
    if name is None:
        return "CURRENT does not name a generation"
    return f"CURRENT names {name}, which is missing or incomplete"


def _pointer(path: Path) -> str | None:
    """The generation name in CURRENT when it is one (g + 6 digits), whatever bytes it holds."""
    try:
        raw = (path / "CURRENT").read_bytes()[:64]
    except OSError:
        return None
    name = raw.decode("ascii", "replace").strip()
    return name if GENERATION_NAME.fullmatch(name) else None


def generations(path: Path) -> list[Path]:
    """The generation folders of an index, newest first."""
    try:
        names = [p.name for p in path.iterdir() if GENERATION_NAME.fullmatch(p.name) and p.is_dir()]
    except OSError:
        return []
    return [path / name for name in sorted(names, reverse=True)]


def _complete(generation: Path) -> bool:
    """Every file of a generation is there and its manifest parses (cheap: no arrays read)."""
    try:
        manifest = parse_manifest(generation)
    except (OSError, ValueError):
        return False
    # Another format's files are not known here: its manifest is enough for the open to say
    # "rebuild it" and for a build to rebuild it, instead of "damaged" or "no index".
    names = [n for n in GENERATION_FILES if n != "faiss.index" or manifest.store is None]
    return manifest.format_version != FORMAT_VERSION or all((generation / n).is_file() for n in names)


def recorded_sources(path: Path) -> list[str] | None:
    """The source paths the index was built from, from the first generation that still says.

    Each generation records them twice (manifest.json and sources.json), so a rebuild without
    PATH finds them even when the live manifest is damaged.
    """
    live = live_generation(path)
    for generation in ([live] if live else []) + generations(path):
        for reader in (lambda g: parse_manifest(g).source_paths(), _read_sources_file):
            try:
                return reader(generation)
            except (OSError, ValueError, TypeError, KeyError):
                continue
    return None


def _read_sources_file(generation: Path) -> list[str]:
    record = json.loads((generation / "sources.json").read_text(encoding="utf-8"))
    return [real_path(text, raw) for text, raw in zip(record["sources"], record["raw_sources"], strict=True)]


def repair_command(path: Path) -> str:
    """The command that rebuilds the index at `path`, as the user should type it."""
    if is_default(path):
        return "`qa index`"
    return f"`qa index --index {path}`" if recorded_sources(path) else f"`qa index PATH --index {path}`"


def rebuild_reason(path: Path, spec) -> str | None:
    """Why the index at `path` cannot serve model `spec` as it is (None: it can).

    Lets the default index rebuild itself after an upgrade instead of failing on first use.
    """
    generation = live_generation(path)
    if generation is None:
        return "it does not exist yet"
    try:
        manifest = read_manifest(generation)
    except IndexStoreError:
        return "its manifest is unreadable"
    if manifest.format_version != FORMAT_VERSION:
        return f"it has index format {manifest.format_version}, this version of qa reads {FORMAT_VERSION}"
    if manifest.model_fingerprint != spec.fingerprint:
        return f"it was built with another model ({manifest.model_id})"
    return None


def parse_manifest(generation: Path) -> IndexManifest:
    return IndexManifest.model_validate_json((generation / "manifest.json").read_bytes())


def read_manifest(generation: Path) -> IndexManifest:
    try:
        return parse_manifest(generation)
    except (OSError, ValueError) as exc:
        what = f"unreadable manifest in {generation.name}: {' '.join(str(exc).split())[:120]}"
        raise IndexStoreError(damaged(generation.parent, what)) from None


def is_default(path: Path) -> bool:
    return path.resolve() == default_index_dir().resolve()


def damaged(path: Path, what: str) -> str:
    return f"the index at {path} is damaged ({what}); repair it with {repair_command(path)}"


def missing_message(path: Path) -> str:
    """No complete generation: say whether there is nothing or something damaged."""
    if generations(path):
        return damaged(path, "no generation is complete: manifest.json or other files unreadable")
    how = "`qa index`" if is_default(path) else f"`qa index PATH... --index {path}`"
    return f"no index at {path}; build it with {how}"
