"""Turn files and folders of articles into passages: the unit that is embedded and retrieved.

A passage is a paragraph of an article, because a paragraph is the smallest block that is still
self-contained in news prose. Around the paragraphs, saved web pages carry clutter that must not
be retrieved as an answer, so ingestion

* reads ``.txt`` and ``.md`` files, recursively, in sorted order (deterministic ids and order),
  decoding UTF-8 or, failing that, a detected encoding; a bad file is skipped with a warning,
  never aborting the build;
* splits the text into blank-line separated blocks and classifies each block as content,
  heading/title (kept as the ``context`` of the paragraph it introduces), or boilerplate
  (advertising markers, comment forms, share/subscribe/cookie/copyright notices, short lines
  repeated within a document or across documents, and everything after a comment form);
* parses a leading ``date 2019-04`` marker (or Markdown front matter) into the document's date;
* splits a paragraph too long for the model at sentence boundaries, never truncating it;
* indexes a paragraph that appears in several articles once, with every source recorded, using
  near-duplicate detection (word 3-gram shingles, Jaccard resemblance or containment), because
  agencies' copy is reused with small wording changes.

Character offsets (``start``/``end``) index into :func:`read_text` of the source file, so an
interface can show or highlight the passage inside the whole article.
"""

from __future__ import annotations

import codecs
import hashlib
import math
import os
import re
import stat
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from itertools import chain, repeat
from dataclasses import dataclass, field
from pathlib import Path

import charset_normalizer
from pydantic import BaseModel

from .errors import QAError
from .text import valid_text  # noqa: F401  (re-exported: ingestion's callers use it)
from .sentences import split_sentences

EXTENSIONS = (".txt", ".md")
MAX_TOKENS = 500  # the model window is 512 including special tokens and the "passage: " prefix

# A heading is one short line; longer or punctuated lines are prose.
HEADING_MAX_WORDS = 16
HEADING_MAX_CHARS = 140
HEADING_RUN_MAX = 3  # more consecutive short lines than this are content (a list), not headings
NOT_HEADING_ENDINGS = ".…:;,"
CLOSERS = "\"'»”’)]*_ \u00a0\u202f"
CONTEXT_JOINER = " — "

# Short lines repeated within a document or across documents are page furniture.
REPEATED_MAX_WORDS = 6
# Boilerplate patterns only fire on blocks this short: a real paragraph may mention cookies.
PATTERN_MAX_WORDS = 40
START_PATTERN_MAX_WORDS = 30
COMMENT_MARKER_MAX_WORDS = 8

# Near-duplicate detection, on word 3-gram shingles of the normalised text.
SHINGLE_SIZE = 3
JACCARD_MIN = 0.7
CONTAINMENT_MIN = 0.85  # the 003/004 split paragraph measures 0.93; unrelated ones stay below 0.35
CONTAINMENT_MIN_SHINGLES = 8  # a short sentence inside a long paragraph is not its duplicate

CountTokens = Callable[[str], int]
Span = tuple[int, int]


class Source(BaseModel):
    """Where a passage's text occurs: a document and the character span of the paragraph."""

    doc_id: str
    title: str | None = None
    date: str | None = None
    paragraph: int
    start: int
    end: int


class Passage(BaseModel):
    """One retrievable unit: a paragraph (or a window of a long one) with its provenance."""

    id: str
    text: str
    context: str | None = None
    doc_id: str
    title: str | None = None
    date: str | None = None
    paragraph: int
    start: int
    end: int
    other_sources: list[Source] = []

    def embed_text(self) -> str:
        """The text given to the model: the heading helps the paragraph match its topic."""
        return _embed_text(self.context, self.text)

    def content_hash(self) -> str:
        """Hash of what is embedded, so an incremental build re-embeds only what changed."""
        return hashlib.sha256(self.embed_text().encode("utf-8")).hexdigest()

    def sources(self) -> list[Source]:
        """Every occurrence of this passage, the primary one first."""
        primary = Source(doc_id=self.doc_id, title=self.title, date=self.date,
                         paragraph=self.paragraph, start=self.start, end=self.end)
        return [primary, *self.other_sources]


class Document(BaseModel):
    """An ingested file; ``n_passages`` counts the passages that cite it (after deduplication).

    ``path`` is for display (see :func:`path_text`); ``raw_path`` keeps the exact bytes of a name
    that is not UTF-8, so the file can still be opened: use :meth:`file`.
    """

    doc_id: str
    path: str
    title: str | None = None
    date: str | None = None
    sha256: str
    n_passages: int
    raw_path: str | None = None

    def file(self) -> str:
        """The path that opens the file, whatever the bytes of its name."""
        return real_path(self.path, self.raw_path)


class Corpus(BaseModel):
    """The result of ingestion: documents, unique passages, and one warning line per problem."""

    documents: list[Document]
    passages: list[Passage]
    warnings: list[str]


