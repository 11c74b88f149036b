"""Start the demo app: load a Gradio layout file (``demo/app.py`` by default) and serve it.

The layout is a user-editable file, not library code, so it is loaded by path; it must define
``build(slots, config) -> gradio.Blocks``. The library side (slots, streaming, overlay) is
imported by that file like any other user code.
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path
from types import ModuleType
from typing import Any

from mobile_mllm.chat.config import DemoConfig
from mobile_mllm.chat.slot import ModelSlot
from mobile_mllm.errors import ConfigError, MissingDependencyError

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_APP", "build_app", "load_app", "serve"]

DEFAULT_APP = Path(__file__).resolve().parents[2] / "demo" / "app.py"
"""The repository's ``demo/app.py`` (present in a source checkout)."""


def load_app(path: str | Path | None = None) -> ModuleType:
    """Import a layout file by path.

    Raises:
        ConfigError: the file is missing or has no ``build`` function.
        MissingDependencyError: gradio is not installed.
    """
    app = Path(path) if path is not None else DEFAULT_APP
    if not app.is_file():
        raise ConfigError(f"demo app not found: {app} (pass --app PATH to a copy of the repository's demo/app.py)")
    try:
        import gradio  # noqa: F401
    except ImportError as e:
        raise MissingDependencyError(f"the demo needs gradio: pip install 'gradio>=6,<7' ({e})") from e
    spec = importlib.util.spec_from_file_location("mobile_mllm_demo_app", app)
    assert spec is not None and spec.loader is not None  # a .py file path always has a loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if not callable(getattr(module, "build", None)):
        raise ConfigError(f"{app} defines no build(slots, config) function")
    return module


def build_app(models: list[str], config: DemoConfig, app: str | Path | None = None) -> Any:
    """The Gradio Blocks of the layout over one :class:`ModelSlot` per model (loaded on first question).

    Raises:
        ConfigError: no model, the same model twice, or a backend that does not fit a model.
    """
    if not models:
        raise ConfigError("demo: name at least one model (a model directory, a program directory or builtin:NAME)")
    slots = [ModelSlot(ref, config) for ref in models]
    labels = [s.label for s in slots]
    if len(set(labels)) != len(labels):
        raise ConfigError(f"demo: two models have the same name ({', '.join(labels)}); give distinct folders")
    for ref in models:
        from mobile_mllm.model.registry import BUILTIN_PREFIX, resolve_model_path

        if not ref.startswith(BUILTIN_PREFIX):
            resolve_model_path(ref)  # a missing folder fails now, not at the first question
    return load_app(app).build(slots, config)


def serve(models: list[str], config: DemoConfig, app: str | Path | None = None, *, block: bool = True) -> Any:
    """Build the app and serve it on ``config.host:config.port``; returns the Blocks (non-blocking with ``block=False``)."""
    demo = build_app(models, config, app)
    logger.info("demo on http://%s:%d (models: %s)", config.host, config.port, ", ".join(models))
    demo.launch(server_name=config.host, server_port=config.port or None, prevent_thread_lock=not block,
                show_error=False, quiet=True)
    return demo
