"""Dataclass <-> TOML <-> command line, one name each.

A TOML table is a dataclass and a key is a field: ``[quant] group_size = 32`` is
``job.quant.group_size`` is ``--quant.group-size 32``. Flags are generated from the fields
(help text = the docstring line under the field), never written by hand. Precedence is
dataclass default < recipe file < command-line flag. Unknown keys and wrong types are
errors, collected into one :class:`~mobile_mllm.errors.ConfigError` that lists them all.

Deliberately not here: any knowledge of what the configs mean. Cross-field rules live in each
dataclass's ``__post_init__`` (raise ``ConfigError`` naming both fields).
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import enum
import functools
import inspect
import logging
import textwrap
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from mobile_mllm.errors import ConfigError

logger = logging.getLogger(__name__)

T = TypeVar("T")

__all__ = [
    "add_arguments",
    "field_docs",
    "from_dict",
    "load_toml",
    "log_config",
    "resolve",
    "to_dict",
    "to_toml",
]


# --------------------------------------------------------------------------- introspection


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """Return ``{field: first docstring paragraph}`` for a dataclass, read from its source.

    A field's doc is the string literal on the line after it, as in::

        group_size: int = 32
        \"\"\"Weights per quantization group.\"\"\"

    Its first paragraph (up to a blank line), joined into one line, becomes the ``--help`` text,
    so a sentence wrapped over several source lines is shown whole.
    """
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError, SyntaxError):
            continue
        body = tree.body[0].body if tree.body and isinstance(tree.body[0], ast.ClassDef) else []
        for node, nxt in zip(body, body[1:] + [None]):
            if (
                isinstance(node, ast.AnnAssign)
                and isinstance(node.target, ast.Name)
                and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant)
                and isinstance(nxt.value.value, str)
            ):
                docs[node.target.id] = " ".join(inspect.cleandoc(nxt.value.value).split("\n\n")[0].split())
    for f in dataclasses.fields(cls):
        if "help" in f.metadata:
            docs[f.name] = f.metadata["help"]
    return docs


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _strip_optional(tp: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return tp, False


def _type_name(tp: Any) -> str:
    inner, optional = _strip_optional(tp)
    if isinstance(inner, type) and issubclass(inner, enum.Enum):
        name = "one of " + ", ".join(repr(m.value) for m in inner)
    elif isinstance(inner, type):
        name = inner.__name__
    else:
        name = str(inner).replace("typing.", "")
    return f"{name} or none" if optional else name


# --------------------------------------------------------------------------- coercion


class _Problems:
    """Collects every problem so one ConfigError can list them all."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{where}: {message}" if where else message)


_MISSING = object()


def _coerce(value: Any, tp: Any, where: str, problems: _Problems) -> Any:
    inner, optional = _strip_optional(tp)
    if value is None or (optional and isinstance(value, str) and value.lower() in ("none", "null")):
        if optional:
            return None
        problems.add(where, f"must be {_type_name(tp)}, got none")
        return _MISSING
    origin = typing.get_origin(inner)
    if dataclasses.is_dataclass(inner):
        if isinstance(value, inner):
            return value
        if not isinstance(value, Mapping):
            problems.add(where, f"must be a table of {inner.__name__} settings, got {value!r}")
            return _MISSING
        return _build(inner, value, where, problems)
    if isinstance(inner, type) and issubclass(inner, enum.Enum):
        if isinstance(value, inner):
            return value
        try:
            return inner(value)
        except ValueError:
            allowed = ", ".join(repr(m.value) for m in inner)
            problems.add(where, f"{value!r} is not one of {allowed}")
            return _MISSING
    if origin in (tuple, list):
        args = typing.get_args(inner)
        if isinstance(value, str):
            value = [v for v in value.replace(",", " ").split() if v]
        if not isinstance(value, (list, tuple)):
            problems.add(where, f"must be a list ({_type_name(tp)}), got {value!r}")
            return _MISSING
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                problems.add(where, f"must have {len(args)} items, got {len(value)}: {list(value)!r}")
                return _MISSING
            item_types = list(args)
        else:
            item_types = [args[0] if args else Any] * len(value)
        items = [_coerce(v, t, f"{where}[{i}]", problems) for i, (v, t) in enumerate(zip(value, item_types))]
        return origin(items)
    if inner is Any:
        return value
    if inner is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "1", "yes", "on", "false", "0", "no", "off"):
            return value.lower() in ("true", "1", "yes", "on")
        problems.add(where, f"must be true or false, got {value!r}")
        return _MISSING
    if inner in (int, float):
        accepted = (int, str) if inner is int else (int, float, str)
        what = "an integer" if inner is int else "a number"
        if not isinstance(value, bool) and isinstance(value, accepted):
            try:
                return inner(value)
            except ValueError:
                pass
        problems.add(where, f"must be {what}, got {value!r}")
        return _MISSING
    if inner is str:
        if not isinstance(value, str):
            problems.add(where, f"must be a string, got {value!r}")
            return _MISSING
        return value
    if inner is Path:
        if not isinstance(value, (str, Path)):
            problems.add(where, f"must be a path, got {value!r}")
            return _MISSING
        return Path(value)
    return value