# --------------------------------------------------------------------------- public functions


def load_corpus(paths: str | os.PathLike | Iterable[str | os.PathLike], *,
                count_tokens: CountTokens | None = None, max_tokens: int = MAX_TOKENS) -> Corpus:
    """Read files/folders into a deduplicated list of passages that each fit ``max_tokens``.

    ``count_tokens`` should be the model tokenizer's counter (applied to the text that will be
    embedded, context included); without one a conservative estimate is used. Raises
    :class:`QAError` for a path that does not exist or a folder without articles; a single bad
    file only produces a warning.
    """
    if max_tokens < 1:
        raise QAError(f"max_tokens must be at least 1, not {max_tokens}")
    count = count_tokens or estimate_tokens
    warnings: list[str] = []
    parsed = [doc for f in _collect_files(paths, warnings) if (doc := _read_document(f, warnings))]
    repeated = _repeated_short_keys(parsed)
    passages: list[Passage] = []
    for doc in parsed:
        found = _document_passages(doc, repeated, count, max_tokens)
        if not found:
            warnings.append(f"{doc.file.display}: no passages (only headings or boilerplate)")
        passages.extend(found)
    unique = deduplicate(passages)
    return Corpus(documents=_documents(parsed, unique), passages=unique, warnings=warnings)


def read_text(path: str | os.PathLike) -> str:
    """Decode a file exactly as ingestion does; passage offsets index into this string."""
    try:
        data = _read_regular(Path(path))
    except FileNotFoundError:
        raise QAError(f"no such file or folder: {path_text(path)}") from None
    except OSError as exc:
        raise QAError(f"cannot read {path_text(path)}: {exc.strerror or exc}") from None
    try:
        return _decode(data)[0]
    except _Unreadable as exc:
        raise QAError(f"cannot read {path_text(path)}: {exc}") from None


def _read_regular(path: Path) -> bytes:
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


def path_text(path: str | os.PathLike) -> str:
    """A path as printable, storable text: bytes of the name that are not UTF-8 shown as ``\\xff``.

    Python hands such names over with lone surrogates, which no UTF-8 writer (JSON, the terminal)
    accepts; this is how they are shown and become document ids.
    """
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def path_bytes(path: str | os.PathLike) -> str | None:
    """The exact bytes of a path (hex) when its name is not UTF-8, else None (the text is exact)."""
    raw = os.fsencode(path)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.hex()
    return None


def real_path(text: str, raw: str | None) -> str:
    """The inverse of :func:`path_text` + :func:`path_bytes`: a path that opens the file."""
    return os.fsdecode(bytes.fromhex(raw)) if raw else text


def estimate_tokens(text: str) -> int:
    """A conservative token count (about 3 characters a token) when no tokenizer is given."""
    return len(text) // 3 + 1


def normalise(text: str) -> str:
    """Comparison form: casefolded, accents folded, punctuation removed, whitespace collapsed."""
    return " ".join(_PUNCT.sub(" ", _fold(text)).split())


def passage_id(text: str) -> str:
    """Stable id: the same text (up to case, accents and punctuation) gets the same id."""
    return hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()[:16]


# --------------------------------------------------------------------------- collecting files


@dataclass(frozen=True)
class _File:
    path: Path
    display: str  # how warnings name the file: the path as the user would recognise it
    doc_id: str
    is_md: bool


def _as_list(paths: str | os.PathLike | Iterable[str | os.PathLike]) -> list[str | os.PathLike]:
    if isinstance(paths, (str, os.PathLike)):
        return [paths]
    return list(paths)


def _collect_files(paths: str | os.PathLike | Iterable, warnings: list[str]) -> list[_File]:
    """The article files under ``paths``, in argument order and sorted within each folder."""
    given = _as_list(paths)
    if not given:
        raise QAError("no file or folder given")
    files: list[_File] = []
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
            files.append(_File(path, path_text(path), doc_id, path.suffix.lower() == ".md"))
    return files


def _files_under(root: Path, warnings: list[str]) -> list[tuple[Path, str]]:
    """(path, id relative to the given path) for a file given directly or a folder's articles."""
    if not root.is_dir():
        if root.suffix.lower() not in EXTENSIONS:
            warnings.append(f"skipped {path_text(root)}: not a .txt or .md file")
            return []
        return [(root, root.name)]
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in names:
            if not name.startswith(".") and Path(name).suffix.lower() in EXTENSIONS:
                path = Path(folder) / name
                if path.is_file():
                    found.append((path, path.relative_to(root).as_posix()))
                elif path.exists():
                    warnings.append(f"skipped {path_text(path)}: not a regular file (a FIFO, socket or device)")
    if not found:
        raise QAError(f"no .txt or .md files in folder: {path_text(root)}")
    return sorted(found, key=lambda item: item[1])


