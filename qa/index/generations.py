"""Generations on disk: which one is live, whether one is complete, what it was built from.

An index folder holds numbered generations (`g000007/`) and `CURRENT`, which names the live one
and is replaced atomically. A generation is used only when it is complete. When CURRENT names a
generation that is missing or incomplete, the index is damaged: readers refuse it (they never
answer from an older generation behind the user's back) and the next build rebuilds it from
the live generation's own record of its sources. Only when CURRENT itself is missing or
garbled, so that nothing says which generation is live, is the newest complete one used, and
every command says so. The messages that name the damage also name the command that repairs it.
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
    """The generation to read: CURRENT's; the newest complete one when CURRENT names none; or None.

    Raises :class:`IndexStoreError` when CURRENT names a generation that is missing or
    incomplete: that generation is the index, and an older one would silently lose whatever
    was added since. CURRENT is only ever a plain generation name inside `path` (a `../` path
    is not followed).
    """
    for _ in range(3):  # a build may switch CURRENT and remove what it named between two reads
        name = pointer_name(path)
        damage = live_damage(path)
        if damage is None or pointer_name(path) == name:
            break
    if damage is not None:
        raise IndexStoreError(damaged(path, damage))
    if name is not None:
        return path / name
    return newest_complete(path)


def live_damage(path: Path) -> str | None:
    """Why the generation CURRENT names cannot be used (missing, incomplete), or None (it can,
    or CURRENT names no generation)."""
    name = pointer_name(path)
    if name is None:
        return None
    problem = incompleteness(path / name)
    return f"its live generation {name} {problem}" if problem else None


def newest_complete(path: Path, but: str | None = None) -> Path | None:
    """The newest complete generation (other than `but`), or None."""
    return next((g for g in generations(path) if g.name != but and incompleteness(g) is None), None)


def pointer_problem(path: Path) -> str | None:
    """What is wrong with CURRENT when it names no generation (None: it names one), for the
    warning every command prints when it reads the newest complete generation instead."""
    if pointer_name(path) is not None:
        return None
    if not (path / "CURRENT").exists():
        return "CURRENT is missing"
    return "CURRENT does not name a generation"


def pointer_name(path: Path) -> str | None:
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


def incompleteness(generation: Path) -> str | None:
    """What makes a generation unusable before its arrays are read (cheap), or None: a missing or
    unreadable folder, an unparseable manifest, a missing file."""
    for item, absent in ((generation, "is missing"), (generation / "manifest.json", "lacks manifest.json")):
        try:
            item.stat()
        except FileNotFoundError:
            return absent
        except OSError as exc:
            return f"cannot be read ({exc.strerror or exc})"
    try:
        manifest = parse_manifest(generation)
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    except ValueError:
        return "has an unreadable manifest.json"
    # Another format's files are not known here: its manifest is enough for the open to say
    # "rebuild it" and for a build to rebuild it, instead of "damaged" or "no index".
    if manifest.format_version != FORMAT_VERSION:
        return None
    names = [n for n in GENERATION_FILES if n != "faiss.index" or manifest.store is None]
    missing = [n for n in names if not (generation / n).is_file()]
    return f"lacks {', '.join(missing)}" if missing else None


def recorded_sources(path: Path) -> list[str] | None:
    """The source paths the index was built from (see :func:`sources_record`), or None."""
    record = sources_record(path)
    return record[0] if record else None


def sources_record(path: Path) -> tuple[list[str], Path] | None:
    """(the source paths the index was built from, the generation that says so), or None.

    Each generation records them twice (manifest.json and sources.json), so a rebuild without
    PATH finds them even when the live manifest is damaged. The live generation's record comes
    first, and when it has one, no other counts: an older one's sources would drop what was
    added since. Only when the live generation (or CURRENT) is gone altogether is the newest
    older record used; the caller says so.
    """
    name = pointer_name(path)
    live = [path / name] if name is not None else []
    for generation in live + [g for g in generations(path) if g.name != name]:
        for reader in (lambda g: parse_manifest(g).source_paths(), _read_sources_file):
            try:
                return reader(generation), generation
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
    damage = live_damage(path)
    if damage is not None:
        return damage
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


def fallback_note(path: Path, generation: Path) -> str | None:
    """The warning for reading `generation` although CURRENT does not name it, or None."""
    problem = pointer_problem(path)
    return f"{problem}; using {generation.name}, the newest complete generation" if problem else None


def missing_message(path: Path) -> str:
    """No complete generation: say whether there is nothing or something damaged."""
    if generations(path):
        return damaged(path, "no generation is complete: manifest.json or other files unreadable")
    how = "`qa index`" if is_default(path) else f"`qa index PATH... --index {path}`"
    return f"no index at {path}; build it with {how}"
