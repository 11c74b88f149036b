"""Model directory -> ExecuTorch program (+ tokenizer, manifest, report), through backend plug-ins.

Importing this package loads no torch or executorch (``decoder.py``, which needs torch, is
imported by :func:`export_program` when it runs).
"""

from mobile_mllm.export.manifest import build_manifest, read_manifest
from mobile_mllm.export.program import (
    STAGES,
    ExportArtifacts,
    ExportJob,
    ExportResult,
    Target,
    TargetConfig,
    export_program,
)

__all__ = [
    "STAGES",
    "ExportArtifacts",
    "ExportJob",
    "ExportResult",
    "Target",
    "TargetConfig",
    "build_manifest",
    "export_program",
    "read_manifest",
]
