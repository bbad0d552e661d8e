#!/usr/bin/env python3
"""Document context in the passage's embedding ("contextual retrieval"), measured on the fit sets.

    .venv/bin/python scripts/xling_context.py [--sets xquad_en-de xquad_en-es] [--variants lead title]

Each passage is embedded with a context line before it (the index's own `context` field, as a
heading is): `lead`, the first sentence of its article's first paragraph (in the passage's own
language; the first paragraph itself gets none); `title`, the article's title. XQuAD's titles are
its English article names ("Super_Bowl_50") even on the German and Spanish sets, so `title`
there gives an English question an English word to match that a German or French article would
not have: it is run to show the size of that effect, not as a candidate. Indexes are built in a
temporary folder; the baseline is the cached evaluation index. Default mode, nDCG@10, paired
bootstrap against today's.
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from paired import describe  # noqa: E402
from xling_fit import DATASETS, CachedQueries, Variant, run  # noqa: E402

SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def with_context(corpus, variant: str):
    first: dict[str, str] = {}
    passages = []
    for p in corpus.passages:
        if variant == "title":
            context = p.doc_id.replace("_", " ")
        else:
            lead = first.setdefault(p.doc_id, SENTENCE_END.split(p.text, 1)[0])
            context = None if lead == SENTENCE_END.split(p.text, 1)[0] else lead
        passages.append(p.model_copy(update={"context": context}))
    return corpus.model_copy(update={"passages": passages})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sets", nargs="*", default=["xquad_en-de", "xquad_en-es"])
    parser.add_argument("--variants", nargs="*", default=["lead", "title"])
    args = parser.parse_args()
    from qa.engines import load_embedder
    from qa.evaluate import load_dataset, open_dataset
    from qa.index import PassageIndex, update_index

    embedder = CachedQueries(load_embedder(backend="onnx", precision="fp32"))
    for name in args.sets:
        corpus, queries = load_dataset(DATASETS / name)
        questions, gold = [q.question for q in queries], [q.gold_ids for q in queries]
        baseline, _ = open_dataset(DATASETS / name, progress=False, precision="fp32")
        base = run(baseline.index, embedder, Variant(), questions, gold)
        print(f"{name:16} today {base.mean():.2f}", flush=True)
        for variant in args.variants:
            with tempfile.TemporaryDirectory() as tmp:
                update_index(with_context(corpus, variant), tmp, embedder.inner, sources=[name])
                scores = run(PassageIndex.open(tmp), embedder, Variant(), questions, gold)
            print(f"{name:16} {variant:8} {scores.mean():6.2f} {describe(scores, base)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
