"""Read a JSON object file of a model directory, failing with a ModelLoadError that names the file.

Every family reads ``config.json`` and its processor files through :func:`read_json_object`;
what a missing file means (which directory the user should have given) is the family's hint.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mobile_mllm.errors import ModelLoadError

__all__ = ["peek_json_object", "read_json_object"]


def read_json_object(path: Path, *, missing_hint: str) -> dict[str, Any]:
    """The JSON object in ``path``.

    Args:
        path (Path): the file.
        missing_hint (str): appended to ``"{dir}: missing {name}"`` when the file does not exist
            (e.g. ``"; is this an InternVL-hf directory?"``).

    Raises:
        ModelLoadError: the file is missing, unreadable, not JSON, or not a JSON object.
    """
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as e:
        raise ModelLoadError(f"{path.parent}: missing {path.name}{missing_hint}") from e
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"{path} is not valid JSON: {e}") from e
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path} must hold a JSON object, got {type(data).__name__}")
    return data


def peek_json_object(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None when it is missing or not one: for ``can_load`` probes, which must not raise."""
    try:
        return read_json_object(path, missing_hint="")
    except ModelLoadError:
        return None