def _build(cls: type[T], data: Mapping[str, Any], where: str, problems: _Problems) -> T | Any:
    hints = _hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    for key in data:
        if key not in names:
            known = ", ".join(sorted(names))
            problems.add(f"{where}.{key}" if where else key, f"unknown key for {cls.__name__}; known: {known}")
    kwargs: dict[str, Any] = {}
    for name in names:
        if name in data:
            value = _coerce(data[name], hints[name], f"{where}.{name}" if where else name, problems)
            if value is not _MISSING:
                kwargs[name] = value
    if problems.items:
        return _MISSING
    try:
        return cls(**kwargs)
    except ConfigError as e:
        problems.add(where or cls.__name__, str(e))
    except TypeError as e:  # a required field without default
        problems.add(where or cls.__name__, str(e))
    return _MISSING


def from_dict(cls: type[T], data: Mapping[str, Any], *, source: str = "") -> T:
    """Build ``cls`` from a (nested) mapping, checking keys and types.

    Args:
        cls (type): a dataclass.
        data (Mapping): values by field name; nested dataclasses take nested mappings.
        source (str): where the data came from (a file path), for messages. Default "".

    Returns:
        An instance of ``cls``.

    Raises:
        ConfigError: listing every unknown key, wrong type and failed cross-field rule.

    Example:
        >>> @dataclasses.dataclass
        ... class Q:
        ...     group_size: int = 32
        >>> from_dict(Q, {"group_size": "64"}).group_size
        64
    """
    problems = _Problems()
    obj = _build(cls, data, "", problems)
    if problems.items or obj is _MISSING:
        head = f"invalid {cls.__name__}" + (f" in {source}" if source else "")
        raise ConfigError(head + ":\n  " + "\n  ".join(problems.items))
    return obj


