"""What `qa model` reports: where the model is, which engine runs it, whether its files verify.

Re-hashes the default model's files against their manifest and the ONNX export against its
own, after building or exporting what was asked for. The command line only prints the report.
"""

from __future__ import annotations

import time
from pathlib import Path

from pydantic import BaseModel, Field

from ..engines import choose_backend
from ..errors import QAError
from .default import DEFAULT_MODEL, build_default_model, default_model_dir, verify_model
from .resolve import resolve_model
from .spec import MANIFEST_NAME
from .folder import EXPORT_FOLDER
from .export import export_problem, read_export_manifest, verify_export, write_export


class ExportInfo(BaseModel):
    min_cosine: float  # the export's agreement with the torch engine, measured when it was written
    files: list[str]


class ModelReport(BaseModel):
    path: str
    model: str
    fingerprint: str
    query_prefix: str
    passage_prefix: str
    engine: str  # what `auto` picks for this model
    onnx_export: ExportInfo | None
    verified: bool
    problems: list[str]
    seconds: float
    is_local: bool = Field(exclude=True)

    @property
    def export_dir(self) -> Path:
        return Path(self.path) / EXPORT_FOLDER


def check_model(model: str | None = None, *, rebuild: bool = False, export: bool = False) -> ModelReport:
    """Resolve `model` (building the default one if missing, or again with `rebuild`), write its
    ONNX export if `export`, then verify what is there."""
    started = time.perf_counter()
    if rebuild:
        if model not in (None, DEFAULT_MODEL):
            raise QAError("--rebuild applies to the default model only")
        build_default_model(default_model_dir(), force=True)
    spec = resolve_model(model)
    if export:
        write_export(spec, force=rebuild)
    folder = Path(spec.location)
    problems = verify_model(folder) if (folder / MANIFEST_NAME).is_file() else []
    manifest = read_export_manifest(spec)
    if manifest is not None:
        problems += verify_export(spec) or [p for p in [export_problem(spec)] if p]
    info = None if manifest is None else ExportInfo(min_cosine=manifest["parity"]["min_cosine"],
                                                    files=sorted(manifest["files"]))
    return ModelReport(path=spec.location, model=spec.model_id, fingerprint=spec.fingerprint,
                       query_prefix=spec.query_prefix, passage_prefix=spec.passage_prefix,
                       engine=choose_backend(spec, "auto"), onnx_export=info, verified=not problems,
                       problems=problems, seconds=round(time.perf_counter() - started, 2), is_local=spec.is_local)
