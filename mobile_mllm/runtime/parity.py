"""Does an exported program compute what the eager model computes? Per method, and greedy tokens.

:func:`verify_export` is the exporter's verifier (``export_program(verifier=...)``): it loads
the freshly written ``.pte`` through :class:`~mobile_mllm.runtime.pte.PteMethods` and compares
each method with the *quantized* eager modules that were exported (must agree to about 1e-3
relative error) and with the *float* eager model (reported, not asserted: that is the cost of
quantization); then it runs the same greedy generation through :class:`Session` on both and
counts how many of the first N tokens agree with the float model.

Deliberately not here: exporting, and any speed measurement (``bench/``).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mobile_mllm import contract
from mobile_mllm.errors import VerificationError

if TYPE_CHECKING:
    import numpy as np
    import torch

    from mobile_mllm.export.program import ExportArtifacts
    from mobile_mllm.runtime.methods import ModelMethods

logger = logging.getLogger(__name__)

__all__ = ["MethodParity", "QUANTIZED_TOLERANCE", "greedy_tokens", "relative_error", "sample_image", "verify_export"]

QUANTIZED_TOLERANCE = 2e-2
"""Largest relative error allowed between the program and the eager quantized model.

Measured on the tiny preset: ``token_embedding`` 0, ``text_decoder`` ~2e-7 (w4 and w8; int4
group scales are rounded to bf16 before export, as XNNPACK stores them), fp32 programs ~1e-7
everywhere; ``vision_encoder`` with 8da8w ~8e-3: a single 8da8w linear is exact, but XNNPACK's
fp32 LayerNorm/GELU differ from PyTorch's in the last bits, which flips a few int8 activation
roundings downstream, and on a 64-wide random-weight tower each flip is a visible fraction."""

SAMPLE_PROMPT = "What is in the image?"
"""The question of the greedy-token check."""


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """``||actual - expected|| / ||expected||`` (Frobenius), in float64.

    Example:
        >>> import torch
        >>> round(relative_error(torch.tensor([1.0, 1.1]), torch.tensor([1.0, 1.0])), 4)
        0.0707
    """
    a, e = actual.double().reshape(-1), expected.double().reshape(-1)
    return float((a - e).norm() / e.norm().clamp_min(1e-30))


@dataclass(frozen=True)
class MethodParity:
    """One method on one input: relative error of the program vs the quantized and the float eager model."""

    method: str
    case: str
    shape: tuple[int, ...]
    vs_quantized: float
    vs_float: float


def sample_image(width: int = 200, height: int = 120) -> np.ndarray:
    """A deterministic RGB test image (gradients and a checkerboard), ``uint8 [H, W, 3]``."""
    import numpy as np

    y, x = np.mgrid[0:height, 0:width]
    r = (x * 255 // max(width - 1, 1)).astype(np.uint8)
    g = (y * 255 // max(height - 1, 1)).astype(np.uint8)
    b = (((x // 16) + (y // 16)) % 2 * 255).astype(np.uint8)
    return np.stack([r, g, b], axis=-1)


def _decoder_cases(hidden: int, max_chunk: int, max_seq_len: int, gen: torch.Generator) -> list[tuple[str, Any, int]]:
    import torch

    first = min(max_chunk, max(2, max_chunk // 2 + 3), max_seq_len - 1)
    return [
        ("prefill", torch.randn(1, first, hidden, generator=gen) * 0.05, 0),
        ("decode", torch.randn(1, 1, hidden, generator=gen) * 0.05, first),
    ]


def compare_methods(
    program: ModelMethods, quantized: dict[str, Any], float_methods: ModelMethods, *, tile_size: int, hidden: int,
    vocab: int, seed: int = 0,
) -> list[MethodParity]:
    """Run each method of ``program``, the quantized eager modules and the float model on the same fresh random inputs.

    The decoder runs a prefill then a one-token decode at the next position, so the KV cache
    written by the first call is read by the second.
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    rows = []
    with torch.inference_mode():
        for batch in sorted({1, program.max_tile_batch}):
            tiles = torch.randn(batch, 3, tile_size, tile_size, generator=gen).clamp(-1, 1)
            got = program.vision_encoder(tiles)
            rows.append(MethodParity(
                contract.VISION_ENCODER, f"batch {batch}", tuple(got.shape),
                relative_error(got, quantized[contract.VISION_ENCODER](tiles)),
                relative_error(got, float_methods.vision_encoder(tiles)),
            ))
        tokens = torch.randint(0, vocab, (1, 7), generator=gen)
        got = program.token_embedding(tokens)
        rows.append(MethodParity(
            contract.TOKEN_EMBEDDING, "7 tokens", tuple(got.shape),
            relative_error(got, quantized[contract.TOKEN_EMBEDDING](tokens)),
            relative_error(got, float_methods.token_embedding(tokens)),
        ))
        decoder = quantized[contract.TEXT_DECODER]
        decoder.reset_cache()
        for case, embeds, start in _decoder_cases(hidden, program.max_chunk, program.max_seq_len, gen):
            pos = torch.tensor([start])
            got = program.text_decoder(embeds, pos)
            rows.append(MethodParity(
                contract.TEXT_DECODER, f"{case} {embeds.shape[1]} at {start}", tuple(got.shape),
                relative_error(got, decoder(embeds, pos)),
                relative_error(got, float_methods.text_decoder(embeds, pos)),
            ))
    return rows


