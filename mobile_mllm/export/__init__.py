"""Model directory -> ExecuTorch program (+ tokenizer, manifest, report), through backend recipes.

:func:`export_program` is the stage driver; each target is an :class:`ExportBackend`
(``backend.py``) registered in ``backends/``. Importing this package loads no torch or
executorch (``decoder.py`` and the backends' SDKs are imported when an export runs).
"""

from mobile_mllm.export.backend import ExportBackend, MethodInputs
from mobile_mllm.export.config import ExportJob, OnnxQuantization, Target, TargetConfig, VisionEngine
from mobile_mllm.export.manifest import build_manifest, read_manifest
from mobile_mllm.export.program import STAGES, ExportArtifacts, ExportResult, export_program

__all__ = [
    "STAGES",
    "ExportArtifacts",
    "ExportBackend",
    "ExportJob",
    "ExportResult",
    "MethodInputs",
    "OnnxQuantization",
    "Target",
    "TargetConfig",
    "VisionEngine",
    "build_manifest",
    "export_program",
    "read_manifest",
]
