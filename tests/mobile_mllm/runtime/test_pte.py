"""PteMethods refuses programs and calls that break the contract (a toy program, exported in seconds)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from mobile_mllm.errors import ContractError
from mobile_mllm.runtime.pte import PteMethods, load_executorch_kernels, open_program_dir


class _Double(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2


@pytest.fixture(scope="module")
def toy_program(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid .pte with one method ``forward`` and no contract method."""
    from executorch.exir import to_edge

    ep = torch.export.export(_Double(), (torch.ones(2),))
    path = tmp_path_factory.mktemp("toy") / "toy.pte"
    path.write_bytes(to_edge(ep).to_executorch().buffer)
    return path


def test_kernels_register_the_llm_custom_ops() -> None:
    load_executorch_kernels()
    assert torch.ops.llama.update_cache.default is not None
    assert torch.ops.llama.custom_sdpa.default is not None


def test_program_without_contract_methods_lists_them(toy_program: Path) -> None:
    # The toy program really runs (so the failure below is about the contract, not the file).
    program = load_executorch_kernels().load_program(str(toy_program))
    assert program.load_method("forward").execute([torch.ones(2)])[0].tolist() == [2.0, 2.0]
    with pytest.raises(ContractError, match="lacks method\\(s\\) token_embedding, text_decoder, get_max_seq_len"):
        PteMethods(toy_program, tile_batch=4)


def test_missing_program_file(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="program not found"):
        PteMethods(tmp_path / "model.pte", tile_batch=4)


def test_directory_without_manifest_is_not_a_program_dir(tmp_path: Path) -> None:
    with pytest.raises(ContractError, match="manifest.json not found"):
        open_program_dir(tmp_path)


def test_corrupt_program_is_a_contract_error_with_the_runtime_diagnosis(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = tmp_path / "model.pte"
    bad.write_bytes(b"not a program")
    with caplog.at_level("DEBUG", logger="mobile_mllm.runtime.pte"):
        with pytest.raises(ContractError, match=r"cannot load program .*model.pte.*corrupt, truncated.*re-export"):
            PteMethods(bad, tile_batch=4)
    # What ExecuTorch's C++ loader printed on fd 2 is surfaced as a warning, not lost.
    assert any(r.levelname == "WARNING" and "file_size_ 13" in r.getMessage() for r in caplog.records), [r.getMessage()[:80] for r in caplog.records]
