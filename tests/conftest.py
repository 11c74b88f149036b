"""Shared pytest fixtures. Test tiers are markers (see pyproject): default unit, slow, integration."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def tiny_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``tiny`` preset model directory with seeded random weights, written once per test run."""
    from mobile_mllm.model.reference.init_model import init_model

    return init_model("tiny", tmp_path_factory.mktemp("tiny") / "model", seed=0).path


@pytest.fixture(scope="module")
def tiny(tiny_dir: Path):  # -> MultimodalModel
    """The tiny model with a 512-position KV cache (shared by a module's tests; sessions overwrite the cache)."""
    from mobile_mllm.model import load_model

    return load_model(tiny_dir, max_context_len=512)



@pytest.fixture(scope="session")
def tiny_program(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model exported once per run with the fp32 recipe (fastest to lower), unverified: device and eval tests run it
    (the eval tests compare it with the eager model themselves)."""
    from mobile_mllm.export.program import ExportJob, TargetConfig, export_program
    from mobile_mllm.quant.recipe import preset

    job = ExportJob(
        model=str(tiny_dir), output=str(tmp_path_factory.mktemp("tiny_program") / "tiny_fp32"), quant=preset("fp32"),
        target=TargetConfig(max_context_len=384, prefill_chunk=32, tile_batch=4), verify=False,
    )
    return Path(export_program(job).output)


@pytest.fixture(scope="session")
def smolvlm_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random SmolVLM checkpoint directory in the HF layout (seed 1), written once per run: the SmolVLM
    export tests and the native-runner tests use it (the family's parity tests have their own, per model type)."""
    from mobile_mllm.model.smolvlm.synthetic import write_random_smolvlm

    return write_random_smolvlm(tmp_path_factory.mktemp("smolvlm") / "model", seed=1)


@pytest.fixture(scope="session")
def smolvlm_program(smolvlm_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``smolvlm_model_dir`` exported once per run with the fp32 recipe, unverified (the export tests verify their
    own): the native runner is compared with the host runner on it."""
    from mobile_mllm.export.program import ExportJob, TargetConfig, export_program
    from mobile_mllm.quant.recipe import preset

    job = ExportJob(
        model=str(smolvlm_model_dir), output=str(tmp_path_factory.mktemp("smolvlm_program") / "smolvlm_fp32"),
        quant=preset("fp32"), target=TargetConfig(max_context_len=320, prefill_chunk=32, tile_batch=4), verify=False,
    )
    return Path(export_program(job).output)


@pytest.fixture(scope="session")
def adb_user_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private ``ANDROID_USER_HOME`` holding a fresh ADB key pair (tests never touch the user's ~/.android)."""
    import os

    from mobile_mllm.device.adb import load_signer

    home = tmp_path_factory.mktemp("android_user_home")
    old = os.environ.get("ANDROID_USER_HOME")
    os.environ["ANDROID_USER_HOME"] = str(home)
    load_signer()
    yield home
    if old is None:
        os.environ.pop("ANDROID_USER_HOME", None)
    else:
        os.environ["ANDROID_USER_HOME"] = old


# The tiny model's programs per quantization recipe, exported (and verified) at most once per run and
# shared by the export tests and the native-runner tests: exporting takes a minute or two on two busy
# cores. Small static sizes keep lowering and memory planning quick.
MAX_CONTEXT_LEN = 192
PREFILL_CHUNK = 32
TILE_BATCH = 4


@pytest.fixture(scope="session")
def export_sizes() -> tuple[int, int, int]:
    """(max_context_len, prefill_chunk, tile_batch) the shared programs are exported with."""
    return MAX_CONTEXT_LEN, PREFILL_CHUNK, TILE_BATCH


@pytest.fixture(scope="session")
def exported(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], object]:
    """``exported(recipe) -> ExportResult`` of the tiny model, verified; each recipe exported at most once."""
    from mobile_mllm.export.program import ExportJob, TargetConfig, export_program
    from mobile_mllm.quant.recipe import preset
    from mobile_mllm.runtime.parity import verify_export

    cache: dict[str, object] = {}

    def get(recipe: str) -> object:
        if recipe not in cache:
            job = ExportJob(
                model=str(tiny_dir),
                output=str(tmp_path_factory.mktemp(f"export_{recipe}")),
                quant=preset(recipe),
                target=TargetConfig(max_context_len=MAX_CONTEXT_LEN, prefill_chunk=PREFILL_CHUNK, tile_batch=TILE_BATCH),
                verify_tokens=8,
            )
            cache[recipe] = export_program(job, verifier=verify_export)
        return cache[recipe]

    return get


@pytest.fixture(scope="module")
def adb(tmp_path_factory: pytest.TempPathFactory) -> Iterator:
    """``adb(*args) -> CompletedProcess``: Debian's adb client on a private server (free port, own HOME, so the
    user's and other sessions' servers are untouched); its key is ``adb.home / ".android" / "adbkey.pub"``."""
    import os
    import socket
    import subprocess

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    home = tmp_path_factory.mktemp("adb_home")
    env = {**os.environ, "HOME": str(home), "ANDROID_ADB_SERVER_PORT": str(port)}
    env.pop("ANDROID_USER_HOME", None)

    def run(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["adb", *args], capture_output=True, text=True, env=env, timeout=timeout)

    run.home = home  # type: ignore[attr-defined]
    run.env = env  # type: ignore[attr-defined]
    assert run("start-server").returncode == 0
    yield run
    run("kill-server")
