"""mobile_mllm.config: dataclass <-> TOML <-> flags, precedence, and every kind of refusal."""

from __future__ import annotations

import argparse
import enum
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from mobile_mllm.config import add_arguments, field_docs, from_dict, resolve, to_dict, to_toml
from mobile_mllm.errors import ConfigError


class Mode(str, enum.Enum):
    FAST = "fast"
    EXACT = "exact"


@dataclass(frozen=True)
class Quant:
    group_size: int = 32
    """Weights per quantization group."""
    mode: Mode = Mode.FAST
    """How to quantize."""
    skip: tuple[str, ...] = ()
    """Module names left in float."""


@dataclass(frozen=True)
class Job:
    name: str = "job"
    """A label."""
    verify: bool = True
    """Check the result."""
    limit: int | None = None
    """Optional cap."""
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    """Per-channel mean."""
    out: Path = Path("out")
    """Output folder."""
    quant: Quant = field(default_factory=Quant)

    def __post_init__(self) -> None:
        if self.limit is not None and self.limit < self.quant.group_size:
            raise ConfigError(f"limit ({self.limit}) must be >= quant.group_size ({self.quant.group_size})")


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_arguments(parser, Job)
    return parser.parse_args(argv)


def test_field_docs_read_from_source() -> None:
    assert field_docs(Quant)["group_size"] == "Weights per quantization group."
    assert field_docs(Job)["verify"] == "Check the result."


@dataclass(frozen=True)
class Wrapped:
    per_image: int = 1
    """Examples per drawn image: 1 = the drawn question (or the description,
    see ``describe``); more = the other forms too.

    A second paragraph is for readers of the source only."""


def test_field_docs_keep_a_wrapped_first_paragraph_whole() -> None:
    # train-reference --help used to stop at "(or the description," (the first source line).
    expected = "Examples per drawn image: 1 = the drawn question (or the description, see ``describe``); more = the other forms too."
    assert field_docs(Wrapped)["per_image"] == expected
    parser = argparse.ArgumentParser()
    add_arguments(parser, Wrapped)
    assert parser._option_string_actions["--per-image"].help == f"{expected} (default: 1)"


def test_from_dict_coerces_nested_values_and_enums() -> None:
    job = from_dict(Job, {"limit": "64", "mean": [0, 1, 2], "out": "x", "quant": {"mode": "exact", "skip": ["a"]}})
    assert job.limit == 64 and job.mean == (0.0, 1.0, 2.0) and job.out == Path("x")
    assert job.quant == Quant(group_size=32, mode=Mode.EXACT, skip=("a",))


def test_every_problem_is_listed_in_one_error() -> None:
    with pytest.raises(ConfigError) as info:
        from_dict(Job, {"nmae": "x", "verify": "maybe", "quant": {"group_size": 1.5, "mode": "slow"}, "mean": [1]})
    text = str(info.value)
    assert "nmae: unknown key for Job; known:" in text
    assert "verify: must be true or false, got 'maybe'" in text
    assert "quant.group_size: must be an integer, got 1.5" in text
    assert "quant.mode: 'slow' is not one of 'fast', 'exact'" in text
    assert "mean: must have 3 items, got 1" in text


def test_cross_field_rule_names_both_fields() -> None:
    with pytest.raises(ConfigError, match=r"limit \(8\) must be >= quant.group_size \(32\)"):
        from_dict(Job, {"limit": 8})


def test_generated_flags_parse_nested_enum_bool_and_tuple() -> None:
    ns = _parse(["--quant.group-size", "64", "--no-verify", "--mean", "1", "2", "3", "--quant.mode", "exact"])
    job = resolve(Job, overrides=ns)
    assert job.quant.group_size == 64 and job.quant.mode is Mode.EXACT
    assert job.verify is False and job.mean == (1.0, 2.0, 3.0)


def test_enum_flag_rejects_unknown_choice() -> None:
    with pytest.raises(SystemExit):
        _parse(["--quant.mode", "slow"])


def test_precedence_default_then_recipe_then_flag(tmp_path: Path) -> None:
    recipe = tmp_path / "r.toml"
    recipe.write_text('name = "from-file"\n[quant]\ngroup_size = 128\nmode = "exact"\n')
    job = resolve(Job, recipe=recipe, overrides=_parse(["--quant.group-size", "64"]))
    assert job.name == "from-file"  # file beats default
    assert job.quant.group_size == 64  # flag beats file
    assert job.quant.mode is Mode.EXACT  # file value kept where no flag
    assert job.verify is True  # default where neither


def test_recipe_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[quant]\ngroup = 3\n")
    with pytest.raises(ConfigError, match=r"invalid Job in .*bad.toml:\n  quant.group: unknown key"):
        resolve(Job, recipe=bad)
    broken = tmp_path / "broken.toml"
    broken.write_text("name = \n")
    with pytest.raises(ConfigError, match="is not valid TOML"):
        resolve(Job, recipe=broken)
    with pytest.raises(ConfigError, match="config file not found"):
        resolve(Job, recipe=tmp_path / "missing.toml")


def test_toml_round_trip(tmp_path: Path) -> None:
    job = Job(name='a "b"', limit=64, mean=(0.1, 0.2, 0.3), quant=Quant(group_size=64, skip=("x", "y")))
    path = tmp_path / "job.toml"
    path.write_text(to_toml(job))
    assert resolve(Job, recipe=path) == job
    assert to_dict(job)["quant"] == {"group_size": 64, "mode": "fast", "skip": ["x", "y"]}


def test_optional_accepts_none_from_flags() -> None:
    assert resolve(Job, overrides={"limit": "none"}).limit is None
