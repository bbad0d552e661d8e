"""The ranking: what a question may ask for (modes, constants) and how passages are ranked for it.

:mod:`.params` (modes, :class:`RankingParams`, argument checks: standard library only, so the
command line offers the modes without loading the search), :mod:`.lexical` (BM25 and the
question's language), :mod:`.filters` (what --doc, --from and --to let in), :mod:`.search`
(:class:`Retriever`: dense candidates fused with BM25, reranked by MaxSim over the stored
tokens, duplicates collapsed, the answer sentence marked).
"""

from .params import DEFAULT_RANKING, MODES, Mode, RankingParams, check_date, check_k, check_mode

__all__ = ["DEFAULT_RANKING", "MODES", "Mode", "RankingParams", "check_date", "check_k", "check_mode"]