def to_dict(obj: Any) -> Any:
    """A JSON/TOML-ready view of a dataclass: enums by value, tuples as lists, paths as strings."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, Mapping):
        return {str(k): to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def load_toml(path: str | Path) -> dict[str, Any]:
    """Read a TOML file into a dict, with a clear error for a missing or malformed file."""
    p = Path(path)
    try:
        with p.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as e:
        raise ConfigError(f"config file not found: {p}") from e
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{p} is not valid TOML: {e}") from e
    except OSError as e:  # a folder, unreadable
        raise ConfigError(f"cannot read config file {p}: {e.strerror or e}") from e


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def to_toml(obj: Any) -> str:
    """Write a dataclass as TOML (``None`` fields are omitted, nested dataclasses become tables)."""
    data = to_dict(obj)
    lines: list[str] = []

    def emit(table: dict[str, Any], name: str) -> None:
        scalars = {k: v for k, v in table.items() if not isinstance(v, dict) and v is not None}
        if name and scalars:
            lines.append(f"[{name}]")
        for k, v in scalars.items():
            lines.append(f"{k} = {_toml_value(v)}")
        if scalars:
            lines.append("")
        for k, v in table.items():
            if isinstance(v, dict):
                emit(v, f"{name}.{k}" if name else k)

    emit(data, "")
    return "\n".join(lines)


# --------------------------------------------------------------------------- command line


def _flag(prefix: str | None, name: str) -> str:
    return "--" + (f"{prefix}." if prefix else "") + name.replace("_", "-")


def add_arguments(
    parser: argparse.ArgumentParser,
    cls: type,
    *,
    prefix: str | None = None,
    exclude: tuple[str, ...] = (),
) -> None:
    """Add one flag per field of ``cls`` (recursing into nested dataclasses with dotted prefixes).

    Flags default to ``argparse.SUPPRESS`` so that only flags the user typed reach
    :func:`resolve`, which is what makes "CLI beats recipe file beats default" work.

    Args:
        parser (argparse.ArgumentParser): where to add the flags.
        cls (type): the dataclass.
        prefix (str | None): dotted table name (``"quant"`` -> ``--quant.group-size``);
            ``None`` for a command with one flat config. Default None.
        exclude (tuple[str, ...]): field names not to expose (positional arguments, say).
    """
    docs = field_docs(cls)
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init or f.name in exclude:
            continue
        tp = hints[f.name]
        inner, _ = _strip_optional(tp)
        dest = (f"{prefix}." if prefix else "") + f.name
        if dataclasses.is_dataclass(inner):
            add_arguments(parser, inner, prefix=dest)
            continue
        help_text = docs.get(f.name, "")
        default = f.default if f.default is not dataclasses.MISSING else None
        if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
            default = f.default_factory()  # type: ignore[misc]
        shown = to_dict(default)
        help_text = f"{help_text} (default: {shown})" if help_text else f"default: {shown}"
        kw: dict[str, Any] = {"dest": dest, "default": argparse.SUPPRESS, "help": help_text}
        if inner is bool:
            parser.add_argument(_flag(prefix, f.name), action=argparse.BooleanOptionalAction, **kw)
            continue
        if isinstance(inner, type) and issubclass(inner, enum.Enum):
            kw["choices"] = [m.value for m in inner]
            kw["type"] = functools.partial(_enum_value, inner)
        elif typing.get_origin(inner) in (tuple, list):
            args = typing.get_args(inner)
            kw["nargs"] = len(args) if args and args[-1] is not Ellipsis else "+"
        kw["metavar"] = None if "choices" in kw else f.name.upper()
        parser.add_argument(_flag(prefix, f.name), **kw)


def _enum_value(cls: type[enum.Enum], text: str) -> Any:
    """A flag's text as the enum's canonical value when the enum accepts it (``_missing_`` may
    allow other spellings, e.g. ``MCQ`` for ``mcq``), else unchanged for argparse's choices check."""
    try:
        return cls(text).value
    except ValueError:
        return text


def _nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for dotted, value in flat.items():
        node = out
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return out


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, Mapping) and isinstance(out.get(k), dict) else v
    return out


def resolve(
    cls: type[T],
    *,
    recipe: str | Path | Mapping[str, Any] | None = None,
    overrides: Mapping[str, Any] | argparse.Namespace | None = None,
    prefix: str | None = None,
) -> T:
    """Build a config with precedence dataclass default < recipe < overrides.

    Args:
        cls (type): the (possibly nested) config dataclass.
        recipe (str | Path | Mapping | None): a TOML path or an already-read mapping.
        overrides (Mapping | Namespace | None): dotted names to values, e.g. the namespace from
            a parser built with :func:`add_arguments`; keys not belonging to ``cls`` are ignored.
        prefix (str | None): the prefix used in :func:`add_arguments`. Default None.

    Raises:
        ConfigError: unknown keys, wrong types, failed cross-field rules, unreadable file.
    """
    source = ""
    data: dict[str, Any] = {}
    if isinstance(recipe, (str, Path)):
        source = str(recipe)
        data = load_toml(recipe)
    elif recipe is not None:
        data = dict(recipe)
    flat = vars(overrides) if isinstance(overrides, argparse.Namespace) else dict(overrides or {})
    top = {f.name for f in dataclasses.fields(cls)}
    mine: dict[str, Any] = {}
    for key, value in flat.items():
        if prefix:
            if not key.startswith(prefix + "."):
                continue
            key = key[len(prefix) + 1 :]
        if key.split(".")[0] in top:
            mine[key] = value
    return from_dict(cls, _merge(data, _nest(mine)), source=source)


def log_config(name: str, cfg: Any) -> None:
    """Log the resolved config once, at the start of a job."""
    logger.info("%s config: %s", name, to_dict(cfg))
