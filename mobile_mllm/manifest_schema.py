"""The manifest's JSON Schema (``manifest.schema.json``, shipped in the package) and a small validator.

The exporter validates every manifest it writes and every reader validates what it reads,
against the same file the Android app ships, so a key, type or range the three disagree on is
an error naming the key rather than a wrong number on a phone. The validator is pure Python
and implements the part of JSON Schema (draft 2020-12) the file uses: ``type`` (one or a
list), ``const``, ``enum``, ``required``, ``properties``, ``additionalProperties`` (false or a
schema), ``items``, ``minItems``/``maxItems``, ``minimum``/``maximum`` and ``pattern``; a
keyword outside that set is refused, so the schema cannot silently say more than is checked.

Deliberately not here: what the keys mean (``contract.py``), reading the file and upgrading
old versions (``export/manifest.py``).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from mobile_mllm.errors import ContractError

__all__ = ["SCHEMA_FILE", "check_manifest", "load_schema", "manifest_errors"]

SCHEMA_FILE = Path(__file__).with_name("manifest.schema.json")
"""The schema, package data beside this module."""

_KNOWN = {
    "$schema", "$id", "title", "description", "type", "const", "enum", "required", "properties",
    "additionalProperties", "items", "minItems", "maxItems", "minimum", "maximum", "pattern",
}
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "integer": (int,), "number": (int, float),
    "boolean": (bool,), "null": (type(None),),
}


@lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    """The manifest schema as a dict (read once)."""
    return json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))


def _is(value: Any, name: str) -> bool:
    if isinstance(value, bool) and name in ("integer", "number"):
        return False  # JSON's true is not 1
    return isinstance(value, _TYPES[name])


def _errors(value: Any, schema: dict[str, Any], path: str, out: list[str]) -> None:
    unknown = set(schema) - _KNOWN
    if unknown:
        raise ContractError(f"manifest schema at {path}: unsupported keyword(s) {sorted(unknown)}")
    where = path or "(top level)"
    if "const" in schema and value != schema["const"]:
        out.append(f"{where}: expected {schema['const']!r}, got {value!r}")
        return
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{where}: {value!r} is not one of {schema['enum']}")
        return
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is(value, t) for t in types):
            out.append(f"{where}: expected {' or '.join(types)}, got {type(value).__name__} {value!r}")
            return
    if _is(value, "number"):
        if "minimum" in schema and value < schema["minimum"]:
            out.append(f"{where}: {value} is below the minimum {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            out.append(f"{where}: {value} is above the maximum {schema['maximum']}")
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        out.append(f"{where}: {value!r} does not match {schema['pattern']!r}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            out.append(f"{where}: needs at least {schema['minItems']} item(s), got {len(value)}")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            out.append(f"{where}: allows at most {schema['maxItems']} item(s), got {len(value)}")
        if "items" in schema:
            for i, item in enumerate(value):
                _errors(item, schema["items"], f"{path}[{i}]", out)
    if isinstance(value, dict):
        for key in schema.get("required", ()):
            if key not in value:
                out.append(f"{_join(path, key)}: missing")
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in properties:
                _errors(item, properties[key], _join(path, key), out)
            elif extra is False:
                out.append(f"{_join(path, key)}: unknown key (allowed: {', '.join(properties)})")
            elif isinstance(extra, dict):
                _errors(item, extra, _join(path, key), out)


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def manifest_errors(manifest: Any, schema: dict[str, Any] | None = None) -> list[str]:
    """Every way ``manifest`` breaks the schema, each naming the key (dotted path), empty when valid.

    Args:
        manifest (Any): a parsed ``manifest.json``.
        schema (dict | None): the schema. Default None: the package's ``manifest.schema.json``.

    Example:
        >>> manifest_errors({"format": "mobile-mllm-manifest"})[:2]
        ['version: missing', 'model: missing']
    """
    out: list[str] = []
    _errors(manifest, load_schema() if schema is None else schema, "", out)
    return out


def check_manifest(manifest: Any, source: str, *, advice: str = "") -> None:
    """Raise unless ``manifest`` follows the schema.

    Args:
        manifest (Any): a parsed manifest.
        source (str): where it came from (a path, or "the exporter"), for the message.
        advice (str): what the user should do, appended to the message. Default "".

    Raises:
        ContractError: listing every problem, each naming its key.
    """
    problems = manifest_errors(manifest)
    if problems:
        raise ContractError(
            f"{source}: manifest does not follow {SCHEMA_FILE.name} (version {load_schema()['properties']['version']['const']}): "
            + "; ".join(problems)
            + (f". {advice}" if advice else "")
        )
