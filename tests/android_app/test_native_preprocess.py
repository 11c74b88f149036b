"""The native runner's grid policies, tiling and normalisation against mobile_mllm.vision.

Through the runner's program-free debug mode (``--preprocess MANIFEST --image|--image-size``), so
no export is needed: the grids of ``shared/testdata/grid_cases.json`` (the vectors the Kotlin code
is tested on too; the smolvlm policy, which has no column there, against ``mobile_mllm.vision.grid``
on the same sizes), plans of seeded random sizes with and without token budgets against
``plan_tiles``, PIL's ``Image.resize`` itself (``--resize``: every filter, up and down, many sizes),
and the tile pixels of PNG images (RGB, RGBA, gray, gray+alpha, palette with and without
transparency, 16-bit gray, EXIF-rotated) under every policy, resample filter and thumbnail
position, which must equal ``preprocess``'s float32 tiles bit for bit. JPEG is the exception:
stb_image's decoder and PIL's libjpeg-turbo round the IDCT and colour conversion differently, so
JPEG tiles are compared with a tolerance (measured: at most 4 of 255 levels, on ~1-12% of values).
"""

from __future__ import annotations

import dataclasses
import json
import random
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.slow  # needs the runner built (conftest.py)

REPO = Path(__file__).resolve().parents[2]


def _manifest(vision: object, path: Path) -> Path:
    """A manifest.json holding only what --preprocess reads around ``vision``."""
    from mobile_mllm.config import to_dict

    path.write_text(json.dumps({
        "format": "mobile-mllm-manifest", "version": 2, "vision": to_dict(vision), "prompt": {},
        "eos_ids": [0], "tile_batch": 4, "prefill_chunk": 32,
    }))
    return path


def _plans(runner_bin: Path, manifest: Path, sizes: list[tuple[int, int]], budget: int | None = None) -> list[dict]:
    cmd = [str(runner_bin), "--preprocess", str(manifest), "--image-size", ",".join(f"{w}x{h}" for w, h in sizes)]
    if budget is not None:
        cmd += ["--token-budget", str(budget)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [json.loads(line) for line in proc.stdout.splitlines()]


def _grid_cases() -> list[dict]:
    shared = REPO.parent / "shared" / "testdata" / "grid_cases.json"
    path = shared if shared.is_file() else REPO / "tests" / "assets" / "grid_cases.json"
    return json.loads(path.read_text())


@pytest.mark.parametrize("policy", ["relaxed", "llava_next", "internvl"])
def test_grid_cases(runner_bin: Path, tmp_path: Path, policy: str) -> None:
    from mobile_mllm.vision.config import VisionConfig

    cases = _grid_cases()
    for side in sorted({c["max_side"] for c in cases}):
        rows = [c for c in cases if c["max_side"] == side]
        limits = {"max_side": None, "max_tiles": side * side} if policy == "internvl" else {"max_side": side}
        vision = VisionConfig(policy=policy, tile_size=rows[0]["base"], **limits)
        plans = _plans(runner_bin, _manifest(vision, tmp_path / "m.json"), [(c["width"], c["height"]) for c in rows])
        assert [p["grid"] for p in plans] == [c[policy] for c in rows]


def test_smolvlm_grids_on_grid_cases_sizes(runner_bin: Path, tmp_path: Path) -> None:
    """The smolvlm policy (longest edge, then whole tiles; lowered by whole tiles to fit the bounds) as grid.py picks it."""
    from mobile_mllm.vision.config import VisionConfig
    from mobile_mllm.vision.grid import Size, select_grid

    cases = _grid_cases()
    sizes = [(c["width"], c["height"]) for c in cases] + [(1, 1), (1, 9000), (9000, 1), (100, 8000), (4097, 4095)]
    configs = [  # SmolVLM-256M's (512-px tiles, 2048 = 4 tiles), bounds that cut it, an edge off the tile grid, the 4096 cap
        VisionConfig(policy="smolvlm", tile_size=512, max_side=4, longest_edge_px=2048),
        VisionConfig(policy="smolvlm", tile_size=512, max_side=None, max_tiles=6, longest_edge_px=2048),
        VisionConfig(policy="smolvlm", tile_size=384, max_side=3),
        VisionConfig(policy="smolvlm", tile_size=64, max_side=5, longest_edge_px=300),
        VisionConfig(policy="smolvlm", tile_size=512, max_side=10, longest_edge_px=5000),
    ]
    for i, cfg in enumerate(configs):
        plans = _plans(runner_bin, _manifest(cfg, tmp_path / f"m{i}.json"), sizes)
        want = [select_grid(Size(w, h), cfg).grid for w, h in sizes]
        assert [p["grid"] for p in plans] == [[g.cols, g.rows] for g in want], cfg
        assert len({tuple(p["grid"]) for p in plans}) > 3, cfg  # the sizes reach several grids


def test_resize_equals_pil(runner_bin: Path, tmp_path: Path) -> None:
    """PIL's convolution resize (lanczos: support 3, the sinc window) and nearest, bit for bit, up and down."""
    rng = np.random.default_rng(1)
    for w, h in [(37, 23), (200, 90), (1, 50), (640, 480), (64, 64)]:
        path = tmp_path / f"in_{w}x{h}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        sizes = [(1, 1), (3 * w, h), (max(1, w // 3), 2 * h), (17, 911), (511, 3), (w, max(1, h // 7)), (1000, 1000),
                 (w + 1, h - 1 or 1)]
        for name in ("lanczos", "bicubic", "bilinear", "nearest"):
            out = tmp_path / "pixels.bin"
            proc = subprocess.run([str(runner_bin), "--resize", str(path), "--to", ",".join(f"{a}x{b}" for a, b in sizes),
                                   "--filter", name, "--dump-pixels", str(out)], capture_output=True, text=True, timeout=60)
            assert proc.returncode == 0, proc.stderr[-2000:]
            with Image.open(path) as img:
                want = [np.asarray(img.resize(s, Image.Resampling[name.upper()])).ravel() for s in sizes]
            assert np.array_equal(np.fromfile(out, dtype=np.uint8), np.concatenate(want)), (w, h, name)


