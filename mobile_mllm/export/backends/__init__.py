"""Backends are plug-ins: one module per target that returns partitioners for a method.

:data:`BACKENDS` maps a target name (``--target``) to the module implementing it; each module
exposes ``check(cfg)`` (raise early when the backend cannot work here),
``partitioners(method: str, cfg: TargetConfig) -> list`` and ``edge_passes(method, cfg) -> list``
(graph passes run on the method's edge program before partitioning, e.g. rewriting an op the
backend would otherwise lower wrongly), and may import its SDK only
inside that function (raising :class:`~mobile_mllm.errors.MissingDependencyError` with what to
install). ``program.py`` looks the backend up here and never names one.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from mobile_mllm.errors import ConfigError

__all__ = ["BACKENDS", "get_backend"]

BACKENDS: dict[str, str] = {
    "cpu": "mobile_mllm.export.backends.xnnpack",
    "mediatek": "mobile_mllm.export.backends.mediatek",
}
"""Target name -> module exposing ``partitioners(method, cfg)``."""


def get_backend(target: str) -> ModuleType:
    """The backend module of a target, by exact name.

    Raises:
        ConfigError: for an unknown target, listing the known ones.
    """
    if target not in BACKENDS:
        raise ConfigError(f"no export target {target!r}; known: {', '.join(BACKENDS)}")
    return importlib.import_module(BACKENDS[target])