def _unique_doc_id(root: Path, rel: str, path: Path, seen: set[str]) -> str:
    """The relative id, made unique when two given paths hold files with the same name."""
    folder = root.resolve() if root.is_dir() else root.resolve().parent
    for candidate in (rel, f"{folder.name}/{rel}", path.resolve().as_posix()):
        if candidate not in seen:
            seen.add(candidate)
            return candidate
    return path.resolve().as_posix()  # pragma: no cover - same resolved path is skipped earlier


# --------------------------------------------------------------------------- decoding


class _Unreadable(Exception):
    """A file that cannot be decoded as text; the message says why."""


_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
         (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
# Letters of Western European languages (French first); a cp1252 decoding that only produces these,
# within otherwise ASCII words, is what a Latin-1/Windows-1252 French article looks like.
_WESTERN = set("àâäæçéèêëîïôöœùûüÿñáíóúãõßÀÂÄÆÇÉÈÊËÎÏÔÖŒÙÛÜŸÑÁÍÓÚÃÕ«»‘’‚“”„–—…€°·•©®²½×§£±µ¿¡ªº\xa0\xad")


def _decode(data: bytes) -> tuple[str, str | None]:
    """(text with newlines normalised, encoding used when not UTF-8); raises :class:`_Unreadable`."""
    text, encoding = _decode_raw(data)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.removeprefix("\ufeff"), encoding


def _decode_raw(data: bytes) -> tuple[str, str | None]:
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec), (None if codec == "utf-8-sig" else codec)
            except UnicodeDecodeError:
                raise _Unreadable(f"invalid {codec} text") from None
    if b"\x00" in data:
        raise _Unreadable("binary file")
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError:
        pass
    western = _western_decoding(data)
    if western is not None:
        return western, "cp1252"
    best = charset_normalizer.from_bytes(data).best()
    if best is None:
        raise _Unreadable("not UTF-8 and its encoding could not be detected")
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


# --------------------------------------------------------------------------- documents and blocks


@dataclass
class _Block:
    """A blank-line separated block: its span in the text and whitespace-collapsed text."""

    start: int
    end: int
    text: str
    n_lines: int
    md_heading: bool = False
    kind: str = "paragraph"  # paragraph | heading | title | boilerplate | dropped
    reason: str = ""


@dataclass
class _ParsedDocument:
    file: _File
    text: str
    sha256: str
    title: str | None
    date: str | None
    blocks: list[_Block] = field(default_factory=list)

    def document(self, n_passages: int) -> Document:
        path = os.path.abspath(self.file.path)
        return Document(doc_id=self.file.doc_id, path=path_text(path), raw_path=path_bytes(path), title=self.title,
                        date=self.date, sha256=self.sha256, n_passages=n_passages)


def _read_document(file: _File, warnings: list[str]) -> _ParsedDocument | None:
    """Decode and split one file, or record why it is skipped."""
    try:
        data = _read_regular(file.path)
        text, encoding = _decode(data)
    except OSError as exc:
        warnings.append(f"skipped {file.display}: cannot read ({exc.strerror or exc})")
        return None
    except _Unreadable as exc:
        warnings.append(f"skipped {file.display}: {exc}")
        return None
    if not text.strip():
        warnings.append(f"skipped {file.display}: empty file")
        return None
    if encoding is not None:
        warnings.append(f"{file.display}: not UTF-8, decoded as {encoding}")
    meta, body_start = _front_matter(text) if file.is_md else ({}, 0)
    doc = _ParsedDocument(file, text, hashlib.sha256(data).hexdigest(), meta.get("title"),
                          _parse_date(meta.get("date", "")))
    doc.blocks = _split_blocks(text, body_start, file.is_md)
    _take_date_marker(doc)
    return doc


_FRONT_MATTER = re.compile(r"---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|$)", re.S)
_META_LINE = re.compile(r"^\s*(\w+)\s*:\s*(.*?)\s*$", re.M)