def greedy_tokens(backend_methods: ModelMethods, artifacts_like: Any, n: int, image: Any = None) -> list[int]:
    """Greedy answer tokens (stop tokens ignored, so exactly ``n``) of the sample question about ``image``.

    Args:
        backend_methods (ModelMethods): eager or program methods.
        artifacts_like: anything with ``tokenizer``, ``prompt`` and ``vision`` (a Backend or a MultimodalModel).
        n (int): tokens to generate.
        image: the image (default :func:`sample_image`).
    """
    from mobile_mllm.runtime.sampling import GenerationConfig
    from mobile_mllm.runtime.session import Session

    session = Session(
        backend_methods,
        tokenizer=artifacts_like.tokenizer,
        prompt=artifacts_like.prompt,
        vision=artifacts_like.vision,
        eos_ids=(),
        generation=GenerationConfig(max_new_tokens=n, temperature=0.0),
    )
    answer = session.ask(SAMPLE_PROMPT, image=sample_image() if image is None else image)
    return list(answer.tokens)


def _agreeing_prefix(a: list[int], b: list[int]) -> int:
    count = 0
    for x, y in zip(a, b):
        if x != y:
            break
        count += 1
    return count


def verify_export(artifacts: ExportArtifacts, *, tolerance: float = QUANTIZED_TOLERANCE) -> dict[str, Any]:
    """The exporter's verifier: method parity and greedy-token agreement, as a report section.

    Raises:
        VerificationError: a method's error vs the eager quantized model exceeds ``tolerance``,
            naming the method, the input and both numbers.
    """
    from mobile_mllm.runtime.eager import EagerMethods
    from mobile_mllm.runtime.pte import PteMethods

    job = artifacts.job
    model = artifacts.model
    manifest = artifacts.manifest
    program = PteMethods(artifacts.program_file, tile_batch=int(manifest["tile_batch"]))
    program.max_chunk = int(manifest["prefill_chunk"])
    eager = EagerMethods(model, tile_batch=program.max_tile_batch, prefill_chunk=program.max_chunk)
    rows = compare_methods(
        program, artifacts.quantized, eager, tile_size=model.vision.tile_size, hidden=model.hidden_size,
        vocab=model.vocab_size, seed=job.seed,
    )
    worst = max(rows, key=lambda r: r.vs_quantized)
    n = job.verify_tokens
    float_tokens = greedy_tokens(eager, model, n)
    program_tokens = greedy_tokens(program, model, n)
    quantized_model = dataclasses.replace(
        model,
        vision_encoder=artifacts.quantized[contract.VISION_ENCODER],
        token_embedding=artifacts.quantized[contract.TOKEN_EMBEDDING],
        text_decoder=artifacts.quantized[contract.TEXT_DECODER],
    )
    quantized_eager = EagerMethods(quantized_model, tile_batch=program.max_tile_batch, prefill_chunk=program.max_chunk)
    quantized_tokens = greedy_tokens(quantized_eager, model, n)
    agree = _agreeing_prefix(program_tokens, float_tokens)
    section = {
        "tolerance_vs_quantized": tolerance,
        "methods": [
            {"method": r.method, "case": r.case, "shape": list(r.shape),
             "rel_err_vs_quantized": r.vs_quantized, "rel_err_vs_float": r.vs_float}
            for r in rows
        ],
        "max_rel_err_vs_quantized": worst.vs_quantized,
        "max_rel_err_vs_float": max(r.vs_float for r in rows),
        "greedy": {
            "prompt": SAMPLE_PROMPT,
            "num_tokens": n,
            "float_tokens": float_tokens,
            "program_tokens": program_tokens,
            "num_agreeing_prefix": agree,
            "num_agreeing_positions": sum(x == y for x, y in zip(program_tokens, float_tokens)),
            "quantized_tokens": quantized_tokens,
            "num_agreeing_prefix_vs_quantized": _agreeing_prefix(program_tokens, quantized_tokens),
        },
    }
    for r in rows:
        logger.info("%s %s: rel err %.2e vs quantized, %.2e vs float", r.method, r.case, r.vs_quantized, r.vs_float)
    logger.info(
        "greedy: %d/%d first tokens agree with the float model, %d/%d with the quantized eager model",
        agree, n, section["greedy"]["num_agreeing_prefix_vs_quantized"], n,
    )
    if worst.vs_quantized > tolerance:
        raise VerificationError(
            f"stage verify, module {worst.method}: the program differs from the eager quantized model by "
            f"{worst.vs_quantized:.2e} relative error on {worst.case} (allowed {tolerance:.0e}); "
            "re-export with --recipe fp32 to tell a lowering bug from a quantization effect"
        )
    return section
