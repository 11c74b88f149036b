"""Export targets by name: each module defines one :class:`~mobile_mllm.export.backend.ExportBackend`.

:data:`BACKENDS` maps a target name (``--target``) to the module whose ``BACKEND`` implements
it (the protocol: ``export/backend.py``). A module may import its SDK only inside its
functions, raising :class:`~mobile_mllm.errors.MissingDependencyError` with what to install
(``check`` runs before any slow stage). ``program.py`` looks the backend up here and never
names one; adding a target is one module and one line here.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from mobile_mllm.errors import ConfigError

if TYPE_CHECKING:
    from mobile_mllm.export.backend import ExportBackend

__all__ = ["BACKENDS", "get_backend"]

BACKENDS: dict[str, str] = {
    "cpu": "mobile_mllm.export.backends.xnnpack",
    "mediatek": "mobile_mllm.export.backends.mediatek",
}
"""Target name -> module defining ``BACKEND``."""


def get_backend(target: str) -> ExportBackend:
    """The export backend of a target, by exact name.

    Raises:
        ConfigError: for an unknown target, listing the known ones.
    """
    if target not in BACKENDS:
        raise ConfigError(f"no export target {target!r}; known: {', '.join(BACKENDS)}")
    return importlib.import_module(BACKENDS[target]).BACKEND