def _front_matter(text: str) -> tuple[dict[str, str], int]:
    """Markdown front matter (``---`` ... ``---``): its title/date, and where the body starts."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, 0
    meta = {k.lower(): v.strip("'\"") for k, v in _META_LINE.findall(match.group(1))}
    if "titre" in meta and "title" not in meta:
        meta["title"] = meta["titre"]
    return {k: v for k, v in meta.items() if v}, match.end()


_MD_HEADING = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
_MD_RULE = re.compile(r"^ {0,3}(?:(?:-[ \t]*){3,}|(?:\*[ \t]*){3,}|(?:_[ \t]*){3,}|=+[ \t]*)$")
_WORD = re.compile(r"\S+")


def _split_blocks(text: str, pos: int, is_md: bool) -> list[_Block]:
    """Blank-line separated blocks; in Markdown, heading lines are blocks of their own."""
    blocks: list[_Block] = []
    current: list[Span] = []
    for line in text[pos:].split("\n"):
        span, pos = (pos, pos + len(line)), pos + len(line) + 1
        if is_md and _md_line(text, line, span, current, blocks):
            continue
        if line.strip():
            current.append(span)
        elif current:
            blocks.append(_make_block(text, current))
            current.clear()
    if current:
        blocks.append(_make_block(text, current))
    return [b for b in blocks if b.text]


def _md_line(text: str, line: str, span: Span, current: list[Span], blocks: list[_Block]) -> bool:
    """Handle a Markdown ATX heading, setext underline or rule; True when the line is consumed."""
    if _MD_RULE.match(line):
        if len(current) == 1 and line.lstrip()[:1] in "=-":  # setext: the line above is a heading
            blocks.append(_block(text, current[0][0], current[0][1], 1, md_heading=True))
        elif current:
            blocks.append(_make_block(text, current))
        current.clear()
        return True  # otherwise a rule separates, like a blank line
    match = _MD_HEADING.match(line)
    if not match:
        return False
    if current:
        blocks.append(_make_block(text, current))
        current.clear()
    if match.group(2):
        start = span[0] + match.start(2)
        blocks.append(_block(text, start, start + len(match.group(2)), 1, md_heading=True))
    return True


def _make_block(text: str, lines: list[Span]) -> _Block:
    start, end = lines[0][0], lines[-1][1]
    return _block(text, start, end, len(lines))


def _block(text: str, start: int, end: int, n_lines: int, md_heading: bool = False) -> _Block:
    """A block with its span trimmed to the first and last non-space character."""
    chunk = text[start:end]
    words = chunk.split()
    if not words:
        return _Block(start, start, "", n_lines, md_heading)
    start, end = start + len(chunk) - len(chunk.lstrip()), end - (len(chunk) - len(chunk.rstrip()))
    return _Block(start, end, " ".join(words), n_lines, md_heading)


_DATE_MARKER = re.compile(
    r"\s*date\s*[:=]?\s*(\d{4}(?:[-/.]\d{1,2}(?:[-/.]\d{1,2})?)?|\d{1,2}[-/.]\d{1,2}[-/.]\d{4})(?=\s|$)\s*",
    re.I)


def _take_date_marker(doc: _ParsedDocument) -> None:
    """Move a leading ``date 2019-04`` / ``date: 2019-04-12`` marker from the text to the date."""
    for block in doc.blocks:
        if not block.text:
            continue
        match = _DATE_MARKER.match(doc.text, block.start, block.end)
        if match:
            doc.date = doc.date or _parse_date(match.group(1))
            new = _block(doc.text, match.end(), block.end, block.n_lines, block.md_heading)
            block.start, block.end, block.text = new.start, new.end, new.text
        break
    doc.blocks = [b for b in doc.blocks if b.text]


def _parse_date(value: str) -> str | None:
    """An ISO date string (``2019``, ``2019-04``, ``2019-04-12``) from common spellings."""
    parts = [p for p in re.split(r"[-/.T ]", value.strip()) if p][:3]
    if not parts or not all(p.isdigit() for p in parts):
        return value.strip() or None
    if len(parts[0]) != 4 and len(parts) == 3 and len(parts[2]) == 4:
        parts = parts[::-1]  # 12/04/2019
    if len(parts[0]) != 4:
        return None
    year, rest = parts[0], [int(p) for p in parts[1:]]
    limits = (12, 31)
    if any(not 1 <= v <= limit for v, limit in zip(rest, limits)):
        return year
    return "-".join([year, *(f"{v:02d}" for v in rest)])


# --------------------------------------------------------------------------- boilerplate


def _fold(text: str) -> str:
    """Casefolded, accents removed, typographic apostrophes and dashes made ASCII."""
    text = text.casefold()
    if text.isascii():
        return text
    return _COMBINING.sub("", unicodedata.normalize("NFKD", text)).translate(_ASCII_PUNCT)


_ASCII_PUNCT = str.maketrans({"’": "'", "‘": "'", "ʼ": "'", "–": "-", "—": "-", "‑": "-", "\u00a0": " ",
                              "\u202f": " "})
_PUNCT = re.compile(r"[\W_]+")
_COMBINING = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")

# The whole block is page furniture.
_WHOLE = re.compile(r"""(?x)
    (publicite|pub|advertisement|advertising|advert|ads?|annonces?|sponsorise|contenu\ sponsorise
     |sponsored(\ content)?|contenu\ partenaire|partner\ content
     |menu|accueil|home|rechercher|search|fermer|close|retour\ en\ haut|back\ to\ top|haut\ de\ page
     |lire\ la\ suite|read\ more|voir\ plus|en\ savoir\ plus|continue\ reading|continuer\ la\ lecture
     |suivant|precedent|next|previous|newsletter|cookies?|(\d+\ )?(commentaires?|comments?|reactions?)
     |reagir|reagissez|repondre|reply)
