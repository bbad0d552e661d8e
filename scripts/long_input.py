#!/usr/bin/env python3
"""Ingestion time of long input: seconds per MB of one paragraph without a newline and of a
document of many short lines, at growing sizes (reading, splitting into passages, windowing to
the model's token limit with its real tokenizer, de-duplication; no embedding).

    .venv/bin/python scripts/long_input.py [--sizes 0.5 1 2 5]

Constant seconds per MB across sizes means linear ingestion; embedding is linear by
construction (each passage is one forward pass of at most 512 tokens), so it is not timed here.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

from qa.engines import load_embedder  # noqa: E402
from qa.index import token_counter  # noqa: E402
from qa.ingest import load_corpus  # noqa: E402


def french_words(seed: int) -> list[str]:
    """Words of the shipped corpus in a shuffled order (real words, no two texts alike)."""
    words = " ".join(p.read_text(encoding="utf-8") for p in sorted((REPO / "corpus").glob("*.txt"))).split()
    random.Random(seed).shuffle(words)
    return words


def text_of(megabytes: float, shape: str) -> str:
    words, out, size, i = french_words(len(shape)), [], 0, 0
    target = int(megabytes * 1_000_000)
    while size < target:
        line = " ".join(words[(i * 7) % len(words):(i * 7) % len(words) + 7]) + f" {i}."
        out.append(line)
        size += len(line.encode("utf-8")) + 1
        i += 1
    return (" " if shape == "paragraph" else "\n").join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.5, 1, 2, 5], help="megabytes")
    args = parser.parse_args()
    embedder = load_embedder()
    count = token_counter(embedder)
    count("warm up the tokenizer")
    print("| shape | MB | lines | passages | seconds | s/MB |\n|---|---|---|---|---|---|")
    for shape in ("paragraph", "lines"):
        for megabytes in args.sizes:
            with tempfile.TemporaryDirectory() as tmp:
                text = text_of(megabytes, shape)
                (Path(tmp) / "long.txt").write_text(text, encoding="utf-8")
                started = time.perf_counter()
                corpus = load_corpus([tmp], count_tokens=count, max_tokens=embedder.max_tokens)
                seconds = time.perf_counter() - started
                print(f"| {'one paragraph, no newline' if shape == 'paragraph' else 'short lines'} | {megabytes:g} | "
                      f"{text.count(chr(10)) + 1:,} | {len(corpus.passages):,} | {seconds:.1f} | "
                      f"{seconds / megabytes:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
