"""Joining near-duplicate passages across articles: indexed once, with every source.

Agencies' copy is reused with small wording changes, so duplicates are found on word 3-gram
shingles of the normalised text: Jaccard resemblance, or containment of a shorter paragraph in
a longer one (whose text is kept whole), by a prefix-filtered similarity join that stays near
linear on common phrases. Wording may differ, facts may not: two passages merge only when they
state the same numbers (every number of the contained one is in the other), so bulletins that
differ by a figure ("12 morts" / "14 morts") stay apart.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from itertools import chain, repeat

from ..records import Passage
from ..text import normalise

# Near-duplicate detection, on word 3-gram shingles of the normalised text.
SHINGLE_SIZE = 3
JACCARD_MIN = 0.7
CONTAINMENT_MIN = 0.85  # the 003/004 split paragraph measures 0.93; unrelated ones stay below 0.35
CONTAINMENT_MIN_SHINGLES = 8  # a short sentence inside a long paragraph is not its duplicate


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
    neighbours = _same_numbers(_similar_pairs(shingles), shingles, {i: _numbers(norms[i]) for i in shingles})
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


def _numbers(norm: str) -> Counter[str]:
    """The numbers a text states, with their counts (words holding a digit: 12, 2019, 3e)."""
    return Counter(word for word in norm.split() if any(c.isdigit() for c in word))


def _same_numbers(pairs: dict[int, list[tuple[int, float, float]]], shingles: dict[int, frozenset[int]],
                  numbers: dict[int, Counter[str]]) -> dict[int, list[tuple[int, float, float]]]:
    """The pairs whose numbers agree: equal for a resemblance; for a containment, the contained
    (smaller) passage's numbers all in the larger one's. A pair that qualifies by neither is dropped."""
    kept: dict[int, list[tuple[int, float, float]]] = {}
    for b, found in pairs.items():
        for a, jaccard, contained in found:
            small, large = (a, b) if len(shingles[a]) <= len(shingles[b]) else (b, a)
            same = numbers[a] == numbers[b]
            inside = contained >= CONTAINMENT_MIN and not (numbers[small] - numbers[large])
            if same or inside:
                kept.setdefault(b, []).append((a, jaccard if same else 0.0, contained if inside else 0.0))
    return kept


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