""")
# Sharing widgets: a sharing verb or a network, with at most a few filler words.
_SHARE_WORDS = set("""partager partagez share tweet tweeter imprimer print email e mail envoyer send
    facebook twitter x linkedin whatsapp pinterest reddit telegram messenger flipboard copier copy""".split())
_SHARE_FILLERS = set("le la lien link cet article this post story sur on via par by ou or".split())
# The block starts like a cross-link, a call to subscribe or share, or a comment form.
_START = re.compile(r"""(?x)
    ((a\ )?lire\ (aussi|egalement)|(voir|lisez)\ aussi|read\ (more|also)|see\ also|related(\ \w+)?\ *:
     |sur\ le\ meme\ (sujet|theme)|(abonnez|inscrivez)[-\ ]vous|suivez[-\ ]nous|follow\ us
     |(subscribe|sign\ up)\b.*\b(newsletter|updates|free|now|today)
     |partagez?(\ cet\ article|\ sur\b|\ via\b|\ *:)|share\ (this|on|via)\b
     |publicite\b|advertisement\b|(cliquez|click)\ (ici|here)\b|credits?\ photos?\b|photo\ credits?\b
     |(laissez|laisser|ajouter|ajoutez|ecrire|poster|postez)\ un\ commentaire|leave\ a\ (comment|reply)
     |post\ a\ comment)
""")
# Phrases that only occur in notices (comment forms, copyright, cookies, paywalls).
_ANYWHERE = re.compile(r"""(?x)
    adresse\ (e-?mail|mail|electronique|de\ messagerie)\ ne\ sera\ pas\ publiee
    |e-?mail\ address\ will\ not\ be\ published|champs\ (obligatoires|requis)|required\ fields\ are\ marked
    |tous\ droits\ reserves|all\ rights\ reserved|©|\bcopyright\b
    |(utilise|utilisons|utilisent|utilisez)\ des\ cookies|\buses?\ cookies|(accepte[rsz]?|refuse[rsz]?)
     \ (les\ |tous\ les\ )?cookies|accept\ (all\ )?cookies|cookie\ (policy|settings|preferences)
    |politique\ (de\ confidentialite|relative\ aux\ cookies|de\ cookies)|privacy\ policy|mentions\ legales
    |conditions\ (generales\ )?d'utilisation|terms\ (of\ use|of\ service|and\ conditions)
    |(inscrivez|abonnez)[-\ ]vous\ (a|au)\ (notre|la|nos)\ newsletter|sign\ up\ for\ (our|the)\ newsletter
    |(recevez|recevoir)\ (notre|la|nos)\ newsletters?|reserve\ aux\ abonnes|subscribers\ only
    |vous\ devez\ etre\ connecte|you\ must\ be\ logged\ in|cet\ article\ vous\ a\ plu
""")
_COMMENT_MARKER = re.compile(r"""(?x)
    ((laissez|laisser|ajouter|ajoutez|ecrire|poster|postez)\ un\ commentaire|leave\ a\ (comment|reply)
     |post\ a\ comment|add\ a\ comment)\b
""")


def _boilerplate_reason(text: str) -> str | None:
    """Why a block is boilerplate by its wording alone, or None."""
    if len(text.split()) > PATTERN_MAX_WORDS:
        return None  # notices are short; a long paragraph that mentions cookies is content
    folded = " ".join(_fold(text).split())
    bare = folded.strip(" .:!-–—|•*#>")
    n_words = len(folded.split())
    if _WHOLE.fullmatch(bare):
        return "page furniture"
    words = normalise(text).split()
    if (words and len(words) <= 8 and any(w in _SHARE_WORDS for w in words)
            and all(w in _SHARE_WORDS or w in _SHARE_FILLERS for w in words)):
        return "share widget"
    if n_words <= START_PATTERN_MAX_WORDS and _START.match(bare):
        return "cross-link or call to action"
    if n_words <= PATTERN_MAX_WORDS and _ANYWHERE.search(folded):
        return "notice"
    return None


def _is_comment_marker(text: str) -> bool:
    """The start of a comment section: what follows it is readers' text, not the article."""
    if len(text.split()) > 2 * COMMENT_MARKER_MAX_WORDS:
        return False
    bare = " ".join(_fold(text).split()).strip(" .:!-|•*#>")
    return len(bare.split()) <= COMMENT_MARKER_MAX_WORDS and bool(_COMMENT_MARKER.match(bare))


def _repeated_short_keys(docs: list[_ParsedDocument]) -> set[str]:
    """Short lines found twice in one document or in two distinct documents: site furniture."""
    per_doc: dict[str, set[str]] = {}
    repeated: set[str] = set()
    for doc in docs:
        counts = Counter(k for b in doc.blocks if (k := _short_key(b.text)))
        repeated.update(k for k, n in counts.items() if n > 1)
        for key in counts:
            per_doc.setdefault(key, set()).add(doc.sha256)  # identical files count once
    repeated.update(k for k, shas in per_doc.items() if len(shas) > 1)
    return repeated


