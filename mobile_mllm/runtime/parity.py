"""Does an exported program compute what the eager model computes? Per method, and greedy tokens.

:func:`verify_export` is the exporter's verifier (``export_program(verifier=...)``): it loads
the freshly written ``.pte`` through :class:`~mobile_mllm.runtime.pte.PteMethods` and compares
each method with the *quantized* eager modules that were exported and with the *float* eager
model (reported, not asserted: that is the cost of quantization); then it runs the same greedy
generation through :class:`Session` on both and counts how many of the first N tokens agree
with the float model; where two runs part, it reports each run's top-2 logit margin at that
token (:func:`first_divergence`), because on a near-tie int8 noise alone decides the token, which says
nothing against the program (an example: ``bench/RESULTS.md``, "Verification tolerances").

How agreement is judged (:func:`check_parity`): each method runs on several independent samples
(each vision tile, each embedding call, each decoder call of three prefill+decode sequences);
the *median* relative error per method must be at most :data:`QUANTIZED_TOLERANCE` and every
sample at most :data:`FLIP_TOLERANCE`. With int8 dynamic activations a correct program cannot
match the eager model bit for bit: the program's fp32 kernels (XNNPACK's softmax, sigmoid and
int32 -> float rescale of a linear, the portable LayerNorm and mean) differ from PyTorch's in
the last bits, and a last-bit difference
just before an activation is quantized flips its int8 rounding with a probability of about
1e-5 per element. Most samples then agree to float32 rounding and an odd one is off by the
flip's propagated effect. A lowering bug moves every sample (XNNPACK's erf-GELU standing in for
tanh-GELU did), which the median catches. Each decoder sequence is one independent sample of
flips (its decode call reads the prefill's KV cache, so a prefill flip shows twice), hence
:data:`DECODER_SEQUENCES` of them, so that no seed puts the median on a flip. The sizes behind
these rules: ``bench/RESULTS.md``, "Verification tolerances". The report counts the samples within :data:`EXACT_TOLERANCE` (float32
rounding only), so a reader sees how many inputs carry flips.

How large flips may be is the model's own property, so the verifier measures it: each sample is
also run through the eager quantized model with every linear's input moved by at most one float32
ulp (:func:`linear_input_noise`) — the size of the last-bit differences the program's kernels
make — and that run's relative error from the unperturbed one is the sample's *noise floor*. No
program can be expected closer to the eager model than the eager model is to itself under one
ulp (program error and floor were measured to be the same size: ``bench/RESULTS.md``,
"Verification tolerances"). The bounds therefore scale with the floor (:func:`check_parity`): the median may be
:data:`QUANTIZED_TOLERANCE` or :data:`FLOOR_FACTOR` times the floor's median, whichever is larger,
so a deeper or wider model whose own rounding noise exceeds the fixed bound is not refused for it,
while on models whose floor is low (where the erf-GELU bug above was caught) nothing changes.

Deliberately not here: exporting, and any speed measurement (``bench/``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterable, Iterator
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

__all__ = [
    "DECODER_SEQUENCES",
    "EXACT_TOLERANCE",
    "FLIP_TOLERANCE",
    "FLOOR_FACTOR",
    "GreedyRun",
    "MethodParity",
    "ONNX_FLOAT_FACTOR",
    "ONNX_VISION_METHOD",
    "QUANTIZED_TOLERANCE",
    "check_onnx_vision",
    "check_parity",
    "compare_methods",
    "compare_onnx_vision",
    "first_divergence",
    "greedy_run",
    "greedy_tokens",
    "linear_input_noise",
    "relative_error",
    "sample_image",
    "verify_export",
]

QUANTIZED_TOLERANCE = 5e-3
"""Largest median relative error, per method over its samples, between the program and the eager quantized model.

