"""Cutting a classified article into passages that fit the model's window, never truncating.

A passage is a content paragraph with the headings before it as its context. A paragraph too
long for the model (counted by the model's own tokenizer, context included) is split into
windows at sentence boundaries; a sentence too long becomes its words, and a word too long its
longest fitting character runs. Offsets stay those of the decoded file.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable

from ..records import Passage, embed_text
from ..text import normalise
from .blocks import Block, ParsedDocument
from .classify import classify
from .sentences import split_sentences

MAX_TOKENS = 500  # the model window is 512 including special tokens and the "passage: " prefix
CONTEXT_JOINER = " — "
_WORD = re.compile(r"\S+")

CountTokens = Callable[[str], int]
Span = tuple[int, int]


def estimate_tokens(text: str) -> int:
    """A conservative token count (about 3 characters a token) when no tokenizer is given."""
    return len(text) // 3 + 1


def passage_id(text: str) -> str:
    """Stable id: the same text (up to case, accents and punctuation) gets the same id."""
    return hashlib.sha256(normalise(text).encode("utf-8")).hexdigest()[:16]


def is_window(text: str, start: int, end: int) -> bool:
    """Whether [start, end) of a file's `text` is one window of a longer paragraph, not all of it."""
    before, after = text[max(0, start - 2):start], text[end:end + 2]
    starts = start == 0 or before.endswith("\n")
    ends = end >= len(text) or after.startswith("\n") or not after.strip()
    return not (starts and ends)


def document_passages(doc: ParsedDocument, repeated: set[str], count: CountTokens,
                       max_tokens: int, advance: Callable[[int], None] | None = None) -> list[Passage]:
    """The document's content paragraphs as passages, each carrying the headings before it.
    `advance(position)` is told how far into the document's text the work has come (after each
    block, and after each window of a paragraph too long for the model): a progress bar."""
    advance = advance or (lambda position: None)
    classify(doc, repeated)
    passages: list[Passage] = []
    headings: list[str] = []
    number = 0
    section = None  # the last heading seen: the section a citation names, on every paragraph of it
    for block in doc.blocks:
        if block.kind in ("heading", "title"):
            headings.append(block.text)
            section = block.text if block.text != doc.title else section
        elif block.kind == "paragraph":
            number += 1
            context = CONTEXT_JOINER.join(headings) or None
            where = {"page": block.page, "section": section}
            passages.extend(_paragraph_passages(doc, block, number, context, count, max_tokens, advance, where))
            headings = []
        advance(block.end)
    return passages


def _paragraph_passages(doc: ParsedDocument, block: Block, number: int, context: str | None,
                        count: CountTokens, max_tokens: int, advance: Callable[[int], None],
                        where: dict) -> list[Passage]:
    """One passage, or several windows when the paragraph does not fit the model."""
    if context and count(embed_text(context, "x")) > max_tokens:
        context = None  # a heading longer than the window cannot be embedded with anything
    if count(embed_text(context, block.text)) <= max_tokens:
        windows = [[(block.start, block.end)]]
    else:
        words = [m.span() for m in _WORD.finditer(doc.text, block.start, block.end)]
        fits = lambda spans: count(embed_text(context, _join(doc.text, spans))) <= max_tokens  # noqa: E731
        windows = _pack(_units(words, block.text, fits), fits, lambda window: advance(window[-1][1]))
    return [_passage(doc, spans, number, context, where) for spans in windows]


def _passage(doc: ParsedDocument, spans: list[Span], number: int, context: str | None, where: dict) -> Passage:
    """`where`: the block's page and section."""
    text = _join(doc.text, spans)
    return Passage(id=passage_id(text), text=text, context=context, doc_id=doc.file.doc_id, title=doc.title,
                   date=doc.date, url=doc.url, author=doc.author, paragraph=number, start=spans[0][0],
                   end=spans[-1][1], **where)


def _join(source: str, spans: list[Span]) -> str:
    """Whitespace-collapsed text of consecutive spans of ``source``."""
    return " ".join(word for s, e in spans for word in source[s:e].split())



def _units(words: list[Span], text: str, fits: Callable[[list[Span]], bool]) -> list[list[Span]]:
    """Sentences that fit; a sentence too long becomes its words, a word too long its pieces."""
    units: list[list[Span]] = []
    for sentence in _sentence_groups(words, text):
        if fits(sentence):
            units.append(sentence)
            continue
        for word in sentence:
            units.extend([[piece] for piece in _word_pieces(word, fits)])
    return units


def _sentence_groups(words: list[Span], text: str) -> list[list[Span]]:
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


def _pack(units: list[list[Span]], fits: Callable[[list[Span]], bool],
          done: Callable[[list[Span]], None] = lambda window: None) -> list[list[Span]]:
    """Greedy packing of consecutive units into windows that fit; `done` is told each window."""
    windows: list[list[Span]] = []
    current: list[Span] = []
    for unit in units:
        if current and fits(current + unit):
            current = current + unit
            continue
        if current:
            windows.append(current)
            done(current)
        current = list(unit)
    if current:
        windows.append(current)
    return windows
