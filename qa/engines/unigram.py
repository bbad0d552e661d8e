"""Tokenizing a question without building the whole tokenizer: an exact Unigram fast path.

`tokenizers` builds its Unigram model (a byte trie over 250,002 pieces for XLM-R) in about
0.6 s, holding the GIL: that alone was a third of a fresh process's time to its first answer.
A question needs a few hundred vocabulary look-ups, so this module keeps the vocabulary as a
flat file that loads in milliseconds and runs the same Viterbi search as `tokenizers`
(`Unigram::encode_optimized`: pieces tried shortest first, a later piece replaces the best path
only with a strictly higher score, unknown characters scored min_score - 10 and fused). The
normaliser and the pre-tokeniser are `tokenizers`' own objects, rebuilt from the tokenizer's
JSON around an empty model, so only the model step is ours.

It is used for questions only; passages go through `tokenizers` (faster on long texts). The
file is written beside the ONNX export and accepted only for configurations it reproduces;
`tests/test_engines.py` checks it against `tokenizers` on every question of the public sets.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

VOCAB_FILE = "qa-unigram.npz"
UNK_PENALTY = 10.0


class UnsupportedTokenizer(ValueError):
    """The tokenizer uses something this fast path does not reproduce; use `tokenizers`."""


def write_vocabulary(tokenizer_json: Path, out: Path) -> None:
    """Extract what the fast path needs from `tokenizer.json` into `out` (npz), or raise
    :class:`UnsupportedTokenizer`."""
    config = json.loads(tokenizer_json.read_text(encoding="utf-8"))
    model = config.get("model") or {}
    if model.get("type") != "Unigram" or model.get("byte_fallback"):
        raise UnsupportedTokenizer(f"model {model.get('type')} (byte fallback {model.get('byte_fallback')})")
    _check_added_tokens(config)
    _check_pre_tokenizer(config)
    _template(config)
    if model.get("unk_id") is None:
        raise UnsupportedTokenizer("no unknown-token id")
    pieces = [piece for piece, _ in model["vocab"]]
    if any("\0" in piece for piece in pieces):
        raise UnsupportedTokenizer("a piece contains NUL")
    shell = {**config, "model": {**model, "vocab": [["<unk>", 0.0]], "unk_id": 0}, "truncation": None, "padding": None}
    with open(out, "wb") as fh:
        np.savez(fh, pieces=np.frombuffer("\0".join(pieces).encode("utf-8"), np.uint8),
                 scores=np.asarray([score for _, score in model["vocab"]], np.float64),
                 unk_id=np.int64(model["unk_id"]),
                 shell=np.frombuffer(json.dumps(shell).encode("utf-8"), np.uint8))


def _check_added_tokens(config: dict) -> None:
    for token in config.get("added_tokens") or []:
        if token.get("normalized") or token.get("lstrip") or token.get("rstrip") or token.get("single_word"):
            raise UnsupportedTokenizer(f"added token {token.get('content')!r} with matching options")


def _check_pre_tokenizer(config: dict) -> None:
    pre = config.get("pre_tokenizer") or {}
    if pre.get("type") == "Metaspace" and pre.get("prepend_scheme", "always") != "always":
        raise UnsupportedTokenizer("Metaspace prepends only to the first segment")


def _template(config: dict) -> tuple[list[int], list[int]]:
    """Ids the post-processor puts before and after a single sequence."""
    post = config.get("post_processor") or {}
    if post.get("type") != "TemplateProcessing":
        raise UnsupportedTokenizer(f"post-processor {post.get('type')}")
    before, after, seen = [], [], False
    for item in post["single"]:
        if "Sequence" in item:
            seen = True
        else:
            ids = post["special_tokens"][item["SpecialToken"]["id"]]["ids"]
            (after if seen else before).extend(ids)
    return before, after


class FastUnigram:
    """`tokenizers`' pipeline for one text: added tokens, normaliser, pre-tokeniser, Unigram,
    template and right truncation."""

    def __init__(self, path: Path, max_length: int):
        from tokenizers import Tokenizer

        with np.load(path) as data:
            pieces = data["pieces"].tobytes().decode("utf-8").split("\0")
            self.scores = data["scores"].tolist()
            self.unk_id = int(data["unk_id"])
            config = json.loads(data["shell"].tobytes().decode("utf-8"))
        self.ids = {piece: i for i, piece in enumerate(pieces)}  # a repeated piece: the last id wins, as there
        self.longest = max(map(len, pieces))
        self.min_score = min(self.scores)
        shell = Tokenizer.from_str(json.dumps(config))
        self.normalizer, self.pre_tokenizer = shell.normalizer, shell.pre_tokenizer
        self.specials = sorted(((t["content"], t["id"]) for t in config.get("added_tokens") or []),
                               key=lambda t: -len(t[0]))
        self.before, self.after = _template(config)
        self.max_length = max_length

    def encode(self, text: str) -> list[int]:
        ids: list[int] = []
        for segment, special_id in self._split_specials(text):
            if special_id is not None:
                ids.append(special_id)
                continue
            normalized = self.normalizer.normalize_str(segment) if self.normalizer else segment
            words = self.pre_tokenizer.pre_tokenize_str(normalized) if self.pre_tokenizer else [(normalized, None)]
            for word, _ in words:
                ids.extend(self._viterbi(word))
        room = self.max_length - len(self.before) - len(self.after)
        return self.before + ids[:max(room, 0)] + self.after

    def _split_specials(self, text: str):
        """(segment, None) for plain text and ("", id) for an added token, left to right,
        the longest token first where several start at the same place."""
        if not any(special in text for special, _ in self.specials):
            if text:
                yield text, None
            return
        start = plain = 0
        while start < len(text):
            match = next(((s, i) for s, i in self.specials if text.startswith(s, start)), None)
            if match is None:
                start += 1
                continue
            if start > plain:
                yield text[plain:start], None
            yield "", match[1]
            start = plain = start + len(match[0])
        if plain < len(text):
            yield text[plain:], None

    def _viterbi(self, word: str) -> list[int]:
        size = len(word)
        best = [0.0] * (size + 1)
        starts: list[int | None] = [None] * (size + 1)
        chosen = [0] * (size + 1)
        unk_score = self.min_score - UNK_PENALTY
        for start in range(size):
            here = best[start]
            single = False
            for end in range(start + 1, min(size, start + self.longest) + 1):
                piece_id = self.ids.get(word[start:end])
                if piece_id is None:
                    continue
                score = self.scores[piece_id] + here
                if starts[end] is None or score > best[end]:
                    best[end], starts[end], chosen[end] = score, start, piece_id
                single = single or end == start + 1
            if not single:
                score = unk_score + here
                if starts[start + 1] is None or score > best[start + 1]:
                    best[start + 1], starts[start + 1], chosen[start + 1] = score, start, self.unk_id
        return self._backtrack(word, starts, chosen)

    def _backtrack(self, word: str, starts: list, chosen: list[int]) -> list[int]:
        """Pieces of the best path, a run of unknown characters fused into one piece."""
        pieces: list[str] = []
        unknown: list[str] = []
        end = len(word)
        while end > 0:
            start = starts[end]
            if chosen[end] == self.unk_id:
                unknown.append(word[start:end])
            else:
                if unknown:
                    pieces.append("".join(reversed(unknown)))
                    unknown = []
                pieces.append(word[start:end])
            end = start
        if unknown:
            pieces.append("".join(reversed(unknown)))
        return [self.ids.get(piece, self.unk_id) for piece in reversed(pieces)]
