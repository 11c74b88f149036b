"""Image loading: every source type, mode conversions, EXIF, and every refusal with its message."""

from __future__ import annotations

import numpy as np
import pytest
from vision_testdata import encode, gradient, png_header_only
from PIL import Image

from mobile_mllm.errors import ImageError
from mobile_mllm.vision.grid import Size
from mobile_mllm.vision.io import load_image, read_image_size
from mobile_mllm.vision.processor import VisionConfig

CFG = VisionConfig()


def _px(img: Image.Image, xy: tuple[int, int]) -> tuple[int, ...]:
    return tuple(img.getpixel(xy))


def test_exif_orientation_rotates_jpeg(tmp_path) -> None:
    # stored 40 wide x 20 tall: left half red, right half blue. Orientation 6 = "rotate 90
    # degrees clockwise to display": upright it is 20x40 with red on top, blue below.
    arr = np.zeros((20, 40, 3), dtype=np.uint8)
    arr[:, :20] = (255, 0, 0)
    arr[:, 20:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    Image.fromarray(arr).save(path, exif=exif, quality=95)
    img = load_image(path, CFG)
    assert img.mode == "RGB" and img.size == (20, 40)
    assert read_image_size(path, CFG) == Size(20, 40)  # from the header, no decode
    top, bottom = np.asarray(img)[5, 10].astype(int), np.asarray(img)[35, 10].astype(int)
    assert top[0] > 200 and top[2] < 60, top
    assert bottom[2] > 200 and bottom[0] < 60, bottom


def test_rgba_composited_on_background() -> None:
    rgba = Image.new("RGBA", (2, 1))
    rgba.putpixel((0, 0), (255, 0, 0, 0))  # fully transparent red
    rgba.putpixel((1, 0), (255, 0, 0, 255))  # opaque red
    img = load_image(rgba, VisionConfig(background=(0, 0, 255)))
    assert _px(img, (0, 0)) == (0, 0, 255) and _px(img, (1, 0)) == (255, 0, 0)
    half = Image.new("RGBA", (1, 1), (255, 0, 0, 128))
    r, g, b = _px(load_image(half, VisionConfig(background=(0, 0, 255))), (0, 0))
    # 255 * 128/255 = 128 red, 255 * 127/255 = 127 blue (rounding of alpha blending: +-1)
    assert abs(r - 128) <= 1 and g == 0 and abs(b - 127) <= 1
    assert rgba.mode == "RGBA"  # the caller's image is untouched


def test_palette_with_transparency_from_png(tmp_path) -> None:
    pal = Image.new("P", (2, 1))
    pal.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    pal.putpixel((0, 0), 0)
    pal.putpixel((1, 0), 1)
    path = tmp_path / "pal.png"
    pal.save(path, transparency=0)
    img = load_image(path, VisionConfig(background=(1, 2, 3)))
    assert _px(img, (0, 0)) == (1, 2, 3) and _px(img, (1, 0)) == (200, 100, 50)


def test_la_grayscale_alpha() -> None:
    la = Image.new("LA", (2, 1))
    la.putpixel((0, 0), (100, 255))
    la.putpixel((1, 0), (100, 0))
    img = load_image(la, VisionConfig(background=(9, 8, 7)))
    assert _px(img, (0, 0)) == (100, 100, 100) and _px(img, (1, 0)) == (9, 8, 7)


def test_cmyk_jpeg_bytes() -> None:
    cmyk = Image.new("CMYK", (16, 16), (255, 0, 0, 0))  # pure cyan ink
    r, g, b = _px(load_image(encode(cmyk, "JPEG", quality=100), CFG), (8, 8))
    assert r < 10 and g > 245 and b > 245


def test_sixteen_bit_grayscale_is_scaled_not_clipped(tmp_path) -> None:
    arr = np.array([[0, 257 * 100, 65535]], dtype=np.uint16)
    img16 = Image.fromarray(arr)
    assert img16.mode.startswith("I;16")
    assert [_px(load_image(img16, CFG), (x, 0)) for x in range(3)] == [(0, 0, 0), (100, 100, 100), (255, 255, 255)]
    path = tmp_path / "deep.png"
    img16.save(path)
    assert _px(load_image(path, CFG), (1, 0)) == (100, 100, 100)


def test_mode_i_and_f_and_1_and_l() -> None:
    as_i = Image.fromarray(np.array([[0, 200]], dtype=np.int32), mode="I")  # max <= 255: already 0..255
    assert _px(load_image(as_i, CFG), (1, 0)) == (200, 200, 200)
    as_f = Image.fromarray(np.array([[0.0, 0.5]], dtype=np.float32), mode="F")  # max <= 1: 0..1
    assert _px(load_image(as_f, CFG), (1, 0)) == (128, 128, 128)
    bilevel = Image.new("1", (1, 1), 1)
    assert _px(load_image(bilevel, CFG), (0, 0)) == (255, 255, 255)
    gray = Image.new("L", (1, 1), 77)
    assert _px(load_image(gray, CFG), (0, 0)) == (77, 77, 77)


def test_numpy_arrays() -> None:
    rgb = gradient(5, 4)
    assert np.array_equal(np.asarray(load_image(rgb, CFG)), rgb)
    gray = rgb[:, :, 0]
    assert np.array_equal(np.asarray(load_image(gray, CFG)), np.repeat(gray[:, :, None], 3, axis=2))
    assert np.array_equal(np.asarray(load_image(gray[:, :, None], CFG))[:, :, 1], gray)
    as_float = rgb.astype(np.float32) / 255.0
    assert np.array_equal(np.asarray(load_image(as_float, CFG)), rgb)
    rgba = np.zeros((1, 1, 4), dtype=np.uint8)  # transparent black
    assert np.asarray(load_image(rgba, VisionConfig(background=(5, 6, 7))))[0, 0].tolist() == [5, 6, 7]


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.full((2, 2, 3), 1.5, dtype=np.float32), r"finite values in \[0, 1\]"),
        (np.full((2, 2, 3), np.nan, dtype=np.float64), r"finite values in \[0, 1\]"),
        (np.zeros((2, 2, 3), dtype=np.int32), "unsupported array dtype int32"),
        (np.zeros((3, 8, 8), dtype=np.uint8), r"unsupported array shape \(3, 8, 8\).*channels last"),
        (np.zeros((0, 8, 3), dtype=np.uint8), "zero size"),
    ],
)
def test_bad_arrays_raise(array: np.ndarray, message: str) -> None:
    with pytest.raises(ImageError, match=message):
        load_image(array, CFG)


