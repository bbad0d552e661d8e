"""Running the format readers over a build's files: cached, in parallel where it pays.

Extracting a PDF or an HTML page costs milliseconds to seconds; embedding an unchanged passage
is already skipped by the index, so re-parsing every unchanged file on each `qa index` would
be most of an update's time. Each result (the blocks and metadata, or the reason a file was
skipped) is cached under ``$QA_CACHE_DIR/extracted/`` by the sha256 of the file's bytes and
the readers' and libraries' versions; a file whose path, mtime and size are those recorded
last time is taken to have the same hash without being read. What is left is parsed in worker
processes (spawned: the parent may hold threads of the engine) when there is enough of it to
repay starting them and cores are idle to run them, else in this process; a progress bar
names the file being parsed.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from ..paths import cache_dir
from .files import SourceFile, read_regular
from .readers import FORMATS, READERS_VERSION, Extracted, Skipped, is_structured

Result = Extracted | Skipped
# progress(done, total, name of the file being parsed)
FileProgress = Callable[[int, int, str], None]
PARALLEL_MIN_FILES = 8  # fewer files than this are parsed here: spawning workers costs ~1 s
PARALLEL_MIN_BYTES = 4_000_000  # ... unless they are this large together
_LIBRARIES = {"html": "trafilatura", "pdf": "pypdfium2", "docx": "python-docx", "epub": "lxml", "odt": "lxml"}


def extract_files(files: list[SourceFile], progress: FileProgress | None = None, *,
                  use_cache: bool = True) -> tuple[dict[Path, Result], int]:
    """The reader's result for every structured file in `files` (by path), and how many were
    actually parsed (the rest came from the cache)."""
    cache = _Cache(cache_dir() / "extracted") if use_cache else None
    results: dict[Path, Result] = {}
    todo: list[tuple[SourceFile, str | None]] = []
    for file in files:
        if not is_structured(file.path):
            continue
        digest = cache.digest(file.path) if cache else None
        cached = cache.get(digest, file.path) if cache and digest else None
        if cached is not None:
            results[file.path] = cached
        else:
            todo.append((file, digest))
    for (file, digest), result in zip(todo, _parse_all([f for f, _ in todo], progress)):
        results[file.path] = result
        if cache and digest:
            cache.put(digest, file.path, result)
    if cache:
        cache.save()
    return results, len(todo)


def idle_cores() -> int:
    """Cores no other process is using (one minute's load average off the count): workers on
    busy cores only add the cost of starting them (BENCHMARKS.md, "Documents")."""
    cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except OSError:
        return cores
    return max(1, min(cores, round(cores - load + 1)))


def _parse_all(files: list[SourceFile], progress: FileProgress | None) -> list[Result]:
    total = len(files)
    if total == 0:
        return []
    size = sum(_size(f.path) for f in files)
    workers = min(idle_cores(), total)
    if workers < 2 or (total < PARALLEL_MIN_FILES and size < PARALLEL_MIN_BYTES):
        out = []
        for done, file in enumerate(files):
            if progress:
                progress(done, total, file.display)
            out.append(parse_file(file.path))
        if progress:
            progress(total, total, "")
        return out
    import concurrent.futures
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    out: list[Result | None] = [None] * total
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = {pool.submit(_parse_in_worker, str(f.path)): i for i, f in enumerate(files)}
        done = 0
        for future in concurrent.futures.as_completed(futures):
            i = futures[future]
            try:
                out[i] = _decode(future.result())
            except Exception as exc:  # noqa: BLE001 - a worker that died (a crash in a C library) skips its file
                out[i] = Skipped(f"its reader crashed ({type(exc).__name__}); not read")
            done += 1
            if progress:
                progress(done, total, files[i].display)
    return out  # type: ignore[return-value]


def parse_file(path: Path) -> Result:
    """Read and extract one file; every failure is a :class:`Skipped` with its reason."""
    from .blocks import extract_file

    try:
        data = read_regular(path)
    except OSError as exc:
        return Skipped(f"cannot read ({exc.strerror or exc})")
    try:
        return extract_file(path, data)
    except Skipped as exc:
        return exc


def _parse_in_worker(path: str) -> dict:
    return _encode(parse_file(Path(path)))


def _encode(result: Result) -> dict:
    return {"skipped": str(result)} if isinstance(result, Skipped) else result.to_json()


def _decode(data: dict) -> Result:
    return Skipped(data["skipped"]) if "skipped" in data else Extracted.from_json(data)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def reader_key(path: Path) -> str:
    """What an extraction depends on besides the bytes: the readers' and the library's versions."""
    reader = FORMATS[path.suffix.lower()]
    try:
        version = metadata.version(_LIBRARIES[reader])
    except metadata.PackageNotFoundError:
        version = "?"
    return f"{READERS_VERSION}:{reader}:{version}"


class _Cache:
    """Extractions by content hash, and the (mtime, size) -> hash record of files seen before.

    Written atomically (a temporary file renamed over), so two builds at once can only lose an
    entry, never corrupt one; an unreadable entry is a miss."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.stats_path = folder / "stats.json"
        try:
            self.stats: dict[str, list] = json.loads(self.stats_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            self.stats = {}
        self.dirty = False

    def digest(self, path: Path) -> str | None:
        """The file's sha256: recorded when its mtime and size are unchanged, else computed."""
        try:
            stat = path.stat()
        except OSError:
            return None
        key = os.fsencode(path.resolve()).decode("utf-8", "surrogateescape")
        recorded = self.stats.get(key)
        if recorded and recorded[:2] == [stat.st_mtime_ns, stat.st_size]:
            return recorded[2]
        try:
            digest = hashlib.sha256(read_regular(path)).hexdigest()
        except OSError:
            return None
        self.stats[key] = [stat.st_mtime_ns, stat.st_size, digest]
        self.dirty = True
        return digest

    def _entry(self, digest: str, path: Path) -> Path:
        key = hashlib.sha256(f"{digest}:{reader_key(path)}".encode()).hexdigest()[:32]
        return self.folder / key[:2] / f"{key}.json"

    def get(self, digest: str, path: Path) -> Result | None:
        try:
            return _decode(json.loads(self._entry(digest, path).read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def put(self, digest: str, path: Path, result: Result) -> None:
        _write_atomically(self._entry(digest, path), json.dumps(_encode(result), ensure_ascii=False))

    def save(self) -> None:
        if self.dirty:
            _write_atomically(self.stats_path, json.dumps(self.stats))


def _write_atomically(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except OSError:
        pass  # a cache that cannot be written only costs a re-parse next time

