"""Caps on what a zipped document (DOCX, EPUB, ODT) may expand to, checked before it is read.

These formats are zip archives, and a small file can declare gigabytes (a zip bomb) or hold
many thousands of members. The central directory says what each member expands to; a member
is read with :func:`read_member`, which stops at its cap whatever the header claimed, so a
lying header cannot exhaust memory either.
"""

from __future__ import annotations

import io
import zipfile

from . import Skipped

MAX_MEMBERS = 10_000
MAX_TOTAL = 512_000_000  # bytes, all members expanded
MAX_MEMBER = 128_000_000  # bytes, one member expanded
MAX_RATIO = 200  # expanded/compressed, for a member over 1 MB: text compresses ~5-20x


def open_archive(data: bytes, kind: str) -> zipfile.ZipFile:
    """The archive, checked against the caps; raises :class:`Skipped` saying which one."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise Skipped(f"damaged {kind} (not a readable zip archive: {exc})") from None
    members = archive.infolist()
    if len(members) > MAX_MEMBERS:
        raise Skipped(f"{kind} with {len(members):,} archive members, over the {MAX_MEMBERS:,} cap; not read")
    total = sum(m.file_size for m in members)
    if total > MAX_TOTAL:
        raise Skipped(f"{kind} expanding to {total / 1e6:,.0f} MB, over the {MAX_TOTAL // 1_000_000} MB cap "
                      "(a zip bomb?); not read")
    for m in members:
        if m.file_size > MAX_MEMBER or (m.file_size > 1_000_000 and m.file_size > MAX_RATIO * max(m.compress_size, 1)):
            raise Skipped(f"{kind} member {m.filename} expands to {m.file_size / 1e6:,.0f} MB from "
                          f"{m.compress_size / 1e6:,.1f} MB (a zip bomb?); not read")
    return archive


def read_member(archive: zipfile.ZipFile, name: str, kind: str) -> bytes:
    """One member's bytes, at most :data:`MAX_MEMBER` of them; raises :class:`Skipped`."""
    try:
        with archive.open(name) as fh:
            data = fh.read(MAX_MEMBER + 1)
    except KeyError:
        raise Skipped(f"damaged {kind} (no {name} in it)") from None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, NotImplementedError) as exc:
        raise Skipped(f"damaged {kind} ({name}: {exc})") from None
    if len(data) > MAX_MEMBER:
        raise Skipped(f"{kind} member {name} expands past {MAX_MEMBER // 1_000_000} MB; not read")
    return data


def parse_xml(data: bytes, name: str, kind: str):
    """An XML member parsed safely: no network, no entity expansion, no DTD loading."""
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False,
                             recover=True)
    try:
        root = etree.fromstring(data, parser=parser)
    except etree.XMLSyntaxError as exc:
        raise Skipped(f"damaged {kind} ({name}: {exc})") from None
    if root is None:
        raise Skipped(f"damaged {kind} ({name} is not XML)")
    return root