def _short_key(text: str) -> str | None:
    if len(text.split()) > 3 * REPEATED_MAX_WORDS:
        return None  # cheap pre-check: normalising cannot shrink this to a short line
    key = normalise(text)
    return key if key and len(key.split()) <= REPEATED_MAX_WORDS else None


# --------------------------------------------------------------------------- classification


def _classify(doc: _ParsedDocument, repeated: set[str]) -> None:
    """Set each block's kind: boilerplate first (so it is never a heading), then headings.

    A comment-form marker after the article's first paragraph starts the comment section, which
    runs to the end; before any paragraph it is only a stray link, dropped alone.
    """
    in_comments = seen_paragraph = False
    for block in doc.blocks:
        if in_comments or (seen_paragraph and _is_comment_marker(block.text)):
            in_comments = True
            block.kind, block.reason = "boilerplate", "comment section"
        elif reason := _boilerplate_reason(block.text):
            block.kind, block.reason = "boilerplate", reason
        elif _short_key(block.text) in repeated:
            block.kind, block.reason = "boilerplate", "repeated short line"
        elif not any(c.isalnum() for c in block.text):
            block.kind, block.reason = "dropped", "no words"
        elif block.md_heading or _looks_like_heading(block):
            block.kind = "heading"
        else:
            seen_paragraph = True
    _resolve_headings(doc)


def _looks_like_heading(block: _Block) -> bool:
    """One short line without final sentence punctuation (a question or exclamation is allowed)."""
    if block.n_lines != 1 or len(block.text) > HEADING_MAX_CHARS:
        return False
    if len(block.text.split()) > HEADING_MAX_WORDS:
        return False
    core = block.text.rstrip(CLOSERS)
    return bool(core) and core[-1] not in NOT_HEADING_ENDINGS and any(c.isalpha() for c in core)


def _resolve_headings(doc: _ParsedDocument) -> None:
    """Headings count only when they introduce a paragraph; the leading one is the title."""
    content = [b for b in doc.blocks if b.kind in ("heading", "paragraph")]
    if not any(b.kind == "paragraph" for b in content):
        for b in content:  # a note made only of short lines: they are its content
            b.kind = "paragraph"
        return
    run: list[_Block] = []
    seen_paragraph = False
    for block in content + [None]:  # type: ignore[list-item]
        if block is not None and block.kind == "heading":
            run.append(block)
            continue
        if block is None:
            for b in run:
                b.kind, b.reason = "dropped", "heading without a paragraph"
        elif len(run) > HEADING_RUN_MAX and not all(b.md_heading for b in run):
            for b in run:
                b.kind = "paragraph"
        elif run and not seen_paragraph:
            run[0].kind = "title"
            doc.title = doc.title or run[0].text
        if block is not None:
            seen_paragraph = True
        run = []


# --------------------------------------------------------------------------- passages


def _document_passages(doc: _ParsedDocument, repeated: set[str], count: CountTokens,
                       max_tokens: int) -> list[Passage]:
    """The document's content paragraphs as passages, each carrying the headings before it."""
    _classify(doc, repeated)
    passages: list[Passage] = []
    headings: list[str] = []
    number = 0
    for block in doc.blocks:
        if block.kind in ("heading", "title"):
            headings.append(block.text)
        elif block.kind == "paragraph":
            number += 1
            context = CONTEXT_JOINER.join(headings) or None
            passages.extend(_paragraph_passages(doc, block, number, context, count, max_tokens))
            headings = []
    return passages


def _paragraph_passages(doc: _ParsedDocument, block: _Block, number: int, context: str | None,
                        count: CountTokens, max_tokens: int) -> list[Passage]:
    """One passage, or several windows when the paragraph does not fit the model."""
    if context and count(_embed_text(context, "x")) > max_tokens:
        context = None  # a heading longer than the window cannot be embedded with anything
    if count(_embed_text(context, block.text)) <= max_tokens:
        windows = [[(block.start, block.end)]]
    else:
        words = [m.span() for m in _WORD.finditer(doc.text, block.start, block.end)]
        fits = lambda spans: count(_embed_text(context, _join(doc.text, spans))) <= max_tokens  # noqa: E731
        windows = _pack(_units(words, block.text, fits), fits)
    return [_passage(doc, spans, number, context) for spans in windows]


def _passage(doc: _ParsedDocument, spans: list[Span], number: int, context: str | None) -> Passage:
    text = _join(doc.text, spans)
    return Passage(id=passage_id(text), text=text, context=context, doc_id=doc.file.doc_id, title=doc.title,
                   date=doc.date, paragraph=number, start=spans[0][0], end=spans[-1][1])


