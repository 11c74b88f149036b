"""mobile_mllm.device.native: where builds go, how build.sh's failures surface, how each ABI is run here.

build.sh is replaced by small scripts with a known exit code, so these tests build nothing; the real
builds and runs are in tests/android_app/.
"""

from __future__ import annotations

import platform
import stat
from pathlib import Path

import pytest

from mobile_mllm.device import native
from mobile_mllm.device.loopback import LoopbackConfig, LoopbackDevice
from mobile_mllm.device.native import RunnerKind
from mobile_mllm.errors import ConfigError, MissingDependencyError, RunnerError


def _fake_runner_dir(tmp_path: Path, body: str) -> Path:
    folder = tmp_path / "runner"
    folder.mkdir()
    script = folder / "build.sh"
    script.write_text("#!/bin/sh\n" + body + "\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return folder


def test_device_abi_names_android_abis() -> None:
    assert native.device_abi(RunnerKind.ARM64) == "arm64-v8a"
    assert native.device_abi(RunnerKind.X86_64) == "x86_64"
    assert native.device_abi(RunnerKind.HOST) is None


def test_build_dir_is_per_abi_and_follows_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOBILE_MLLM_NATIVE_BUILD", str(tmp_path))
    arm, x86 = native.build_dir("arm64"), native.build_dir("x86_64")
    assert arm.parent == x86.parent == tmp_path
    assert arm.name.startswith("arm64-") and x86.name.startswith("x86_64-") and arm.name[6:] == x86.name[7:]


def test_build_exit_2_is_a_missing_dependency_naming_the_package(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(native, "RUNNER_DIR", _fake_runner_dir(
        tmp_path, 'echo "arm64.sh: missing Debian packages: qemu-user-static" >&2; exit 2'))
    with pytest.raises(MissingDependencyError, match="qemu-user-static"):
        native.build_runner("arm64", tmp_path / "out")


def test_a_failed_compile_is_a_runner_error_with_the_compiler_lines(tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(native, "RUNNER_DIR", _fake_runner_dir(tmp_path, 'echo "main.cpp:3: error: nope"; exit 1'))
    with pytest.raises(RunnerError, match=r"failed \(exit 1\):\nmain.cpp:3: error: nope"):
        native.build_runner("arm64", tmp_path / "out")


def test_no_source_checkout_is_a_missing_dependency(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(native, "RUNNER_DIR", tmp_path / "absent")
    with pytest.raises(MissingDependencyError, match="source checkout"):
        native.build_runner("x86_64")


def test_runner_command_emulates_arm64_only_off_arm64(monkeypatch: pytest.MonkeyPatch) -> None:
    binary = Path("/b/mobile_mllm_runner")
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    assert native.runner_command("x86_64", binary) == [str(binary)]
    assert native.runner_command("arm64", binary) == ["bash", str(native.RUNNER_DIR / "arm64.sh"), "run", str(binary)]
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    assert native.runner_command("arm64", binary) == [str(binary)]
    with pytest.raises(MissingDependencyError, match="x86_64 runner cannot run on this aarch64 host"):
        native.runner_command("x86_64", binary)


def test_loopback_config_checks_the_runner_kind() -> None:
    assert LoopbackConfig(runner="arm64").runner is RunnerKind.ARM64  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="runner must be one of host, x86_64, arm64, got 'riscv'"):
        LoopbackConfig(runner="riscv")  # type: ignore[arg-type]


def test_loopback_with_an_arm64_runner_is_an_arm64_device(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """getprop says arm64-v8a and the device's mobile-mllm-runner runs the built binary the emulated way."""
    import subprocess

    import mobile_mllm.device.loopback as loopback

    fake = tmp_path / "fake_runner"
    fake.write_text('#!/bin/sh\necho "ran with $*"\n')
    fake.chmod(0o755)
    monkeypatch.setattr(loopback, "build_runner", lambda abi: fake)
    monkeypatch.setattr(loopback, "runner_command", lambda abi, binary: ["/bin/sh", str(binary)])
    dev = LoopbackDevice(LoopbackConfig(port=0, root=str(tmp_path / "root"), runner=RunnerKind.ARM64))
    try:
        run = lambda cmd: subprocess.run(["/bin/sh", "-c", cmd], env=dev.env(), capture_output=True, text=True,  # noqa: E731
                                         cwd=dev.root, timeout=30).stdout.strip()
        assert run("getprop ro.product.cpu.abi") == "arm64-v8a"
        assert run("mobile-mllm-runner --program-dir 'a b'") == "ran with --program-dir a b"
        assert b"loopback" in dev.banner()
    finally:
        dev.close()
