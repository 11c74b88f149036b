"""``mobile-mllm grid`` run as a real command in a subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

# (width, height, max_side) rows of grid_cases.json: the paper's examples and the phone screenshot
ROWS = [(w, h, k) for w, h in ((380, 76), (500, 102), (1080, 2400)) for k in (3, 4)]


@pytest.fixture(scope="module")
def grid_cases(repo_root: Path) -> dict[tuple[int, int, int], dict]:
    """grid_cases.json keyed by (width, height, max_side): shared/ when present, else the copy."""
    shared = repo_root.parent / "shared" / "testdata" / "grid_cases.json"
    path = shared if shared.is_file() else repo_root / "tests" / "assets" / "grid_cases.json"
    return {(r["width"], r["height"], r["max_side"]): r for r in json.loads(path.read_text())}


def _grid(*args: str, generic: bool = True) -> subprocess.CompletedProcess[str]:
    """``grid`` with grid_cases.json's tile geometry (384-px tiles, 196 tokens) over the built-in model's settings."""
    flags = ["--tile-size", "384", "--tokens-per-tile", "196"] if generic else []
    return subprocess.run(
        [sys.executable, "-m", "mobile_mllm.cli", "grid", *args, *flags], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("key", ROWS, ids=[f"{w}x{h}-side{k}" for w, h, k in ROWS])
def test_grid_json_matches_grid_cases(key: tuple[int, int, int], grid_cases: dict) -> None:
    row = grid_cases[key]
    size, k = f"{row['width']}x{row['height']}", str(row["max_side"])
    for policy, bound in (("relaxed", ["--max-side", k]), ("llava_next", ["--max-side", k]), ("internvl", ["--max-tiles", str(int(k) ** 2)])):
        proc = _grid(size, "--policy", policy, *bound, "--json")
        assert proc.returncode == 0, proc.stderr
        out = json.loads(proc.stdout)
        m, n = row[policy]
        assert out["grid"] == [m, n], (policy, out)
        thumb = 1 if m * n > 1 else 0
        assert out["tiles"] == m * n + thumb
        assert out["canvas"] == [384 * m, 384 * n]
        assert out["image_tokens"] == (m * n + thumb) * 196


def test_grid_reads_an_image_file_and_applies_token_budget(tmp_path: Path) -> None:
    path = tmp_path / "shot.png"
    Image.new("RGB", (1080, 2400), (1, 2, 3)).save(path)
    out = json.loads(_grid(str(path), "--max-side", "4", "--json").stdout)
    assert (out["grid"], out["tiles"], out["image_tokens"]) == ([2, 4], 9, 1764)
    budget = json.loads(_grid(str(path), "--max-side", "4", "--token-budget", "1000", "--json").stdout)
    assert budget["grid"] == [1, 3] and budget["reduced_by_budget"] is True and budget["image_tokens"] == 784


def test_grid_alpha_and_text_output() -> None:
    proc = _grid("100x100", "--alpha", "0")
    assert proc.returncode == 0 and "grid: [3, 3]" in proc.stdout


@pytest.mark.parametrize(
    ("arg", "code", "message"),
    [
        ("10xfoo", 2, "bad image size '10xfoo'"),
        ("nope.jpg", 3, "image file not found: nope.jpg"),
    ],
)
def test_grid_bad_input_exits_non_zero_with_message(arg: str, code: int, message: str) -> None:
    proc = _grid(arg, "--json")
    assert proc.returncode == code
    assert message in proc.stderr and proc.stdout == ""


def test_grid_unreadable_image_file(tmp_path: Path) -> None:
    path = tmp_path / "fake.png"
    path.write_text("hello")
    proc = _grid(str(path))
    assert proc.returncode == 3 and "not a readable image file" in proc.stderr


def test_grid_shows_what_the_model_does(repo_root: Path, tmp_path: Path) -> None:
    # The newcomer's case: `grid demo/sample.png` said 1x1 of 384-px tiles while `run` on the same image
    # used the built-in model's 96-px tiles (3x2, 36 tokens per tile). Default MODEL = the built-in one.
    sample = str(repo_root / "demo" / "sample.png")
    out = json.loads(_grid(sample, "--json", generic=False).stdout)
    assert out["model"] == "builtin:synth-small"
    assert (out["grid"], out["tiles"], out["image_tokens"], out["canvas"]) == ([3, 2], 7, 7 * 36, [288, 192])
    # A model directory given as MODEL: its preprocessor_config.json decides (here 64-px tiles, max side 2).
    from mobile_mllm.model.reference.init_model import init_model

    model = init_model("tiny", tmp_path / "tiny", seed=0).path
    cfg = json.loads((model / "preprocessor_config.json").read_text())
    cfg["max_side"] = 2
    (model / "preprocessor_config.json").write_text(json.dumps(cfg))
    out = json.loads(_grid(str(model), "1000x500", "--json", generic=False).stdout)
    assert out["model"] == str(model) and out["grid"] == [2, 1] and out["canvas"] == [2 * cfg["tile_size"], cfg["tile_size"]]
