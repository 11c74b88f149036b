"""The arm64 native runner under qemu-aarch64-static against the host runner and mobile_mllm.vision.

``build.sh arm64`` cross-builds the runner with Debian's aarch64 g++ against the executorch aarch64
wheel; ``arm64.sh run`` runs it under qemu with an arm64 sysroot, so these tests execute ExecuTorch's
real arm64 kernels (XNNPACK's NEON/dot-product/i8mm paths). The references are independent of the
runner: ``python -m mobile_mllm.device.runner`` (the Python runtime on x86-64, behind the same
contract) and ``mobile_mllm.vision.preprocess``.

One ``--requests`` invocation per program keeps the emulated cost to one program load. Answers of
fp32 programs must be equal one by one. Answers of the 8da4w (w4) program are compared with a
quota: on an arm64 CPU with dot products XNNPACK runs 8da4w linears with KleidiAI's kernels, whose
per-row int8 activation quantization rounds differently from the x86-64 kernels (measured on the
tiny w4 model: first-step logits differ by ~1% of their range, and 1 of 11 answers differs after a
few tokens); with ``MOBILE_MLLM_QEMU_CPU=cortex-a72`` (no dot products) the logits equal the x86-64
runner's to 1e-7 (bench/RESULTS.md).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
RUNNER = REPO / "android_app" / "runner"
PLAN = ("num_prompt_tokens", "num_image_tokens", "num_tiles", "grid", "reduced_by_budget", "error_type")


@pytest.fixture(scope="module")
def images(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The demo image and PNGs of several sizes and modes (wide, one pixel wide, tall, RGBA, gray)."""
    folder = tmp_path_factory.mktemp("arm64_images")
    rng = np.random.default_rng(7)
    paths = [REPO / "demo" / "sample.png"]
    for (w, h), mode in [((500, 102), "RGB"), ((1, 50), "RGB"), ((300, 700), "RGB"), ((90, 60), "RGBA"),
                         ((33, 200), "L")]:
        channels = {"RGB": 3, "RGBA": 4, "L": 1}[mode]
        pixels = rng.integers(0, 256, (h, w, channels), dtype=np.uint8)
        path = folder / f"{mode}_{w}x{h}.png"
        Image.fromarray(pixels.squeeze(-1) if channels == 1 else pixels, mode).save(path)
        paths.append(path)
    return paths


def _records(stdout: str) -> list[dict]:
    return [json.loads(line.split("PyTorchObserver ", 1)[1]) for line in stdout.splitlines() if "PyTorchObserver " in line]