Chosen to leave a margin over the rounding-flip noise of correct w4 programs while still failing
the erf-GELU lowering bug (the measurements: ``bench/RESULTS.md``, "Verification tolerances")."""

FLIP_TOLERANCE = 2e-2
"""Largest relative error of any single sample (the propagated effect of rare int8 rounding flips)."""

EXACT_TOLERANCE = 1e-5
"""A sample within this relative error differs from the eager quantized model only by float32 rounding (no flip)."""

FLOOR_FACTOR = 2.0
"""How far above the model's own one-ulp noise floor a method's error may be before the fixed bounds no longer apply.

The median bound is ``max(QUANTIZED_TOLERANCE, FLOOR_FACTOR * median floor)`` and the per-sample
bound ``max(FLIP_TOLERANCE, FLOOR_FACTOR * largest floor)``. Program error and floor are two draws
of the same rounding-flip noise, so where the floor decides (a median above QUANTIZED_TOLERANCE /
2) twice the floor is room enough and keeps a lowering error the size of the floor itself
detectable; a floor median below QUANTIZED_TOLERANCE / 2 leaves the fixed bounds as they were
(the distributions compared: ``bench/RESULTS.md``, "Verification tolerances")."""

NOISE_ULPS = 1.0
"""Bound on ``|u|`` in :func:`linear_input_noise`, in float32 ulps (2**-23): each linear input is multiplied by ``1 + u``."""

DECODER_SEQUENCES = 8
"""Independent decoder sequences (a prefill, then a one-token decode) per verification.

Enough that the median stays on a flip-free sample for any seed (three were not:
``bench/RESULTS.md``, "Verification tolerances")."""

ONNX_FLOAT_FACTOR = 3.0
"""How much further from the float model ``vision.onnx`` may be than the ``.pte``'s own ``vision_encoder`` (medians over tiles).

