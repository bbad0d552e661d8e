"""What a ranking may be asked for and tuned with: its modes, the hit count, its constants.

Standard library only, so the command line can offer the modes without loading the search.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import Literal, get_args

from ..errors import QAError

Mode = Literal["default", "dense", "lexical", "hybrid"]
MODES: tuple[Mode, ...] = get_args(Mode)


@dataclass(frozen=True, kw_only=True)
class RankingParams:
    """The ranking's constants, chosen on the public sets and our own questions (EVALUATION.md,
    WEAK_ANSWERS.md). Frozen, and passed to :class:`qa.ranking.search.Retriever`, so a script varies
    them by making another (``RankingParams(weak_margin=0.05)``), never by patching globals;
    a misspelt name is a TypeError."""

    # Fusion weights of the max-normalised BM25 score against cosine similarity: same-language
    # questions gain from names, numbers and rare words; cross-language ones only get noise.
    lexical_weight_same_language: float = 0.15
    lexical_weight_other_language: float = 0.0
    # Numbers are written alike in these languages: a question in another language than the
    # corpus is matched by BM25 on its numbers alone ("66 million years ago"), at this weight.
    # Fitted on XQuAD en-de + en-es (EVALUATION.md, "Question language"); 0 turns it off.
    numbers_weight_other_language: float = 0.15
    candidates: int = 100  # per question, from FAISS and from BM25 each (at least 4 k)
    # Late interaction: the best `rerank_depth` candidates (by passage cosine + BM25) are
    # reordered by passage cosine + maxsim_weight x MaxSim(question tokens, passage tokens) + BM25.
    # Fitted with the BM25 weight on PIAF + XQuAD en-de + en-es (scripts/li_fit.py, EVALUATION.md).
    rerank_depth: int = 30  # the fit peaked at 50 (of 20, 30, 50); 30 costs less time (BENCHMARKS.md)
    maxsim_weight: float = 6.0
    duplicate_cosine: float = 0.97  # hits at least this close collapse into one, with every source
    # Weak-answer signal: how far the best dense score stands above the candidates' median.
    weak_margin: float = 0.032

    def __post_init__(self) -> None:
        if self.candidates < 1 or self.rerank_depth < 0 or self.maxsim_weight < 0:
            raise ValueError("candidates must be at least 1, rerank_depth and maxsim_weight at least 0")


DEFAULT_RANKING = RankingParams()


def check_k(k: int, name: str = "the number of hits") -> int:
    """`k` when it is at least 1; else the one-line error every surface gives, `name` being
    what that surface calls it (`-k` on the command line)."""
    if k < 1:
        raise QAError(f"{name} must be at least 1 (got {k})")
    return k


def check_mode(mode: str) -> Mode:
    """`mode` when it is one of MODES (a library caller may pass anything)."""
    if mode not in MODES:
        raise QAError(f"unknown mode {mode!r}: choose one of {', '.join(MODES)}")
    return mode  # type: ignore[return-value]


_DATE = re.compile(r"(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?")


def check_date(value: str) -> str:
    """`value` when it is a real date as YYYY, YYYY-MM or YYYY-MM-DD (month 1-12, a day the
    month has); else the one-line error every surface gives (`--from 2020-13`, `:from 2020-02-30`)."""
    match = _DATE.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        raise QAError(f"bad date {value!r}: use YYYY, YYYY-MM or YYYY-MM-DD")
    year, month, day = (int(part) if part else None for part in match.groups())
    try:
        datetime.date(year or 0, month or 1, day or 1)
    except ValueError:
        what = "month" if month is not None and not 1 <= month <= 12 else "day" if day is not None else "year"
        raise QAError(f"bad date {value!r}: no such {what} (use YYYY, YYYY-MM or YYYY-MM-DD)") from None
    return value.strip()