def _batch_both(arm64_runner: list[str], program: Path, reqs: list[dict], tmp_path: Path, *,
                max_new_tokens: int) -> tuple[list[dict], list[dict]]:
    """The host runner's (x86-64) and the arm64 runner's records for one --requests file (one program load under qemu)."""
    import io

    from mobile_mllm.device.runner import main as host_main

    path = tmp_path / "requests.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in reqs))
    args = ["--program-dir", str(program), "--requests", str(path), "--max-new-tokens", str(max_new_tokens)]
    out = io.StringIO()
    assert host_main(args, out=out) == 0
    proc = subprocess.run([*arm64_runner, *args], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return _records(out.getvalue()), _records(proc.stdout)


def _assert_tiles_equal_python(arm64_runner: list[str], manifest: Path, images: list[Path], tmp_path: Path) -> None:
    """--preprocess under qemu: grids and float32 tiles equal ``preprocess``'s under the manifest's vision settings."""
    from mobile_mllm.config import from_dict
    from mobile_mllm.vision import preprocess
    from mobile_mllm.vision.config import VisionConfig

    vision = from_dict(VisionConfig, json.loads(manifest.read_text())["vision"], source="manifest")
    for image in images:
        out = tmp_path / "tiles.bin"
        proc = subprocess.run([*arm64_runner, "--preprocess", str(manifest), "--image", str(image), "--dump-tiles",
                               str(out)], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-2000:]
        want = preprocess(image, vision)
        assert json.loads(proc.stdout)["grid"] == [want.grid.cols, want.grid.rows], image.name
        got = np.fromfile(out, dtype=np.float32)
        assert got.size == want.tiles.numel(), image.name
        assert np.array_equal(got.reshape(want.tiles.shape), want.tiles.numpy()), image.name


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["fp32", "w4"])
def test_arm64_answers_equal_the_host_runner(arm64_runner: list[str], tiny_program: Path, exported, recipe: str,
                                             images: list[Path], tmp_path: Path) -> None:
    program = tiny_program if recipe == "fp32" else Path(exported("w4").output)
    reqs = [{"id": f"{i}", "image": str(p), "prompt": "What colour is the star?"} for i, p in enumerate(images)]
    reqs += [{"id": "text", "image": None, "prompt": "Say something about shapes."},
             {"id": "missing", "image": str(tmp_path / "missing.png"), "prompt": "what?"}]
    host, arm = _batch_both(arm64_runner, program, reqs, tmp_path, max_new_tokens=10)
    assert [r["id"] for r in arm] == [r["id"] for r in reqs]
    assert [{k: r.get(k) for k in PLAN} for r in arm] == [{k: r.get(k) for k in PLAN} for r in host]
    assert arm[-1]["error_type"] == "ImageError"
    answers = [(a.get("text"), a.get("stop_reason"), h.get("text"), h.get("stop_reason")) for a, h in zip(arm, host)]
    same = [a[:2] == a[2:] for a in answers]
    if recipe == "fp32":
        assert all(same), answers
    else:  # module docstring: another activation quantization on arm64, so a quota (measured 10 of 11)
        assert sum(same) >= 0.6 * len(same), answers
    assert arm[0]["extra"].get("runner", "").endswith("arm64")  # it really was the arm64 build


@pytest.mark.slow
def test_arm64_tiles_equal_python(arm64_runner: list[str], tiny_program: Path, images: list[Path],
                                  tmp_path: Path) -> None:
    _assert_tiles_equal_python(arm64_runner, tiny_program / "manifest.json", images, tmp_path)


@pytest.mark.slow
def test_arm64_smolvlm_tiles_and_answers_equal_the_host(arm64_runner: list[str], smolvlm_program: Path,
                                                        images: list[Path], tmp_path: Path) -> None:
    """SmolVLM under qemu: the Lanczos tiles (libm's sin on arm64) bit for bit, fp32 answers and a follow-up as the host's."""
    _assert_tiles_equal_python(arm64_runner, smolvlm_program / "manifest.json", images[:3], tmp_path)
    reqs = [{"id": "image", "image": str(images[1]), "prompt": "What is in the picture?"},
            {"id": "more", "image": None, "prompt": "And then?", "follow_up": True}]
    host, arm = _batch_both(arm64_runner, smolvlm_program, reqs, tmp_path, max_new_tokens=8)
    keys = (*PLAN, "num_cached_tokens", "text", "stop_reason")
    assert [{k: r.get(k) for k in keys} for r in arm] == [{k: r.get(k) for k in keys} for r in host]
    assert arm[1]["num_cached_tokens"] > 0  # the follow-up continued the conversation


