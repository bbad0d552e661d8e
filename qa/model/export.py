"""Writing and checking the ONNX export that lives inside a model folder.

Layout (the one sentence-transformers uses for `backend="onnx"`, plus a manifest)::

    MODEL_FOLDER/onnx/model.onnx        the graph: ids, mask (, token types) -> last_hidden_state
    MODEL_FOLDER/onnx/model.onnx_data   the weights, one external file that onnxruntime maps
    MODEL_FOLDER/onnx/qa-unigram.npz    the vocabulary of a Unigram tokenizer, for questions (qa.engines.unigram)
    MODEL_FOLDER/onnx/qa-export.json    source fingerprint, sha256 and size of both files,
                                        versions, and the measured agreement with torch
    MODEL_FOLDER/onnx/model_int8.onnx   the int8 variant (write_int8), recorded in the manifest's
                                        `variants.int8`: its hash, method, agreement with fp32

The export is the transformer alone, exported with torch's TorchScript exporter; pooling and
normalisation stay in numpy (:mod:`qa.engines.onnx_engine`), read from the folder like
sentence-transformers reads them. It is written beside its final place and renamed into it, and
accepted only if its vectors agree with the torch engine's (cosine >= MIN_COSINE) on a fixed
probe set of questions and passages, short and over-long, English and French. The weights in a
separate file matter: onnxruntime memory-maps them, so a session opens in a fraction of a second.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
import warnings
from pathlib import Path

from ..errors import ModelError
from ..fileops import file_lock, make_readable, sha256_file, swap_into_place
from .folder import DATA_FILE, EXPORT_FOLDER, MANIFEST_FILE, MODEL_FILE

EXPORT_FORMAT = 1
OPSET = 17
MIN_COSINE = 0.9999
PROBE_QUERIES = [
    "where did Kim meet Putin?", "où Kim a-t-il rencontré Poutine ?", "Qui est Iouri Ouchakov ?",
    "How much did trade between Russia and North Korea fall in 2018?", "x", "2019",
]
PROBE_PASSAGES = [
    "Fin avril, Kim Jong-un a été longuement reçu par Vladimir Poutine à Vladivostok, dans l’Extrême-Orient russe.",
    "The summit in Hanoi ended early, without any agreement on sanctions or denuclearisation.",
    "Publicité",
    # Longer than the model reads: truncation must cut where sentence-transformers cuts.
    " ".join(["Les échanges commerciaux entre la Russie et la Corée du Nord ont reculé de moitié en 2018."] * 60),
    "Ouchakov, conseiller diplomatique du Kremlin, a confirmé la rencontre ; « constructive », a-t-il dit.",
]


def export_dir(spec_or_folder) -> Path:
    folder = Path(getattr(spec_or_folder, "location", spec_or_folder))
    return folder / EXPORT_FOLDER


def read_export_manifest(spec) -> dict | None:
    try:
        return json.loads((export_dir(spec) / MANIFEST_FILE).read_text())
    except (OSError, ValueError):
        return None


def export_problem(spec) -> str | None:
    """Why `spec` cannot be served by the ONNX engine as it is (None: its export is usable).

    Cheap (a JSON file and two sizes): it runs on every question's path. `qa model` re-hashes.
    """
    if not spec.is_local:
        return f"model {spec.model_id} is not a local folder, so it has no ONNX export"
    manifest = read_export_manifest(spec)
    if manifest is None:
        return f"model {spec.model_id} has no ONNX export"
    if manifest.get("format") != EXPORT_FORMAT or manifest.get("source_fingerprint") != spec.fingerprint:
        return f"the ONNX export of {spec.model_id} is outdated (written for other weights or by another version)"
    for name, facts in manifest.get("files", {}).items():
        path = export_dir(spec) / name
        if not path.is_file() or path.stat().st_size != facts.get("bytes"):
            return f"the ONNX export of {spec.model_id} is incomplete ({name} is missing or truncated)"
    return None


def verify_export(spec) -> list[str]:
    """Problems found by re-hashing the export against its manifest (empty: intact or absent)."""

    manifest = read_export_manifest(spec)
    if manifest is None:
        return []
    problems = []
    variants = {name: facts for entry in manifest.get("variants", {}).values() for name, facts in entry["files"].items()}
    for name, facts in {**manifest.get("files", {}), **variants}.items():
        path = export_dir(spec) / name
        if not path.is_file():
            problems.append(f"{EXPORT_FOLDER}/{name} is missing")
        elif sha256_file(path) != facts.get("sha256"):
            problems.append(f"{EXPORT_FOLDER}/{name} does not match its recorded sha256")
    return problems


def write_export(spec, *, force: bool = False) -> Path:
    """Export `spec`'s folder to `onnx/` (or adopt an `onnx/model.onnx` already there), verified
    against the torch engine, atomically. Concurrent writers wait on a lock; the loser returns."""
    target = export_dir(spec)

    def write() -> None:
        if (target / MODEL_FILE).is_file() and read_export_manifest(spec) is None and not force:
            _adopt(spec, target)
        else:
            _write_fresh(spec, Path(spec.location), target)

    return _write_locked(spec, "an ONNX export", export_problem, write, force,
                         "the torch engine still serves this model (--backend torch)", target)


def _write_locked(spec, what: str, problem, write, force: bool, fallback: str, target: Path) -> Path:
    """`write()` under the model folder's export lock, unless `problem(spec)` finds nothing to
    do (a concurrent writer finished first); a read-only folder is a one-line ModelError."""
    if not spec.is_local:
        raise ModelError(f"model {spec.model_id} is not a local folder; only a folder can hold {what}")
    folder = Path(spec.location)
    try:
        with file_lock(folder / ".qa-onnx.lock"):
            if force or problem(spec) is not None:
                write()
    except PermissionError as exc:
        raise ModelError(f"cannot write {what} into {folder} ({exc.strerror}); {fallback}") from None
    return target


def _write_fresh(spec, folder: Path, target: Path) -> None:
    staging = folder / f".{EXPORT_FOLDER}.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        started = time.perf_counter()
        _export_graph(folder, staging)
        _write_fast_vocabulary(folder, staging)
        facts = _check_and_describe(spec, staging, exported_in=time.perf_counter() - started)
        (staging / MANIFEST_FILE).write_text(json.dumps(facts, indent=2, sort_keys=True) + "\n")
        make_readable(staging)
        swap_into_place(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _adopt(spec, target: Path) -> None:
    """An export that came with the model (from the hub, say): kept if it agrees with torch."""
    facts = _check_and_describe(spec, target, exported_in=None)
    (target / MANIFEST_FILE).write_text(json.dumps(facts, indent=2, sort_keys=True) + "\n")


def _export_graph(folder: Path, out: Path) -> None:
    """torch.onnx.export of the transformer (keyword inputs, dynamic batch and sequence axes),
    then re-saved with its weights in one external file."""
    import inspect

    import onnx
    import torch
    from transformers import AutoModel

    from .folder import read_layout
    from ..engines.torch_engine import quiet_libraries

    quiet_libraries()
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    layout = read_layout(folder)
    try:
        model = AutoModel.from_pretrained(str(folder / layout.transformer_path), attn_implementation="eager").eval()
    except Exception as exc:
        raise ModelError(f"cannot load {folder} to export it: {str(exc).strip().splitlines()[0][:160]}") from None
    names = ["input_ids", "attention_mask"]
    if "token_type_ids" in inspect.signature(model.forward).parameters:
        names.append("token_type_ids")

    class TokenStates(torch.nn.Module):
        """transformers 5 takes its inputs by keyword only; the exporter passes them in order."""

        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, *inputs):
            return self.inner(**dict(zip(names, inputs))).last_hidden_state

    # Two rows of different lengths, so the traced graph keeps the padding-mask path.
    ids = torch.tensor([[layout.pad_id + 2, 100, 200, 300], [layout.pad_id + 2, 400, 500, layout.pad_id]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]])
    example = (ids, mask, torch.zeros_like(ids))[: len(names)]
    single = out / "single.onnx"
    axes = {name: {0: "batch", 1: "sequence"} for name in [*names, "last_hidden_state"]}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(TokenStates(model), example, str(single), input_names=names,
                          output_names=["last_hidden_state"], dynamic_axes=axes, opset_version=OPSET,
                          do_constant_folding=True, dynamo=False)
    graph = onnx.load(str(single))
    onnx.save_model(graph, str(out / MODEL_FILE), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=DATA_FILE, size_threshold=1024)
    single.unlink()


def _write_fast_vocabulary(folder: Path, out: Path) -> None:
    """The question tokenizer's vocabulary file, for Unigram tokenizers it reproduces exactly."""
    from .folder import read_layout
    from ..engines.unigram import VOCAB_FILE, UnsupportedTokenizer, write_vocabulary

    try:
        write_vocabulary(folder / read_layout(folder).transformer_path / "tokenizer.json", out / VOCAB_FILE)
    except (UnsupportedTokenizer, OSError, ValueError, KeyError):
        (out / VOCAB_FILE).unlink(missing_ok=True)  # questions then use `tokenizers`, as passages do


