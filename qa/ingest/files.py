"""Finding the article files under the paths given, and decoding each to text.

Files are collected recursively in sorted order (deterministic ids and order); a file is UTF-8,
or has a BOM, or its encoding is detected (Western European text is read as cp1252 first,
which charset detection misreads on short French articles). A file that cannot be read or
decoded is skipped with a warning by the caller, never aborting the build. :func:`read_text`
decodes exactly as ingestion does, so passage offsets index into its result.
"""

from __future__ import annotations

import codecs
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import charset_normalizer

from ..errors import QAError
from ..text import path_text

from .readers import EXTENSIONS, extract, is_structured, layout

KINDS = ", ".join(EXTENSIONS)


def read_text(path: str | os.PathLike) -> str:
    """A file's text exactly as ingestion reads it (decoded, or for an HTML page, PDF, DOCX,
    EPUB or ODT file its extracted blocks); passage offsets index into this string."""
    from .readers import Skipped

    try:
        data = read_regular(Path(path))
    except FileNotFoundError:
        raise QAError(f"no such file or folder: {path_text(path)}") from None
    except OSError as exc:
        raise QAError(f"cannot read {path_text(path)}: {exc.strerror or exc}") from None
    try:
        if is_structured(Path(path)):
            return layout(extract(Path(path), data).pieces)[0]
        return decode(data)[0]
    except (Unreadable, Skipped) as exc:
        raise QAError(f"cannot read {path_text(path)}: {exc}") from None


def read_regular(path: Path) -> bytes:
    """The bytes of a regular file; a FIFO or device raises at once instead of blocking or
    streaming forever (opened non-blocking, checked on the descriptor: no race with a swap)."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(0, "not a regular file (a FIFO, socket or device)")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read()
    finally:
        os.close(fd)



@dataclass(frozen=True)
class SourceFile:
    path: Path
    display: str  # how warnings name the file: the path as the user would recognise it
    doc_id: str
    is_md: bool


def _as_list(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[str | os.PathLike]:
    if isinstance(paths, (str, os.PathLike)):
        return [paths]
    return list(paths)


def collect_files(paths: str | os.PathLike | Iterable, warnings: list[str]) -> list[SourceFile]:
    """The article files under ``paths``, in argument order and sorted within each folder."""
    given = _as_list(paths)
    if not given:
        raise QAError("no file or folder given")
    files: list[SourceFile] = []
    seen_paths: set[str] = set()
    seen_ids: set[str] = set()
    for raw in given:
        root = Path(raw)
        if not root.exists():
            raise QAError(f"no such file or folder: {path_text(raw)}")
        if not (root.is_dir() or root.is_file()):
            raise QAError(f"not a regular file or folder (a FIFO, socket or device): {path_text(raw)}")
        for path, rel in _files_under(root, warnings):
            real = os.path.realpath(path)
            if real in seen_paths:
                continue
            seen_paths.add(real)
            doc_id = path_text(_unique_doc_id(root, rel, path, seen_ids))
            files.append(SourceFile(path, path_text(path), doc_id, path.suffix.lower() == ".md"))
    return files


def _files_under(root: Path, warnings: list[str]) -> list[tuple[Path, str]]:
    """(path, id relative to the given path) for a file given directly or a folder's articles."""
    if not root.is_dir():
        if root.suffix.lower() not in EXTENSIONS:
            warnings.append(f"skipped {path_text(root)}: not a document qa reads ({KINDS})")
            return []
        return [(root, root.name)]
    found = []
    unreadable: list[OSError] = []
    for folder, dirs, names in os.walk(root, onerror=unreadable.append):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in names:
            if not name.startswith(".") and Path(name).suffix.lower() in EXTENSIONS:
                path = Path(folder) / name
                if path.is_file():
                    found.append((path, path.relative_to(root).as_posix()))
                elif path.exists():
                    warnings.append(f"skipped {path_text(path)}: not a regular file (a FIFO, socket or device)")
    _report_unreadable(root, unreadable, warnings)
    if not found:
        raise QAError(f"no documents ({KINDS}) in folder: {path_text(root)}")
    return sorted(found, key=lambda item: item[1])


def _report_unreadable(root: Path, errors: list[OSError], warnings: list[str]) -> None:
    """A folder that cannot be listed: the root is an error, a sub-folder one warning each (its
    articles are left out, and a re-index removes the passages they had)."""
    for exc in errors:
        where = Path(exc.filename) if exc.filename else root
        why = exc.strerror or str(exc)
        if where == root:
            raise QAError(f"cannot read the folder {path_text(root)}: {why}")
        warnings.append(f"skipped the folder {path_text(where)}: {why} (its articles are not indexed)")


def _unique_doc_id(root: Path, rel: str, path: Path, seen: set[str]) -> str:
    """The relative id, made unique when two given paths hold files with the same name."""
    folder = root.resolve() if root.is_dir() else root.resolve().parent
    for candidate in (rel, f"{folder.name}/{rel}", path.resolve().as_posix()):
        if candidate not in seen:
            seen.add(candidate)
            return candidate
    return path.resolve().as_posix()  # pragma: no cover - same resolved path is skipped earlier


# --------------------------------------------------------------------------- decoding


class Unreadable(Exception):
    """A file that cannot be decoded as text; the message says why."""


_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
# Letters of Western European languages (French first); a cp1252 decoding that only produces these,
# within otherwise ASCII words, is what a Latin-1/Windows-1252 French article looks like.
_WESTERN = set("àâäæçéèêëîïôöœùûüÿñáíóúãõßÀÂÄÆÇÉÈÊËÎÏÔÖŒÙÛÜŸÑÁÍÓÚÃÕ«»‘’‚“”„–—…€°·•©®²½×§£±µ¿¡ªº\xa0\xad")


def decode(data: bytes) -> tuple[str, str | None]:
    """(text with newlines normalised, encoding used when not UTF-8); raises :class:`Unreadable`."""
    text, encoding = _decode_raw(data)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.removeprefix("\ufeff"), encoding


def _decode_raw(data: bytes) -> tuple[str, str | None]:
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec), (None if codec == "utf-8-sig" else codec)
            except UnicodeDecodeError:
                raise Unreadable(f"invalid {codec} text") from None
    if b"\x00" in data:
        raise Unreadable("binary file")
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        pass
    western = _western_decoding(data)
    if western is not None:
        return western, "cp1252"
    best = charset_normalizer.from_bytes(data).best()
    if best is None:
        raise Unreadable("not UTF-8 and its encoding could not be detected")
    return str(best), best.encoding


def _western_decoding(data: bytes) -> str | None:
    """The cp1252 reading when it is plausible: charset detection misreads short French text."""
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError:
        return None
    non_ascii = [c for c in text if ord(c) > 127]
    letters = sum(c.isalpha() for c in text)
    if not non_ascii or any(c not in _WESTERN for c in non_ascii):
        return None
    return text if len(non_ascii) <= 0.3 * max(letters, 1) else None