@pytest.mark.slow
def test_arm64_binary_is_an_aarch64_executable_and_keeps_exit_codes(arm64_runner: list[str], tmp_path: Path) -> None:
    binary = Path(arm64_runner[-1])
    header = binary.read_bytes()[:20]
    assert header[:4] == b"\x7fELF" and int.from_bytes(header[18:20], "little") == 183  # EM_AARCH64
    bad = subprocess.run([*arm64_runner, "--no-such-flag"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2  # RUNNER.md: bad arguments, through qemu unchanged
    missing = subprocess.run([*arm64_runner, "--program-dir", str(tmp_path), "--prompt", "hi"], capture_output=True,
                             text=True, timeout=120)
    assert missing.returncode in (1, 6) and missing.stderr.strip()


def test_missing_pieces_exit_2_with_the_package_to_install(tmp_path: Path) -> None:
    """No sysroot, no qemu: build.sh / arm64.sh say what to install and exit 2 (nothing built, nothing faked)."""
    env = {**os.environ, "MOBILE_MLLM_ARM64_SYSROOT": str(tmp_path / "nowhere")}
    proc = subprocess.run(["bash", str(RUNNER / "build.sh"), "arm64", str(tmp_path / "out")], capture_output=True,
                          text=True, timeout=60, env=env)
    assert proc.returncode == 2
    assert "nowhere lacks lib/ld-linux-aarch64.so.1" in proc.stderr and "g++-aarch64-linux-gnu" in proc.stderr
    assert not (tmp_path / "out" / "mobile_mllm_runner").exists()
    env = {**os.environ, "QEMU_AARCH64": str(tmp_path / "no-qemu")}
    proc = subprocess.run(["bash", str(RUNNER / "arm64.sh"), "run", "/bin/true"], capture_output=True, text=True,
                          timeout=60, env=env)
    assert proc.returncode == 2 and "apt-get install qemu-user-static" in proc.stderr


def test_android_arm64_says_what_is_missing(tmp_path: Path) -> None:
    """The NDK path is written but cannot run here: each missing piece is named, exit 2, nothing built."""
    def build(**env: str) -> subprocess.CompletedProcess[str]:
        clean = {k: v for k, v in os.environ.items() if k not in ("ANDROID_NDK", "EXECUTORCH_ANDROID_PREFIX")}
        return subprocess.run(["bash", str(RUNNER / "build.sh"), "android-arm64", str(tmp_path / "out")],
                              capture_output=True, text=True, timeout=60, env={**clean, **env})

    no_ndk = build()
    assert no_ndk.returncode == 2 and "set ANDROID_NDK" in no_ndk.stderr
    assert build(ANDROID_NDK=str(tmp_path)).returncode == 2  # a folder that is no NDK
    ndk = tmp_path / "ndk"
    (ndk / "build" / "cmake").mkdir(parents=True)
    (ndk / "build" / "cmake" / "android.toolchain.cmake").write_text("")
    no_prefix = build(ANDROID_NDK=str(ndk))
    assert no_prefix.returncode == 2 and "EXECUTORCH_ANDROID_PREFIX" in no_prefix.stderr
    assert not (tmp_path / "out" / "mobile_mllm_runner").exists()


def test_arm64_run_passes_the_sysroot_and_a_cpu_without_sme(tmp_path: Path) -> None:
    """arm64.sh run's qemu command line: -L SYSROOT, -cpu max,sme=off unless MOBILE_MLLM_QEMU_CPU says otherwise."""
    fake_qemu = tmp_path / "qemu"
    fake_qemu.write_text('#!/bin/sh\necho "$@"\n')
    fake_qemu.chmod(0o755)
    sysroot = tmp_path / "sysroot"
    (sysroot / "lib").mkdir(parents=True)
    for name in ("ld-linux-aarch64.so.1", "libc.so.6", "libm.so.6", "libstdc++.so.6", "libgcc_s.so.1"):
        (sysroot / "lib" / name).write_bytes(b"")
    env = {**os.environ, "QEMU_AARCH64": str(fake_qemu), "MOBILE_MLLM_ARM64_SYSROOT": str(sysroot)}
    env.pop("MOBILE_MLLM_QEMU_CPU", None)

    def run(**extra: str) -> str:
        proc = subprocess.run(["bash", str(RUNNER / "arm64.sh"), "run", "/b/runner", "--x", "a b"], capture_output=True,
                              text=True, timeout=60, env={**env, **extra})
        assert proc.returncode == 0, proc.stderr
        return proc.stdout.strip()

    assert run() == f"-L {sysroot} -cpu max,sme=off /b/runner --x a b"
    assert run(MOBILE_MLLM_QEMU_CPU="cortex-a72") == f"-L {sysroot} -cpu cortex-a72 /b/runner --x a b"
