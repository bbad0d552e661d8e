"""Sentence splitting for French and English news text, with character spans.

Used to mark the answering sentence inside a passage. A rule-based splitter is enough for
edited prose; the rules that matter are abbreviations ("M. Pompeo", "MM. Lavrov", "Dr.") and
closing quotes after the final stop ("... échec. »").
"""

from __future__ import annotations

import re

ABBREVIATIONS = {"m", "mm", "mme", "mmes", "mlle", "dr", "pr", "st", "ste", "mr", "mrs", "ms", "prof", "gen",
                 "gén", "sgt", "jr", "sr", "vs", "etc", "cf", "p", "no", "n°", "art", "av", "bd", "env", "ex"}
_BOUNDARY = re.compile(r"([.!?…]+)((?:[ \u00a0\u202f]?[»”\"’)\]])*)(\s+)(?=[«“\"'(\[]?\s*[A-ZÀ-ÖØ-Þ0-9])")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """[start, end) spans of the sentences of `text`, covering it without the whitespace between."""
    spans, start = [], 0
    for match in _BOUNDARY.finditer(text):
        if match.group(1) == "." and _ends_with_abbreviation(text[max(start, match.start() - 16):match.start()]):
            continue
        end = match.end(2)
        if text[start:end].strip():
            spans.append(_trim(text, start, end))
        start = match.end()
    if text[start:].strip():
        spans.append(_trim(text, start, len(text)))
    return spans


def _ends_with_abbreviation(before: str) -> bool:
    """Whether the word before a full stop is an abbreviation; callers pass only the last few
    characters (abbreviations are short), which keeps a long unbroken run from costing O(n²)."""
    word = re.search(r"(\w+)$", before)
    if word is None:
        return False
    token = word.group(1)
    return token.lower() in ABBREVIATIONS or (len(token) == 1 and token.isupper())


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end