def _check_and_describe(spec, export: Path, exported_in: float | None) -> dict:
    """Compare the export with the torch engine on the probes; the manifest if they agree."""
    import numpy as np

    from ..engines.onnx_engine import OnnxEmbedder
    from ..engines.torch_engine import TorchEmbedder
    from ..engines.unigram import VOCAB_FILE

    onnx_engine = OnnxEmbedder(spec, threads=2, model_path=export / MODEL_FILE)
    torch_engine = TorchEmbedder(spec, threads=2)
    cosines = []
    for embed in ("embed_queries", "embed_passages"):
        texts = PROBE_QUERIES if embed == "embed_queries" else PROBE_PASSAGES
        for batch_size in (1, 4):  # alone and batched with padding
            a = getattr(onnx_engine, embed)(texts, batch_size=batch_size)
            b = getattr(torch_engine, embed)(texts)
            cosines.append(float((a * b).sum(1).min()))
    worst = min(cosines)
    if not worst >= MIN_COSINE:
        raise ModelError(f"the ONNX export of {spec.model_id} disagrees with the torch engine (cosine {worst:.5f} "
                         f"< {MIN_COSINE}); it was not kept, use --backend torch")
    import onnxruntime
    import torch

    files = {p.name: {"bytes": p.stat().st_size, "sha256": sha256_file(p)}
             for p in (export / MODEL_FILE, export / DATA_FILE, export / VOCAB_FILE) if p.is_file()}
    return {
        "format": EXPORT_FORMAT, "source_fingerprint": spec.fingerprint, "model": spec.model_id, "files": files,
        "output": "last_hidden_state", "opset": OPSET if exported_in is not None else None,
        "written_by": "qa export" if exported_in is not None else "adopted (shipped with the model)",
        "versions": {"torch": torch.__version__, "onnxruntime": onnxruntime.__version__, "numpy": np.__version__},
        "parity": {"min_cosine": round(worst, 7), "probes": len(PROBE_QUERIES) + len(PROBE_PASSAGES),
                   "threshold": MIN_COSINE},
        "seconds": round(exported_in, 1) if exported_in is not None else None,
    }


