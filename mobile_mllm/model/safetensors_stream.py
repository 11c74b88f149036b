"""Write a ``.safetensors`` file one tensor at a time, so a 6 GB checkpoint needs one tensor of RAM.

``safetensors.torch.save_file`` wants every tensor in memory at once and may copy them again
while serialising; for random-weight benchmark checkpoints we know every name, shape and
dtype up front, so we write the header first and then stream each tensor as it is produced.
The file format (8-byte little-endian header length, JSON header, raw little-endian data) is
the public safetensors format; files are read back with the ``safetensors`` library.
The file appears under its final name only when complete.
"""

from __future__ import annotations

import json
import logging
import os
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

__all__ = ["TensorSpec", "write_safetensors"]

_DTYPE_NAMES: dict[torch.dtype, str] = {
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.float64: "F64",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.int8: "I8",
    torch.uint8: "U8",
    torch.bool: "BOOL",
}


@dataclass(frozen=True)
class TensorSpec:
    """Name, shape and dtype of one tensor to be written."""

    name: str
    shape: tuple[int, ...]
    dtype: torch.dtype

    @property
    def num_bytes(self) -> int:
        """Size of the tensor's data in bytes."""
        count = 1
        for dim in self.shape:
            count *= dim
        return count * torch.empty((), dtype=self.dtype).element_size()


def write_safetensors(
    path: Path,
    specs: Sequence[TensorSpec],
    produce: Callable[[TensorSpec], torch.Tensor],
    *,
    metadata: Mapping[str, str] | None = None,
) -> int:
    """Write ``specs`` to ``path``, calling ``produce(spec)`` for each tensor in order.

    Args:
        path (Path): the output file (written as ``path.tmp``, renamed when complete).
        specs (Sequence[TensorSpec]): every tensor, in file order.
        produce (Callable[[TensorSpec], torch.Tensor]): returns the tensor for a spec; it must
            match the spec's shape and dtype (checked).
        metadata (Mapping[str, str] | None): the header's ``__metadata__``. Default None.

    Returns:
        int: bytes written.

    Raises:
        ValueError: if a produced tensor does not match its spec (a bug in the caller).
    """
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    offset = 0
    for spec in specs:
        end = offset + spec.num_bytes
        header[spec.name] = {"dtype": _DTYPE_NAMES[spec.dtype], "shape": list(spec.shape), "data_offsets": [offset, end]}
        offset = end
    blob = json.dumps(header, separators=(",", ":")).encode("utf-8")
    blob += b" " * (-len(blob) % 8)  # data starts 8-byte aligned, as the reference writer does
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as fh:
        fh.write(struct.pack("<Q", len(blob)))
        fh.write(blob)
        for spec in specs:
            tensor = produce(spec)
            if tuple(tensor.shape) != spec.shape or tensor.dtype != spec.dtype:
                raise ValueError(
                    f"{spec.name}: produced {tuple(tensor.shape)} {tensor.dtype}, expected {spec.shape} {spec.dtype}"
                )
            data = tensor.detach().contiguous().cpu().reshape(-1).view(torch.uint8).numpy()
            fh.write(memoryview(data))
    os.replace(tmp, path)
    total = 8 + len(blob) + offset
    logger.debug("wrote %s: %d tensors, %d bytes", path, len(specs), total)
    return total