``vision.onnx`` is quantized by ONNX Runtime, not by torchao, so it has no eager twin to match to
rounding noise as the ``.pte``'s methods do; what it must do is encode images about as accurately
as the program's int8 tower. Measured on the tiny preset: ORT dynamic int8 2.3e-2 vs float
(per-tensor weights), the ``.pte``'s 8da8w 1.5e-2; an export bug (a wrong attention, a dropped
projector) is O(1). The bound is ``max(QUANTIZED_TOLERANCE, ONNX_FLOAT_FACTOR * the .pte's median)``,
so an fp32 ``vision.onnx`` next to an fp32 program must match the float model to 5e-3."""

ONNX_VISION_METHOD = f"{contract.VISION_ENCODER}@{contract.ENGINE_ONNXRUNTIME}"
"""How ``vision.onnx``'s rows are named in the verification report."""


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
    """One method on one input: relative error of the program vs the quantized and the float eager model.

    ``noise_floor`` is the eager quantized model's relative error from itself on the same input
    when every linear's input moves by at most :data:`NOISE_ULPS` ulp (:func:`linear_input_noise`):
    how much last-bit differences alone move this method's output on this input (0 when not
    measured, which leaves :func:`check_parity` with its fixed bounds).
    """

    method: str
    case: str
    shape: tuple[int, ...]
    vs_quantized: float
    vs_float: float
    noise_floor: float = 0.0


@contextlib.contextmanager
def linear_input_noise(modules: Iterable[Any], *, generator: torch.Generator, ulps: float = NOISE_ULPS) -> Iterator[None]:
    """While open, multiply the input of every ``nn.Linear`` inside ``modules`` by ``1 + u``, ``|u| <= ulps * 2**-23``.

    One ulp is the size of the differences between two correct float32 implementations of the
    ops before a linear (XNNPACK's vs PyTorch's softmax, GELU, int32 -> float rescale ...); in a
    model with int8 dynamic activations each such difference may flip an activation's rounding,
    and the flip propagates. Running the eager quantized model under this noise measures how far
    those flips alone move an output. With ``ulps=1`` an element moves by at most 1.5 ulps
    (``1 + u`` and the product are rounded too). The hooks are removed on exit, also on error.

    Example:
        >>> import torch
        >>> lin = torch.nn.Linear(4, 4)
        >>> x = torch.ones(1, 4)
        >>> with linear_input_noise([lin], generator=torch.Generator().manual_seed(0)):
        ...     noisy = lin(x)
        >>> bool((noisy - lin(x)).abs().max() < 1e-5), bool((noisy != lin(x)).any())
        (True, True)
    """
    import torch
    from torch import nn

    scale = ulps * 2.0**-23

    def perturb(_module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        x = args[0]
        u = (torch.rand(x.shape, generator=generator, dtype=x.dtype) * 2 - 1) * scale
        return (x * (1 + u), *args[1:])

    handles = [
        sub.register_forward_pre_hook(perturb)
        for module in modules for sub in module.modules() if isinstance(sub, nn.Linear)
    ]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def sample_image(width: int = 200, height: int = 120) -> np.ndarray:
    """A deterministic RGB test image (gradients and a checkerboard), ``uint8 [H, W, 3]``."""
    import numpy as np

    y, x = np.mgrid[0:height, 0:width]
    r = (x * 255 // max(width - 1, 1)).astype(np.uint8)
    g = (y * 255 // max(height - 1, 1)).astype(np.uint8)
    b = (((x // 16) + (y // 16)) % 2 * 255).astype(np.uint8)
    return np.stack([r, g, b], axis=-1)


def _decoder_cases(hidden: int, prefill_chunk: int, max_context_len: int, gen: torch.Generator) -> list[tuple[str, Any, int]]:
    import torch

    first = min(prefill_chunk, max(2, prefill_chunk // 2 + 3), max_context_len - 1)
    return [
        ("prefill", torch.randn(1, first, hidden, generator=gen) * 0.05, 0),
        ("decode", torch.randn(1, 1, hidden, generator=gen) * 0.05, first),
    ]


def compare_methods(
    program: ModelMethods, quantized: dict[str, Any], float_methods: ModelMethods, *, tile_size: int, hidden: int,
    vocab: int, seed: int = 0,
) -> list[MethodParity]:
    """Run each method of ``program``, the quantized eager modules and the float model on the same fresh random inputs.

    One row per independent sample: each tile of a batch-1 call and of two full-batch calls (none
    when ``quantized`` has no ``vision_encoder``: a program exported without it),
    three ``token_embedding`` calls, and :data:`DECODER_SEQUENCES` decoder sequences of a prefill
    then a one-token decode at the next position (so the KV cache written by the first call is
    read by the second). Each row also carries the sample's noise floor: the quantized eager
    module run again under :func:`linear_input_noise` (for the decoder, the whole sequence again
    from an empty cache).
    """
    import torch

    gen = torch.Generator().manual_seed(seed)
    noise = torch.Generator().manual_seed(seed + 1)

    def noisy(module: Any, *args: Any) -> Any:
        with linear_input_noise([module], generator=noise):
            return module(*args)

    rows = []
    with torch.inference_mode():
        batches = sorted({1, program.max_tile_batch}) + ([program.max_tile_batch] if program.max_tile_batch > 1 else [])
        vision = quantized.get(contract.VISION_ENCODER)  # absent: the program has none (vision.onnx encodes images)
        for call, batch in enumerate(batches if vision is not None else []):
            tiles = torch.randn(batch, 3, tile_size, tile_size, generator=gen).clamp(-1, 1)
            got = program.vision_encoder(tiles)
            expected_q, expected_f = vision(tiles), float_methods.vision_encoder(tiles)
            floor = noisy(vision, tiles)
            for i in range(batch):
                rows.append(MethodParity(
                    contract.VISION_ENCODER, f"call {call} (batch {batch}) tile {i}", tuple(got[i].shape),
                    relative_error(got[i], expected_q[i]), relative_error(got[i], expected_f[i]),
                    relative_error(floor[i], expected_q[i]),
                ))
        embedding = quantized[contract.TOKEN_EMBEDDING]
        for length in (7, 1, 13):
            tokens = torch.randint(0, vocab, (1, length), generator=gen)
            got, expected_q = program.token_embedding(tokens), embedding(tokens)
            rows.append(MethodParity(
                contract.TOKEN_EMBEDDING, f"{length} tokens", tuple(got.shape),
                relative_error(got, expected_q), relative_error(got, float_methods.token_embedding(tokens)),
                relative_error(noisy(embedding, tokens), expected_q),
            ))
        decoder = quantized[contract.TEXT_DECODER]
        for sequence in range(DECODER_SEQUENCES):
            cases = _decoder_cases(hidden, program.prefill_chunk, program.max_context_len, gen)
            decoder.reset_cache()
            expected_q = [decoder(embeds, torch.tensor([start])) for _, embeds, start in cases]
            decoder.reset_cache()
            floor = [noisy(decoder, embeds, torch.tensor([start])) for _, embeds, start in cases]
            for (case, embeds, start), q, f in zip(cases, expected_q, floor):
                pos = torch.tensor([start])
                got = program.text_decoder(embeds, pos)
                rows.append(MethodParity(
                    contract.TEXT_DECODER, f"sequence {sequence} {case} {embeds.shape[1]} at {start}", tuple(got.shape),
                    relative_error(got, q), relative_error(got, float_methods.text_decoder(embeds, pos)),
                    relative_error(f, q),
                ))
    return rows


def check_parity(
    rows: list[MethodParity], *, tolerance: float = QUANTIZED_TOLERANCE, flip_tolerance: float = FLIP_TOLERANCE
) -> dict[str, dict[str, float]]:
    """Per method: median and worst relative error vs the eager quantized model, checked against both bounds.

    The bounds are ``tolerance`` on the median and ``flip_tolerance`` on every sample, each raised
    to :data:`FLOOR_FACTOR` times the method's noise floor (its median, resp. its largest sample)
    where the model's own rounding noise is larger than they allow.

    Args:
        rows (list[MethodParity]): one row per sample (:func:`compare_methods`).
        tolerance (float): least bound on each method's median. Default :data:`QUANTIZED_TOLERANCE`.
        flip_tolerance (float): least bound on every sample. Default :data:`FLIP_TOLERANCE`.

    Returns:
        dict: method -> ``median_rel_err_vs_quantized``, ``max_rel_err_vs_quantized``, ``num_samples``,
        ``num_exact`` (samples within :data:`EXACT_TOLERANCE`: no int8 rounding flip),
        ``median_noise_floor``, ``max_noise_floor``, and the bounds applied: ``tolerance``,
        ``flip_tolerance``.

    Raises:
        VerificationError: naming the method, the statistic, the worst input, the noise floor and the bound.

    Example:
        >>> rows = [MethodParity("m", str(i), (1,), e, 0.1) for i, e in enumerate([1e-7, 2e-7, 8e-3])]
        >>> check_parity(rows)["m"]["median_rel_err_vs_quantized"]
        2e-07
    """
    import statistics

    by_method: dict[str, list[MethodParity]] = {}
    for row in rows:
        by_method.setdefault(row.method, []).append(row)
    summary = {}
    for method, samples in by_method.items():
        median = statistics.median(r.vs_quantized for r in samples)
        worst = max(samples, key=lambda r: r.vs_quantized)
        floor_median = statistics.median(r.noise_floor for r in samples)
        floor_max = max(r.noise_floor for r in samples)
        median_bound = max(tolerance, FLOOR_FACTOR * floor_median)
        sample_bound = max(flip_tolerance, FLOOR_FACTOR * floor_max)
        summary[method] = {
            "median_rel_err_vs_quantized": median,
            "max_rel_err_vs_quantized": worst.vs_quantized,
            "num_samples": len(samples),
            "num_exact": sum(r.vs_quantized <= EXACT_TOLERANCE for r in samples),
            "median_noise_floor": floor_median,
            "max_noise_floor": floor_max,
            "tolerance": median_bound,
            "flip_tolerance": sample_bound,
        }
        hint = "re-export with --recipe fp32 to tell a lowering bug from a quantization effect"
        floor_note = (f"one-ulp noise on every linear input moves the eager model itself by a median {floor_median:.2e}"
                      f" (largest {floor_max:.2e})")
        if median > median_bound:
            raise VerificationError(
                f"stage verify, module {method}: the program differs from the eager quantized model by a median "
                f"{median:.2e} relative error over {len(samples)} samples (allowed {median_bound:.1e}; worst "
                f"{worst.vs_quantized:.2e} on {worst.case}), while {floor_note}: this is not int8 rounding noise; "
                f"{hint}"
            )
        if worst.vs_quantized > sample_bound:
            raise VerificationError(
                f"stage verify, module {method}: the program differs from the eager quantized model by "
                f"{worst.vs_quantized:.2e} relative error on {worst.case} (allowed {sample_bound:.1e} for any "
                f"single input, while {floor_note}); {hint}"
            )
    return summary


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


@dataclass(frozen=True)
class GreedyRun:
    """Greedy tokens and how decisive each choice was.

    ``margins[i]`` is the chosen token's logit minus the best other logit at step ``i``: where two
    runs part ways, a small margin (a near-tie) means the int8 noise of a correct program may pick
    either token, a large one means the programs really compute different things.
    """

    tokens: list[int]
    margins: list[float]


class _LogitRecorder:
    """The wrapped methods, with a copy of every ``text_decoder`` call's logits kept (all else delegated)."""

    def __init__(self, methods: ModelMethods) -> None:
        self._methods = methods
        self.logits: list[torch.Tensor] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._methods, name)

    def text_decoder(self, embeds: torch.Tensor, start_pos: torch.Tensor) -> torch.Tensor:
        out = self._methods.text_decoder(embeds, start_pos)
        self.logits.append(out.detach().reshape(-1).float().clone())
        return out


def greedy_run(backend_methods: ModelMethods, artifacts_like: Any, n: int, image: Any = None) -> GreedyRun:
    """:func:`greedy_tokens` plus each token's logit margin over the runner-up (same arguments).

    The session's last ``n`` decoder calls produce the ``n`` tokens (the last prefill chunk the
    first, each decode step the next); a margin that comes out negative would mean that mapping
    broke, which raises instead of reporting nonsense.

    Raises:
        VerificationError: a recorded call's best token is not the token the session chose.
    """
    import torch

    recorder = _LogitRecorder(backend_methods)
    tokens = greedy_tokens(recorder, artifacts_like, n, image)
    margins = []
    for step, (token, logits) in enumerate(zip(tokens, recorder.logits[-len(tokens):] if tokens else [])):
        others = logits.clone()
        others[token] = -torch.inf
        margin = float(logits[token] - others.max())
        if margin < 0:
            raise VerificationError(
                f"stage verify: greedy step {step} chose token {token} but its decoder call's best token is "
                f"{int(logits.argmax())}; the session's calls no longer map one per generated token"
            )
        margins.append(margin)
    return GreedyRun(tokens, margins)


def first_divergence(run: GreedyRun, reference: GreedyRun) -> dict[str, float] | None:
    """Where ``run`` first chooses another token than ``reference``, with both margins there; None if they agree.

    Example:
        >>> first_divergence(GreedyRun([5, 7, 9], [2.0, 0.03, 1.0]), GreedyRun([5, 8, 9], [1.9, 0.02, 1.1]))
        {'token': 1, 'margin': 0.03, 'reference_margin': 0.02}
    """
    for i, (a, b) in enumerate(zip(run.tokens, reference.tokens)):
        if a != b:
            return {"token": i, "margin": run.margins[i], "reference_margin": reference.margins[i]}
    return None


def _agreeing_prefix(a: list[int], b: list[int]) -> int:
    count = 0
    for x, y in zip(a, b):
        if x != y:
            break
        count += 1
    return count


class _Quiet:
    """A module whose calls send what ExecuTorch's C++ kernels print on stderr to the DEBUG log.

    The eager export decoder runs ExecuTorch's ``llama.custom_sdpa`` kernel through its AOT
    library, which prints ``No temp allocator provided`` on every long prefill (hundreds of lines
    per export); the program itself does not. Attributes (``reset_cache`` …) are the module's.
    """

    def __init__(self, module: Any) -> None:
        self._module = module

    def __call__(self, *args: Any) -> Any:
        from mobile_mllm.runtime.pte import native_log_to_debug

        with native_log_to_debug():
            return self._module(*args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


def compare_onnx_vision(
    encoder: Any, float_methods: ModelMethods, *, tile_size: int, tile_batch: int, seed: int = 0,
    method: str = ONNX_VISION_METHOD,
) -> list[MethodParity]:
    """``vision.onnx`` vs the float eager model, per tile of a batch-1 and a full-batch call (``vs_quantized`` = ``vs_float``).

    Args:
        encoder (Any): ``tiles -> embeddings`` (an :class:`~mobile_mllm.runtime.onnx_vision.OnnxVisionEncoder`,
            or the eager int8 tower that stands in for a ``.pte`` without ``vision_encoder``).
        float_methods (ModelMethods): the float eager model.
        tile_size (int): tile side.
        tile_batch (int): the largest batch.
        seed (int): of the random tiles. Default 0.
        method (str): the rows' method name. Default :data:`ONNX_VISION_METHOD`.
    """
    import torch

    gen = torch.Generator().manual_seed(seed + 2)
    rows = []
    with torch.inference_mode():
        for call, batch in enumerate(sorted({1, tile_batch})):
            tiles = torch.randn(batch, 3, tile_size, tile_size, generator=gen).clamp(-1, 1)
            got, expected = encoder(tiles), float_methods.vision_encoder(tiles)
            for i in range(batch):
                err = relative_error(got[i], expected[i])
                rows.append(MethodParity(method, f"call {call} (batch {batch}) tile {i}", tuple(got[i].shape),
                                         err, err))
    return rows


def check_onnx_vision(rows: list[MethodParity], program_rows: list[MethodParity]) -> dict[str, float]:
    """``vision.onnx``'s median error vs float within :data:`ONNX_FLOAT_FACTOR` of the ``.pte`` tower's.

    Raises:
        VerificationError: naming both medians, the worst tile and the bound.

    Example:
        >>> pte = [MethodParity("vision_encoder", str(i), (1,), 0.0, 1e-2) for i in range(3)]
        >>> ort = [MethodParity("o", str(i), (1,), 2e-2, 2e-2) for i in range(3)]
        >>> check_onnx_vision(ort, pte)["tolerance"]
        0.03
    """
    import statistics

    pte_median = statistics.median(r.vs_float for r in program_rows if r.method == contract.VISION_ENCODER)
    median = statistics.median(r.vs_float for r in rows)
    worst = max(rows, key=lambda r: r.vs_float)
    bound = max(QUANTIZED_TOLERANCE, ONNX_FLOAT_FACTOR * pte_median)
    if median > bound:
        raise VerificationError(
            f"stage verify, module {contract.VISION_ONNX_FILE}: ONNX Runtime's vision encoder differs from the float "
            f"model by a median {median:.2e} relative error over {len(rows)} tiles (worst {worst.vs_float:.2e} on "
            f"{worst.case}), the .pte's vision_encoder by {pte_median:.2e}; allowed {bound:.1e}. Re-export with "
            "--onnx-quantization fp32 to tell an export bug from a quantization effect"
        )
    return {"median_rel_err_vs_float": median, "max_rel_err_vs_float": worst.vs_float, "num_samples": len(rows),
            "pte_median_rel_err_vs_float": pte_median, "tolerance": bound}


def verify_export(
    artifacts: ExportArtifacts, *, tolerance: float = QUANTIZED_TOLERANCE, flip_tolerance: float = FLIP_TOLERANCE
) -> dict[str, Any]:
    """The exporter's verifier: method parity (:func:`check_parity`) and greedy-token agreement, as a report section.

    Raises:
        VerificationError: a method's median error vs the eager quantized model exceeds
            ``tolerance``, or one sample's exceeds ``flip_tolerance`` (naming the method, the
            input and the numbers).
    """
    from mobile_mllm.runtime.eager import EagerMethods
    from mobile_mllm.runtime.pte import PteMethods

    job = artifacts.job
    model = artifacts.model
    manifest = artifacts.manifest
    quantized = {**artifacts.quantized, contract.TEXT_DECODER: _Quiet(artifacts.quantized[contract.TEXT_DECODER])}
    program: Any = PteMethods(artifacts.program_file, tile_batch=int(manifest[contract.M_TILE_BATCH]))
    program.prefill_chunk = int(manifest[contract.M_PREFILL_CHUNK])
    eager = EagerMethods(model, tile_batch=program.max_tile_batch, prefill_chunk=program.prefill_chunk)
    rows = compare_methods(
        program, quantized, eager, tile_size=model.vision.tile_size, hidden=model.hidden_size,
        vocab=model.vocab_size, seed=job.seed,
    )
    for r in rows:
        logger.debug("%s %s: rel err %.2e vs quantized, %.2e vs float", r.method, r.case, r.vs_quantized, r.vs_float)
    summary = check_parity(rows, tolerance=tolerance, flip_tolerance=flip_tolerance)
    for method, stats in summary.items():
        logger.info(
            "%s: rel err vs quantized median %.2e, max %.2e over %d samples (%d within %.0e, the rest int8 rounding "
            "flips); the eager model's own one-ulp noise floor: median %.2e, max %.2e",
            method, stats["median_rel_err_vs_quantized"], stats["max_rel_err_vs_quantized"],
            stats["num_samples"], stats["num_exact"], EXACT_TOLERANCE, stats["median_noise_floor"],
            stats["max_noise_floor"],
        )
    n = job.verify_tokens
    encoder = _onnx_encoder(artifacts, program.max_tile_batch)
    reference_vision = artifacts.quantized.get(contract.VISION_ENCODER)
    if reference_vision is None:  # a program without vision_encoder: images go through vision.onnx in its runs
        from mobile_mllm.runtime.onnx_vision import OnnxVisionMethods

        program = OnnxVisionMethods(program, encoder)
        reference_vision = _recipe_vision(model, job)
    float_run = greedy_run(eager, model, n)
    program_run = greedy_run(program, model, n)
    float_tokens, program_tokens = float_run.tokens, program_run.tokens
    quantized_model = dataclasses.replace(
        model,
        vision_encoder=reference_vision,
        token_embedding=artifacts.quantized[contract.TOKEN_EMBEDDING],
        text_decoder=quantized[contract.TEXT_DECODER],
    )
    quantized_eager = EagerMethods(quantized_model, tile_batch=program.max_tile_batch, prefill_chunk=program.prefill_chunk)
    quantized_run = greedy_run(quantized_eager, model, n)
    quantized_tokens = quantized_run.tokens
    agree = _agreeing_prefix(program_tokens, float_tokens)
    onnx_section = None
    if encoder is not None:
        onnx_section = _verify_onnx_vision(artifacts, encoder, program, eager, rows, reference_vision, program_run,
                                           float_run)
    section = {
        "tolerance_vs_quantized": tolerance,
        "flip_tolerance_vs_quantized": flip_tolerance,
        "by_method": summary,
        "median_rel_err_vs_quantized": max(s["median_rel_err_vs_quantized"] for s in summary.values()),
        "methods": [
            {"method": r.method, "case": r.case, "shape": list(r.shape),
             "rel_err_vs_quantized": r.vs_quantized, "rel_err_vs_float": r.vs_float, "noise_floor": r.noise_floor}
            for r in rows
        ],
        "max_rel_err_vs_quantized": max(r.vs_quantized for r in rows),
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
            "program_margins": program_run.margins,
            "first_divergence_vs_float": first_divergence(program_run, float_run),
            "first_divergence_vs_quantized": first_divergence(program_run, quantized_run),
        },
    }
    if onnx_section is not None:
        section[contract.VISION_ONNX_FILE] = onnx_section
    logger.info(
        "greedy: %d/%d first tokens agree with the float model, %d/%d with the quantized eager model",
        agree, n, section["greedy"]["num_agreeing_prefix_vs_quantized"], n,
    )
    return section


def _onnx_encoder(artifacts: ExportArtifacts, tile_batch: int) -> Any:
    """The export's ``vision.onnx`` in an ONNX Runtime session, or None when it wrote none."""
    from mobile_mllm.runtime.onnx_vision import OnnxVisionEncoder

    path = artifacts.extra_files.get(contract.VISION_ONNX_FILE)
    return None if path is None else OnnxVisionEncoder(path, max_tile_batch=tile_batch)


def _recipe_vision(model: Any, job: Any) -> Any:
    """The float tower quantized by the job's precision recipe: what a ``.pte`` ``vision_encoder`` would have computed.

    The reference for ``vision.onnx`` when the program was exported without its own tower
    (``pte_vision_encoder`` false): the ``.pte``'s methods match their eager quantized twins to
    rounding (:func:`check_parity`), so this eager int8 tower stands for the method left out.
    """
    import copy

    from mobile_mllm.quant.apply import quantize_modules
    from mobile_mllm.quant.recipe import build_recipe

    tower = copy.deepcopy(model.vision_encoder).eval()
    recipe = build_recipe(job.quant, vision_method=contract.VISION_ENCODER, decoder_method=contract.TEXT_DECODER,
                          embedding_method=contract.TOKEN_EMBEDDING)
    quantize_modules({contract.VISION_ENCODER: tower}, recipe)
    return tower


def _verify_onnx_vision(
    artifacts: ExportArtifacts, encoder: Any, program: ModelMethods, eager: ModelMethods,
    program_rows: list[MethodParity], reference_vision: Any, program_run: GreedyRun, float_run: GreedyRun,
) -> dict[str, Any]:
    """``vision.onnx``: tile parity (:func:`check_onnx_vision`) and greedy tokens with it.

    The reference error is the ``.pte``'s own ``vision_encoder`` rows, or, for a program without
    one, the eager int8 tower's (:func:`_recipe_vision`) on the same kind of tiles; the greedy run
    with ONNX Runtime's vision is ``program_run`` itself then.
    """
    from mobile_mllm.runtime.onnx_vision import OnnxVisionMethods

    model = artifacts.model
    size, batch, seed = model.vision.tile_size, program.max_tile_batch, artifacts.job.seed
    has_pte_vision = any(r.method == contract.VISION_ENCODER for r in program_rows)
    if not has_pte_vision:
        program_rows = compare_onnx_vision(reference_vision, eager, tile_size=size, tile_batch=batch, seed=seed,
                                           method=contract.VISION_ENCODER)
    rows = compare_onnx_vision(encoder, eager, tile_size=size, tile_batch=batch, seed=seed)
    summary = check_onnx_vision(rows, program_rows)
    run = greedy_run(OnnxVisionMethods(program, encoder), model, artifacts.job.verify_tokens) if has_pte_vision else program_run
    logger.info(
        "%s: rel err vs float median %.2e, max %.2e over %d tiles (the %s: %.2e); greedy: %d/%d "
        "first tokens agree with the float model, %d/%d with the .pte's vision",
        contract.VISION_ONNX_FILE, summary["median_rel_err_vs_float"], summary["max_rel_err_vs_float"],
        summary["num_samples"], ".pte's vision_encoder" if has_pte_vision else "eager int8 tower (no .pte vision)",
        summary["pte_median_rel_err_vs_float"], _agreeing_prefix(run.tokens, float_run.tokens),
        len(run.tokens), _agreeing_prefix(run.tokens, program_run.tokens), len(run.tokens),
    )
    return {
        **summary,
        "reference": "pte_vision_encoder" if has_pte_vision else "eager_int8_tower",
        "methods": [{"method": r.method, "case": r.case, "shape": list(r.shape), "rel_err_vs_float": r.vs_float}
                    for r in rows],
        "greedy": {
            "tokens": run.tokens,
            "num_agreeing_prefix": _agreeing_prefix(run.tokens, float_run.tokens),
            "num_agreeing_prefix_vs_pte_vision": _agreeing_prefix(run.tokens, program_run.tokens),
            "margins": run.margins,
            "first_divergence_vs_float": first_divergence(run, float_run),
        },
    }