def test_missing_path(tmp_path) -> None:
    with pytest.raises(ImageError, match=r"image file not found: .*nope\.png"):
        load_image(tmp_path / "nope.png", CFG)


def test_zero_size_file(tmp_path) -> None:
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageError, match=r"image file is empty \(0 bytes\): .*empty\.jpg"):
        load_image(path, CFG)
    with pytest.raises(ImageError, match="image bytes are empty"):
        load_image(b"", CFG)


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_truncated_file(tmp_path, fmt: str) -> None:
    data = encode(Image.fromarray(gradient(64, 64)), fmt)
    path = tmp_path / f"cut.{fmt.lower()}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match=rf"image file is truncated or corrupt: .*cut\.{fmt.lower()}.*re-export"):
        load_image(path, CFG)


def test_text_file_named_png(tmp_path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("definitely not a picture\n")
    with pytest.raises(ImageError, match=r"not a readable image file: .*notes\.png"):
        load_image(path, CFG)


def test_directory_is_not_an_image(tmp_path) -> None:
    with pytest.raises(ImageError, match="not a file"):
        load_image(tmp_path, CFG)


def test_decompression_bomb_header_refused(tmp_path) -> None:
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(100_000, 100_000))
    with pytest.raises(ImageError, match=r"image is too large: .*bomb\.png"):
        load_image(path, CFG)
    with pytest.raises(ImageError, match="too large"):
        read_image_size(path, CFG)


def test_max_pixels_checked_before_decoding(tmp_path) -> None:
    # the header claims 5000x5000 but there is no pixel data: decoding would report a
    # truncated file, so "too large" proves the limit is checked from the header first
    path = tmp_path / "claims.png"
    path.write_bytes(png_header_only(5000, 5000))
    small = VisionConfig(max_pixels=1_000_000)
    with pytest.raises(ImageError, match=r"5000x5000 = 25000000 pixels, over vision.max_pixels=1000000"):
        load_image(path, small)
    with pytest.raises(ImageError, match="truncated or corrupt"):
        load_image(path, CFG)


def test_max_pixels_applies_to_every_source() -> None:
    small = VisionConfig(max_pixels=99)
    for source in (gradient(10, 10), Image.new("RGB", (10, 10)), encode(Image.new("RGB", (10, 10)), "PNG")):
        with pytest.raises(ImageError, match="over vision.max_pixels=99"):
            load_image(source, small)


def test_unsupported_source_type() -> None:
    with pytest.raises(ImageError, match="unsupported image source <int>"):
        load_image(42, CFG)  # type: ignore[arg-type]


def test_docstring_examples() -> None:
    import doctest  # noqa: PLC0415

    import mobile_mllm.vision.io as module  # noqa: PLC0415

    assert doctest.testmod(module).failed == 0