def test_plans_equal_python(runner_bin: Path, tmp_path: Path) -> None:
    from mobile_mllm.errors import ContextOverflowError
    from mobile_mllm.vision.config import VisionConfig
    from mobile_mllm.vision.grid import Size
    from mobile_mllm.vision.processor import plan_tiles

    rng = random.Random(0)
    sizes = [(1, 5000), (5000, 1), (1, 1), (384, 384), (1080, 2400)] + [
        (rng.randint(1, 4000), rng.randint(1, 4000)) for _ in range(60)]
    configs = [
        VisionConfig(), VisionConfig(policy="llava_next", max_side=4, thumbnail="first"),
        VisionConfig(policy="internvl", max_side=None, max_tiles=12, thumbnail="none"),
        VisionConfig(max_side=3, max_tiles=5, alpha=0.3, thumbnail_for_single=True, tile_size=224, tokens_per_tile=64),
        VisionConfig(policy="smolvlm", tile_size=512, max_side=4, longest_edge_px=2048, tokens_per_tile=64),
        VisionConfig(policy="smolvlm", tile_size=64, max_side=None, max_tiles=8, thumbnail="first", tokens_per_tile=16),
    ]
    for i, cfg in enumerate(configs):
        manifest = _manifest(cfg, tmp_path / f"m{i}.json")
        for budget in (None, 3 * cfg.tokens_per_tile, 5 * cfg.tokens_per_tile):
            got = _plans(runner_bin, manifest, sizes, budget)
            for (w, h), plan in zip(sizes, got):
                want = plan_tiles(Size(w, h), cfg, token_budget=budget)
                assert plan == {
                    "image": [w, h], "grid": [want.grid.cols, want.grid.rows],
                    "preferred_grid": [want.preferred_grid.cols, want.preferred_grid.rows], "tiles": want.num_tiles,
                    "thumbnail_index": want.thumbnail_index, "canvas": [want.canvas.width, want.canvas.height],
                    "resized": [want.layout.resized.width, want.layout.resized.height],
                    "image_tokens": want.image_tokens,
                }, (cfg, budget, w, h)
    with pytest.raises(ContextOverflowError):  # the Python side refuses a budget below one tile ...
        plan_tiles(Size(10, 10), VisionConfig(), token_budget=10)
    proc = subprocess.run([str(runner_bin), "--preprocess", str(_manifest(VisionConfig(), tmp_path / "d.json")),
                           "--image-size", "10x10", "--token-budget", "10"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 5 and "token budget 10" in proc.stderr  # ... and so does the runner (exit code 5)


# ----------------------------------------------------------------------------- pixels


def _noise(rng: np.random.Generator, w: int, h: int) -> np.ndarray:
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def _gradient(w: int, h: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([(x * 7 + y * 3) % 256, (x * 5 + y * 11 + 40) % 256, (x * y + 13) % 256], -1).astype(np.uint8)


def _images(folder: Path) -> tuple[list[Path], list[Path]]:
    """(lossless images, JPEG images) covering sizes, modes and EXIF orientations."""
    rng = np.random.default_rng(0)
    lossless, jpeg = [], []
    for w, h in [(37, 23), (500, 102), (64, 64), (300, 700), (1, 50), (50, 1), (129, 64), (65, 200), (1080, 2400)]:
        p = folder / f"rgb_{w}x{h}.png"
        Image.fromarray(_gradient(w, h) if w * h > 100_000 else _noise(rng, w, h)).save(p)
        lossless.append(p)
    a = _noise(rng, 90, 60)
    alpha = rng.integers(0, 256, (60, 90), dtype=np.uint8)
    alpha[:10], alpha[10:20] = 0, 255
    modes = {
        "rgba.png": Image.fromarray(np.dstack([a, alpha]), "RGBA"),
        "gray.png": Image.fromarray(a[..., 0], "L"),
        "la.png": Image.fromarray(np.dstack([a[..., 0], alpha]), "LA"),
        "p.png": Image.fromarray(a).convert("P", palette=Image.Palette.ADAPTIVE),
        "g16.png": Image.fromarray(rng.integers(0, 65536, (40, 70)).astype(np.uint16)),
    }
    for name, img in modes.items():
        img.save(folder / name)
        lossless.append(folder / name)
    Image.fromarray(a).convert("P", palette=Image.Palette.ADAPTIVE).save(folder / "p_trns.png", transparency=3)
    lossless.append(folder / "p_trns.png")
    Image.fromarray(_gradient(200, 120)).save(folder / "rgb.jpg", quality=90)
    Image.fromarray(_gradient(200, 120)).convert("L").save(folder / "gray.jpg", quality=90)
    jpeg += [folder / "rgb.jpg", folder / "gray.jpg"]
    for orientation in (2, 3, 5, 6, 7, 8):
        exif = Image.Exif()
        exif[0x0112] = orientation
        img = Image.fromarray(_noise(rng, 80, 50))
        img.save(folder / f"exif{orientation}.png", exif=exif.tobytes())
        img.save(folder / f"exif{orientation}.jpg", exif=exif.tobytes(), quality=95)
        lossless.append(folder / f"exif{orientation}.png")
        jpeg.append(folder / f"exif{orientation}.jpg")
    return lossless, jpeg


def _configs() -> list[object]:
    from mobile_mllm.vision.config import VisionConfig

    base = VisionConfig(tile_size=64, max_side=3, tokens_per_tile=16)
    return [
        base,
        dataclasses.replace(base, resample="bilinear"),
        dataclasses.replace(base, resample="nearest"),
        dataclasses.replace(base, resample="lanczos"),
        # SmolVLM's (two lanczos resizes, the canvas squashed to the global image), with a longest edge off the tile grid
        dataclasses.replace(base, policy="smolvlm", resample="lanczos", longest_edge_px=150),
        dataclasses.replace(base, policy="smolvlm", resample="lanczos", max_side=2, thumbnail="first",
                            thumbnail_for_single=True),
        dataclasses.replace(base, policy="llava_next", thumbnail="first"),
        dataclasses.replace(base, policy="internvl", max_side=None, max_tiles=6, thumbnail="none"),
        dataclasses.replace(base, thumbnail_for_single=True, pad_color=(0, 10, 200),
                            mean=(0.48145466, 0.4578275, 0.40821073), std=(0.26862954, 0.26130258, 0.27577711)),
    ]


def _native_tiles(runner_bin: Path, manifest: Path, image: Path, out: Path) -> tuple[dict, np.ndarray]:
    proc = subprocess.run([str(runner_bin), "--preprocess", str(manifest), "--image", str(image), "--dump-tiles",
                           str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout), np.fromfile(out, dtype=np.float32)


def _tile_pairs(runner_bin: Path, tmp_path: Path, images: list[Path]):  # noqa: ANN202
    """(config, image, native tiles, preprocess's tiles) for every config and image; grids checked equal."""
    from mobile_mllm.vision import preprocess

    for i, cfg in enumerate(_configs()):
        manifest = _manifest(cfg, tmp_path / f"m{i}.json")
        for image in images:
            plan, got = _native_tiles(runner_bin, manifest, image, tmp_path / "tiles.bin")
            want = preprocess(image, cfg)
            assert plan["grid"] == [want.grid.cols, want.grid.rows], (cfg, image.name)  # EXIF sides swapped alike
            assert got.size == want.tiles.numel(), (cfg, image.name)
            yield cfg, image, got.reshape(want.tiles.shape), want.tiles.numpy()


def test_tiles_equal_python_bit_for_bit(runner_bin: Path, tmp_path: Path) -> None:
    lossless, _ = _images(tmp_path)
    for cfg, image, got, want in _tile_pairs(runner_bin, tmp_path, lossless):
        assert np.array_equal(got, want), (cfg, image.name)


def test_jpeg_tiles_within_decoder_tolerance(runner_bin: Path, tmp_path: Path) -> None:
    _, jpegs = _images(tmp_path)
    for cfg, image, got, want in _tile_pairs(runner_bin, tmp_path, jpegs):
        levels = np.abs(got - want) * np.asarray(cfg.std, dtype=np.float32)[None, :, None, None] * 255
        assert levels.max() <= 6.0, (cfg, image.name, float(levels.max()))
        assert np.mean(levels > 0.5) < 0.2, (cfg, image.name)


def test_bad_images_exit_3(runner_bin: Path, tmp_path: Path) -> None:
    from mobile_mllm.vision.config import VisionConfig

    manifest = _manifest(VisionConfig(max_pixels=1000), tmp_path / "m.json")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "text.png").write_text("not an image")
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(tmp_path / "big.png")  # 1600 px > max_pixels
    for name, words in [("missing.png", "not found"), ("empty.png", "empty"), ("text.png", "not a readable image"),
                        ("big.png", "too large")]:
        proc = subprocess.run([str(runner_bin), "--preprocess", str(manifest), "--image", str(tmp_path / name)],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 3 and words in proc.stderr, (name, proc.stderr)
