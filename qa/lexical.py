"""Lexical ranking: BM25 (bm25s) over accent-folded, stemmed words.

Lexical matching is what dense retrieval is weakest at: names, numbers, dates, rare words. It
cannot match an English question to French text, so the fusion in `search` weighs it by
whether the question and the corpus share a language (see :func:`guess_language`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from .text import fold, words

K1, B = 0.9, 0.4  # the datasets' reference BM25 settings; also the usual choice for short passages

# A few dozen of the most frequent function words per language: enough to tell languages apart
# on a question, and to keep them out of BM25 where they only add noise.
STOPWORDS = {
    "french": "le la les l un une des du de d et en au aux à a est sont été être que qui quoi quel quelle quels "
              "quelles ce cette ces c se s sa son ses leur leurs il ils elle elles on nous vous je j y ne n pas "
              "plus pour par sur dans avec sans sous ou où comment pourquoi quand combien qu lors dont".split(),
    "english": "the a an of and or in on at to for from by with without is are was were be been being it its "
               "this that these those he she they them his her their we you i what which who whom whose when "
               "where why how did do does done has have had not no as into about than then there".split(),
    "german": "der die das den dem des ein eine einer eines einem einen und oder in im an am auf aus bei mit "
              "von vom zu zum zur ist sind war waren wird wurde wurden nicht kein keine wer was wann wo warum "
              "wie welche welcher welches sich er sie es".split(),
    "spanish": "el la los las un una unos unas de del y o en al a es son fue fueron ser por para con sin que "
               "qué quien quién cuando cuándo donde dónde como cómo cual cuál se su sus lo le les no más".split(),
}


def guess_language(texts: Sequence[str]) -> str | None:
    """The language whose function words are most frequent in `texts`, or None if unclear."""
    counts: Counter[str] = Counter()
    folded = {lang: {fold(w) for w in ws} for lang, ws in STOPWORDS.items()}
    for text in texts:
        for word in words(text):
            for lang, vocab in folded.items():
                if word in vocab:
                    counts[lang] += 1
    if not counts:
        return None
    (best, n1), *rest = counts.most_common(2) + [("", 0)]
    return best if n1 >= 2 and n1 > 1.3 * rest[0][1] else None


@lru_cache(maxsize=8)
def _stemmer(language: str):
    import Stemmer

    return Stemmer.Stemmer(language)


class Analyzer:
    """Text -> BM25 terms: fold, split on word characters, drop stopwords, stem."""

    def __init__(self, language: str | None):
        self.language = language if language in STOPWORDS else None
        stop = STOPWORDS.get(self.language, []) + (STOPWORDS["english"] if self.language != "english" else [])
        self.stopwords = {fold(w) for w in stop}

    def terms(self, text: str) -> list[str]:
        tokens = [w for w in words(text) if w not in self.stopwords]
        if self.language:
            tokens = _stemmer(self.language).stemWords(tokens)
        return tokens


class LexicalIndex:
    """BM25 over a list of passage texts, built in memory (a second or two per 100k passages)."""

    def __init__(self, texts: Sequence[str], language: str | None = None):
        import bm25s

        self.language = language if language is not None else guess_language(texts[:2000])
        self.analyzer = Analyzer(self.language)
        self._bm25 = bm25s.BM25(k1=K1, b=B)
        self._bm25.index([self.analyzer.terms(t) for t in texts], show_progress=False)
        self._vocab = self._bm25.vocab_dict
        self.size = len(texts)

    def scores(self, question: str) -> np.ndarray:
        """BM25 score of every passage for `question` (zeros when no term matches)."""
        terms = [t for t in self.analyzer.terms(question) if t in self._vocab]
        if not terms or self.size == 0:
            return np.zeros(self.size, np.float32)
        return np.asarray(self._bm25.get_scores(terms), dtype=np.float32)