# ---------------------------------------------------------------------------- the int8 variant

INT8_DATA_FILE = "model_int8.onnx.data"  # the name quantize_dynamic gives the external weights
INT8_MIN_COSINE = 0.98  # on the probes against the fp32 export; measured 0.9976 at worst on 300 PIAF questions
# Kept in fp32: each layer's feed-forward down-projection (1536 -> 384), whose input, after GELU,
# has the outlying values that one per-tensor activation scale represents worst. Quantising it
# too ran 0.49 x fp32's question time against 0.69 x, but cost 0.50 nDCG@10 on PIAF against
# the 0.3 allowed (EVALUATION.md, "int8 engine"). Matched by node name (torch's exporter,
# BERT-style `.../output/dense/MatMul` outside `attention`); a graph without such names is
# quantised whole.
INT8_METHOD = {"tool": "onnxruntime.quantization.quantize_dynamic", "weight_type": "QInt8", "per_channel": True,
               "activations": "uint8, quantised per tensor at run time",
               "ops": "onnxruntime's default dynamic set (MatMul with constant weights, Gather)",
               "kept_fp32": "feed-forward down-projections (*/output/dense/MatMul outside attention)",
               # One self-contained file took a median 1.6 s to open against 0.6-0.9 s with its weights
               # in a file onnxruntime memory-maps (as the fp32 export's are): a fresh `qa ask` waits.
               "weights": f"external, {INT8_DATA_FILE}"}


def _int8_excluded(graph_path: Path) -> list[str]:
    """Names of the nodes INT8_METHOD keeps in fp32 (the graph alone is read, not its weights)."""
    import onnx

    graph = onnx.load(str(graph_path), load_external_data=False).graph
    return [n.name for n in graph.node if n.op_type == "MatMul" and n.name.endswith("/output/dense/MatMul")
            and "attention" not in n.name]


def int8_path(spec) -> Path:
    from .folder import INT8_FILE

    return export_dir(spec) / INT8_FILE