def _join(source: str, spans: list[Span]) -> str:
    """Whitespace-collapsed text of consecutive spans of ``source``."""
    return " ".join(word for s, e in spans for word in source[s:e].split())


def _embed_text(context: str | None, text: str) -> str:
    return f"{context}\n{text}" if context else text


def _units(words: list[Span], text: str, fits: Callable[[list[Span]], bool]) -> list[list[Span]]:
    """Sentences that fit; a sentence too long becomes its words, a word too long its pieces."""
    units: list[list[Span]] = []
    for sentence in _sentences(words, text):
        if fits(sentence):
            units.append(sentence)
            continue
        for word in sentence:
            units.extend([[piece] for piece in _word_pieces(word, fits)])
    return units


def _sentences(words: list[Span], text: str) -> list[list[Span]]:
    """Group word spans by sentence; ``text`` is the words joined by single spaces."""
    starts, pos = [], 0
    for s, e in words:
        starts.append(pos)
        pos += e - s + 1
    index = {start: i for i, start in enumerate(starts)}
    bounds = [index[s] for s, _ in split_sentences(text) if s in index] or [0]
    bounds = sorted(set(bounds) | {0}) + [len(words)]
    return [words[a:b] for a, b in zip(bounds, bounds[1:]) if a < b]


def _word_pieces(word: Span, fits: Callable[[list[Span]], bool]) -> list[Span]:
    """Split a single over-long word into the longest character runs that fit.

    Each piece is found by galloping from the previous piece's length, then bisecting between
    the last length that fits and the first that does not: the text tokenized per piece is a
    few times the piece, so a 5 MB run without whitespace costs linear time, not quadratic.
    """
    if fits([word]):
        return [word]
    pieces, start, end, guess = [], word[0], word[1], 64
    while start < end:
        length = _longest_fitting(start, end, guess, fits)
        pieces.append((start, start + length))
        start, guess = start + length, length
    return pieces


