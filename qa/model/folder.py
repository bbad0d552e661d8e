"""Reading a sentence-transformers model folder without sentence-transformers, and its layout.

The ONNX engine needs what sentence-transformers would do around the transformer: the pooling
(`1_Pooling/config.json`), whether the vector is normalised (a `Normalize` module), the
sequence limit, and the tokenizer's padding token. All of it is read from the folder's small
JSON files, so answering a question never imports torch. Both spellings of the pooling config
are understood: the old `pooling_mode_mean_tokens: true` keys and the newer `pooling_mode: mean`.
The names of the ONNX export's files inside the folder are here too, shared by the engine that
reads them and the exporter that writes them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import ModelError

# Where the ONNX export lives inside a model folder (written by qa.model.export, run by qa.engines.onnx_engine).
EXPORT_FOLDER = "onnx"
MODEL_FILE = "model.onnx"
DATA_FILE = "model.onnx_data"
MANIFEST_FILE = "qa-export.json"
# The int8 variant of the export (dynamic quantisation of model.onnx, qa.onnx_export.write_int8):
# one self-contained file, its weights int8 with a float scale per output channel.
INT8_FILE = "model_int8.onnx"
POOLING_MODES = ("mean", "cls", "max", "mean_sqrt_len_tokens", "lasttoken")
_OLD_POOLING_KEYS = {
    "pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls", "pooling_mode_max_tokens": "max",
    "pooling_mode_mean_sqrt_len_tokens": "mean_sqrt_len_tokens", "pooling_mode_lasttoken": "lasttoken",
}


@dataclass(frozen=True)
class FolderLayout:
    """What happens to the transformer's token states in this model folder."""

    transformer_path: str  # relative folder of config.json / tokenizer.json ("" for the root)
    pooling: str  # one of POOLING_MODES
    normalize: bool
    max_seq_length: int
    dimension: int
    pad_token: str
    pad_id: int


def read_layout(folder: Path) -> FolderLayout:
    """The folder's module stack, or a :class:`ModelError` saying what the ONNX engine lacks."""
    modules = _read_json(folder / "modules.json")
    if not isinstance(modules, list) or not modules:
        raise ModelError(f"{folder} has no modules.json: not a sentence-transformers folder")
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    if kinds[0] != "Transformer" or "Pooling" not in kinds or any(k not in {"Transformer", "Pooling", "Normalize"} for k in kinds):
        raise ModelError(f"the ONNX engine runs Transformer + Pooling (+ Normalize) models; {folder} has "
                         f"{' + '.join(kinds)}: use --backend torch")
    transformer_path = str(modules[0].get("path", ""))
    pooling_path = str(modules[kinds.index("Pooling")].get("path", ""))
    base = folder / transformer_path
    pooling = _pooling_mode(_read_json(folder / pooling_path / "config.json") or {}, folder)
    config = _read_json(base / "config.json") or {}
    tokenizer_config = _read_json(base / "tokenizer_config.json") or {}
    pad_token = str(tokenizer_config.get("pad_token") or "<pad>")
    if isinstance(tokenizer_config.get("pad_token"), dict):  # older AddedToken serialisation
        pad_token = str(tokenizer_config["pad_token"].get("content", "<pad>"))
    return FolderLayout(
        transformer_path=transformer_path, pooling=pooling, normalize="Normalize" in kinds,
        max_seq_length=max_sequence_length(base) or 512,
        dimension=int(config.get("hidden_size") or 0), pad_token=pad_token,
        pad_id=int(config.get("pad_token_id") if config.get("pad_token_id") is not None else 0),
    )


def _pooling_mode(config: dict, folder: Path) -> str:
    if config.get("include_prompt") is False:
        raise ModelError(f"{folder} pools without its prompt tokens, which the ONNX engine does not do: use --backend torch")
    mode = config.get("pooling_mode")
    if isinstance(mode, list):  # the newer format may list several modes, concatenated
        if len(mode) != 1:
            raise ModelError(f"{folder}: pooling {mode} (several modes) is not supported by the ONNX engine: "
                             "use --backend torch")
        mode = mode[0]
    if mode is None:
        chosen = [name for key, name in _OLD_POOLING_KEYS.items() if config.get(key)]
        if len(chosen) != 1 or any(config.get(k) for k in config if k.startswith("pooling_mode_") and k not in _OLD_POOLING_KEYS):
            raise ModelError(f"{folder}: unsupported pooling {config}: use --backend torch")
        mode = chosen[0]
    mode = {"mean_tokens": "mean", "cls_token": "cls", "max_tokens": "max"}.get(mode, mode)
    if mode not in POOLING_MODES:
        raise ModelError(f"{folder}: pooling {mode!r} is not supported by the ONNX engine: use --backend torch")
    return mode


def max_sequence_length(folder: Path) -> int | None:
    """The smallest limit the folder states (sentence-transformers', the tokenizer's, the
    model's positions), read from its JSON files; None when it states none."""
    limits = []
    for name, key in (("sentence_bert_config.json", "max_seq_length"), ("tokenizer_config.json", "model_max_length"),
                      ("config.json", "max_position_embeddings")):
        try:
            value = (_read_json(folder / name) or {}).get(key)
        except ModelError:
            continue
        if isinstance(value, int) and 0 < value < 100_000:
            limits.append(value)
    return min(limits) if limits else None


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ModelError(f"unreadable model file {path}: {str(exc)[:100]}") from None