def int8_problem(spec) -> str | None:
    """Why `spec` has no usable int8 export (None: it has one). Cheap, like export_problem."""
    problem = export_problem(spec)
    if problem is not None:
        return problem
    manifest = read_export_manifest(spec) or {}
    entry = manifest.get("variants", {}).get("int8")
    if entry is None:
        return f"model {spec.model_id} has no int8 export"
    if entry.get("source_sha256") != manifest["files"].get(DATA_FILE, manifest["files"].get(MODEL_FILE, {})).get("sha256"):
        return f"the int8 export of {spec.model_id} was made from another fp32 export"
    if entry.get("method") != INT8_METHOD:
        return f"the int8 export of {spec.model_id} was made by another recipe"
    for name, facts in entry.get("files", {}).items():
        path = export_dir(spec) / name
        if not path.is_file() or path.stat().st_size != facts.get("bytes"):
            return f"the int8 export of {spec.model_id} is incomplete ({name} is missing or truncated)"
    return None


def write_int8(spec, *, force: bool = False) -> Path:
    """Quantise the fp32 export to `onnx/model_int8.onnx` (dynamic int8, per-channel weights),
    kept only if its vectors agree with the fp32 export's (cosine >= INT8_MIN_COSINE) on the
    probes, and recorded under `variants.int8` in the export's manifest. Needs the fp32 export
    (not torch). Concurrent writers wait on the export's lock; the loser returns."""
    target = int8_path(spec)

    def write() -> None:
        problem = export_problem(spec)
        if problem is not None:
            raise ModelError(f"{problem}; the int8 export is made from it: write it with `qa model --model "
                             f"{spec.location} --export`")
        _write_int8(spec, target)

    return _write_locked(spec, "an int8 export", int8_problem, write, force, "use --precision fp32", target)


def _write_int8(spec, target: Path) -> None:
    """Quantise into a staging folder beside the export (the graph names its weights file, so the
    two are written under their final names there), check, move the weights then the graph into
    place, and record them in the manifest last."""
    import numpy as np
    import onnxruntime
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from ..engines.onnx_engine import OnnxEmbedder

    staging = export_dir(spec) / f".int8.tmp-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    started = time.perf_counter()
    try:
        logger = logging.getLogger()
        level = logger.level
        logger.setLevel("ERROR")  # quantize_dynamic's advice to pre-process (its shape inference fails on this graph)
        try:
            source = export_dir(spec) / MODEL_FILE
            quantize_dynamic(source, staging / target.name, per_channel=True, weight_type=QuantType.QInt8,
                             nodes_to_exclude=_int8_excluded(source), use_external_data_format=True)
        finally:
            logger.setLevel(level)
        fp32 = OnnxEmbedder(spec, threads=2)
        int8 = OnnxEmbedder(spec, threads=2, model_path=staging / target.name)
        worst = 1.0
        for embed, texts in (("embed_queries", PROBE_QUERIES), ("embed_passages", PROBE_PASSAGES)):
            a, b = getattr(int8, embed)(texts), getattr(fp32, embed)(texts)
            worst = min(worst, float((a * b).sum(1).min()))
        del int8  # its session maps the staged weights
        if not worst >= INT8_MIN_COSINE:
            raise ModelError(f"the int8 export of {spec.model_id} strays from the fp32 one (cosine {worst:.4f} < "
                             f"{INT8_MIN_COSINE}); it was not kept, use --precision fp32")
        make_readable(staging)
        files = {}
        for name in (INT8_DATA_FILE, target.name):  # the graph last: it names the weights file
            files[name] = {"bytes": (staging / name).stat().st_size, "sha256": sha256_file(staging / name)}
            os.replace(staging / name, export_dir(spec) / name)
        manifest = read_export_manifest(spec)
        origin = manifest["files"].get(DATA_FILE, manifest["files"].get(MODEL_FILE))
        manifest.setdefault("variants", {})["int8"] = {
            "files": files, "source_sha256": origin["sha256"], "method": INT8_METHOD,
            "parity": {"min_cosine_vs_fp32": round(worst, 5), "threshold": INT8_MIN_COSINE,
                       "probes": len(PROBE_QUERIES) + len(PROBE_PASSAGES)},
            "versions": {"onnxruntime": onnxruntime.__version__, "numpy": np.__version__},
            "seconds": round(time.perf_counter() - started, 1)}
        written = staging / MANIFEST_FILE
        written.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
        written.chmod(0o644)
        os.replace(written, export_dir(spec) / MANIFEST_FILE)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