def _longest_fitting(start: int, end: int, guess: int, fits: Callable[[list[Span]], bool]) -> int:
    """The longest length (at least 1) such that [start, start + length) fits.

    Gallops up or down from `guess` in steps of a thirty-second of it, doubling, to bracket the
    answer, then bisects the bracket: pieces of one run are of similar length, so a few calls.
    """
    ok = lambda length: fits([(start, start + length)])  # noqa: E731
    room, step = end - start, max(1, guess // 32)
    good, bad = (0, None) if not ok(min(guess, room)) else (min(guess, room), None)
    if good:
        while bad is None and good < room:
            trial = min(good + step, room)
            good, bad = (trial, None) if ok(trial) else (good, trial)
            step *= 2
        if bad is None:
            return good
    else:
        bad = min(guess, room)
        while bad - step > 0 and not ok(bad - step):
            bad, step = bad - step, step * 2
        good = max(bad - step, 0)
    while bad - good > 1:
        mid = (good + bad) // 2
        good, bad = (mid, bad) if ok(mid) else (good, mid)
    return max(good, 1)


def _pack(units: list[list[Span]], fits: Callable[[list[Span]], bool]) -> list[list[Span]]:
    """Greedy packing of consecutive units into windows that fit."""
    windows: list[list[Span]] = []
    current: list[Span] = []
    for unit in units:
        if current and fits(current + unit):
            current = current + unit
            continue
        if current:
            windows.append(current)
        current = list(unit)
    if current:
        windows.append(current)
    return windows


# --------------------------------------------------------------------------- deduplication


def deduplicate(passages: list[Passage]) -> list[Passage]:
    """Merge near-duplicate passages, in order: a later duplicate becomes an extra source.

    Two passages are duplicates when their word 3-gram shingles have a Jaccard resemblance of at
    least ``JACCARD_MIN``, or when one (of at least ``CONTAINMENT_MIN_SHINGLES`` shingles) has
    ``CONTAINMENT_MIN`` of its shingles inside the other; then the shorter is merged into the
    longer, whose text is kept whole. Otherwise the first seen stays primary.
    """
    norms = [normalise(p.text) for p in passages]
    first: dict[str, int] = {}
    copy_of = [first.setdefault(norm, i) for i, norm in enumerate(norms)]  # exact copies: no join
    shingles = {i: _shingles(norms[i]) for i, c in enumerate(copy_of) if c == i}
    neighbours = _similar_pairs(shingles)
    home = list(range(len(passages)))  # where each passage's sources now live
    kept: dict[int, Passage] = {}
    for i, passage in enumerate(passages):
        if copy_of[i] != i:
            kept[_find(home, copy_of[i])].other_sources.extend(passage.sources())
            home[i] = _find(home, copy_of[i])
            continue
        _place(i, passage, neighbours.get(i, []), shingles, kept, home)
    return [kept[i] for i in sorted(kept)]


def _place(i: int, passage: Passage, pairs: list[tuple[int, float, float]], shingles: dict[int, frozenset[int]],
           kept: dict[int, Passage], home: list[int]) -> None:
    """Merge passage ``i`` into its best earlier match, or keep it, absorbing what it contains."""
    best, best_score, absorbed = None, 0.0, []
    for j, jaccard, contained in pairs:
        if j not in kept:
            continue  # already merged elsewhere: only primaries are compared, as they are shown
        if jaccard >= JACCARD_MIN or (contained >= CONTAINMENT_MIN and len(shingles[i]) <= len(shingles[j])):
            if max(jaccard, contained) > best_score:
                best, best_score = j, max(jaccard, contained)
        elif contained >= CONTAINMENT_MIN:
            absorbed.append(j)
    if best is not None:
        kept[best].other_sources.extend(passage.sources())
        home[i] = best
        return
    for j in sorted(absorbed):  # shorter passages inside this one become its extra sources
        passage.other_sources.extend(kept.pop(j).sources())
        home[j] = i
    kept[i] = passage


def _find(home: list[int], i: int) -> int:
    while home[i] != i:
        i = home[i]
    return i


def _similar_pairs(shingles: dict[int, frozenset[int]]) -> dict[int, list[tuple[int, float, float]]]:
    """For each passage, the earlier ones similar enough to merge: (index, jaccard, containment).

    A prefix-filtered similarity join: with every shingle set sorted rarest first, two sets with
    Jaccard >= t must share a shingle within their first ``n - ceil(t*n) + 1`` shingles, and a set
    with a fraction c inside another must have one of its first ``n - ceil(c*n) + 1`` in it. Only
    those prefixes are indexed, so common phrases never produce quadratic candidate lists.
    """
    frequency = Counter(chain.from_iterable(shingles.values()))
    prefixes = {i: _rarest_first(s, frequency)[:_prefix(len(s), JACCARD_MIN)] for i, s in shingles.items()}
    del frequency
    jaccard_index: dict[int, list[int]] = defaultdict(list)
    contained_index: dict[int, list[int]] = defaultdict(list)  # prefixes of sets big enough to be inside
    for i, prefix in prefixes.items():
        for h in prefix:
            jaccard_index[h].append(i)
        if len(shingles[i]) >= CONTAINMENT_MIN_SHINGLES:
            for h in prefix[:_prefix(len(shingles[i]), CONTAINMENT_MIN)]:
                contained_index[h].append(i)
    candidates: set[tuple[int, int]] = set()
    for i, prefix in prefixes.items():
        found = set(chain.from_iterable(map(jaccard_index.get, prefix, repeat((), len(prefix)))))
        found.update(chain.from_iterable(map(contained_index.get, shingles[i], repeat((), len(shingles[i])))))
        found.discard(i)
        candidates.update((min(i, j), max(i, j)) for j in found)
    pairs: dict[int, list[tuple[int, float, float]]] = {}
    for a, b in sorted(candidates):
        _verify(a, b, shingles, pairs)
    return pairs


def _verify(a: int, b: int, shingles: dict[int, frozenset[int]], pairs: dict) -> None:
    """Record (a, jaccard, containment) under b when the two passages are near-duplicates."""
    x, y = shingles[a], shingles[b]
    shared = len(x & y)
    jaccard = shared / (len(x) + len(y) - shared)
    smaller = min(len(x), len(y))
    contained = shared / smaller if smaller >= CONTAINMENT_MIN_SHINGLES else 0.0
    if jaccard >= JACCARD_MIN or contained >= CONTAINMENT_MIN:
        pairs.setdefault(b, []).append((a, jaccard, contained))


def _rarest_first(shingles: frozenset[int], frequency: Counter[int]) -> list[int]:
    """The shingles by corpus frequency, ties by value: one total order shared by all sets."""
    order = sorted(shingles)
    order.sort(key=frequency.__getitem__)  # stable, so equal frequencies stay ordered by value
    return order


def _prefix(size: int, threshold: float) -> int:
    """How many of a set's rarest shingles another set must meet to reach ``threshold``."""
    return size - math.ceil(threshold * size - 1e-9) + 1


def _shingles(norm: str) -> frozenset[int]:
    """Word 3-gram hashes; a text shorter than three words is one shingle of itself."""
    words = norm.split()
    if len(words) < SHINGLE_SIZE:
        return frozenset([hash(norm)])
    return frozenset(map(hash, zip(*(words[k:] for k in range(SHINGLE_SIZE)))))


def _documents(parsed: list[_ParsedDocument], passages: list[Passage]) -> list[Document]:
    """Documents with the number of (deduplicated) passages that cite each."""
    cites: Counter[str] = Counter()
    for passage in passages:
        cites.update({source.doc_id for source in passage.sources()})
    return [doc.document(cites[doc.file.doc_id]) for doc in parsed]
