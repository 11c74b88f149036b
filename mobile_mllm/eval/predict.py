"""Answer benchmark questions with a model: requests in, predictions (text + measurements) out.

The one predict path of the toolkit: ``mobile-mllm eval`` (``run.py``), the training evaluator
(``train/evaluate.py``) and the Ray and device back-ends all hand :class:`Request` objects to
a predictor and get :class:`Prediction` objects back. On the host a predictor is a
:class:`~mobile_mllm.runtime.session.Session` over the eager model or the exported program
(``Session`` picks by what the directory holds), asked each question greedily with its image
as a new conversation. :func:`predict_host` runs it in this process or in a pool of worker
processes (one thread each: on a shared CPU, one OpenMP team per process beats one process
spinning many threads) and yields predictions as they arrive, in any order.

Deliberately not here: reading benchmarks and building prompts (``data.py``, ``prompts.py``),
writing and resuming result files (``journal.py``, ``run.py``), the phone (``device_predict.py``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from mobile_mllm.errors import ContextOverflowError, EvalDataError, ImageError

logger = logging.getLogger(__name__)

__all__ = [
    "STAT_KEYS",
    "HostPool",
    "HostPredictor",
    "HostSpec",
    "ImageSource",
    "Prediction",
    "Request",
    "predict_host",
    "sample_stats",
]

STAT_KEYS: tuple[str, ...] = (
    "num_tiles",
    "num_image_tokens",
    "num_prompt_tokens",
    "num_generated_tokens",
    "image_encode_ms",
    "time_to_first_token_ms",
    "prefill_tok_s",
    "decode_tok_s",
    "total_ms",
)
"""Per-question measurements kept in the results (from ``Stats.to_dict()`` or the runner's stats line)."""


class ImageSource(Protocol):
    """An image made where it is used (a worker process), so only a small recipe crosses processes."""

    def load(self) -> Any:
        """The image (a PIL image, path, bytes or array: anything ``Session.ask`` takes)."""
        ...


@dataclass(frozen=True)
class Request:
    """One question to answer: its key (the benchmark index), the full prompt text and the image."""

    key: str
    prompt: str
    image: Any = None
    """Base64 text (a VLMEvalKit ``image`` cell), an :class:`ImageSource`, or anything ``Session.ask`` takes."""


@dataclass(frozen=True)
class Prediction:
    """One answer: its text and measurements, or why the question could not be asked."""

    key: str
    text: str
    stats: Mapping[str, Any] = field(default_factory=dict)
    """:data:`STAT_KEYS` (and ``grid``) of this answer."""
    error: str | None = None
    """Why no answer was produced (an image that cannot be decoded, a prompt that does not fit)."""
    error_type: str | None = None


def sample_stats(stats: Mapping[str, Any]) -> dict[str, Any]:
    """The :data:`STAT_KEYS` (and ``grid``) of a ``Stats.to_dict()`` or a runner's stats line."""
    out = {k: stats[k] for k in STAT_KEYS if k in stats}
    if stats.get("grid") is not None:
        out["grid"] = list(stats["grid"])
    return out


@dataclass(frozen=True)
class HostSpec:
    """What a host predictor opens: picklable, so each worker process (or Ray actor) builds its own."""

    model: str
    """A model directory, an exported program directory or ``builtin:NAME``."""
    vision_overrides: Mapping[str, Any] = field(default_factory=dict)
    """``VisionConfig`` fields replaced for this run (grid policy, max tiles)."""
    max_new_tokens: int = 32
    threads: int = 1
    """torch threads per predictor."""


class HostPredictor:
    """A session over the eager model or the exported program, asked one question at a time.

    Args:
        spec (HostSpec): the model and the run's overrides.
    """

    def __init__(self, spec: HostSpec) -> None:
        import torch

        from mobile_mllm.runtime.sampling import GenerationConfig
        from mobile_mllm.runtime.session import RuntimeConfig, Session, open_backend

        torch.set_num_threads(spec.threads)
        backend = open_backend(spec.model, RuntimeConfig())
        self.session = Session(
            backend.methods,
            tokenizer=backend.tokenizer,
            prompt=backend.prompt,
            vision=dataclasses.replace(backend.vision, **dict(spec.vision_overrides)),
            eos_ids=backend.eos_ids,
            generation=GenerationConfig(max_new_tokens=spec.max_new_tokens),
            model_load_ms=(backend.model_load_start_ms, backend.model_load_end_ms),
        )

    def __call__(self, request: Request) -> Prediction:
        """Answer one request; an unusable image or an oversized prompt becomes an error prediction."""
        try:
            image = _load_image(request)
            answer = self.session.ask(request.prompt, image, styled=False)  # eval's prompts carry their instruction
        except (EvalDataError, ImageError, ContextOverflowError) as e:
            logger.warning("index %s: %s", request.key, e)
            return Prediction(request.key, "", error=str(e), error_type=type(e).__name__)
        return Prediction(request.key, answer.text.strip(), sample_stats(answer.stats.to_dict()))


def _load_image(request: Request) -> Any:
    image = request.image
    if isinstance(image, str):
        from mobile_mllm.eval.data import decode_image

        return decode_image(image, where=f"index {request.key}")
    if hasattr(image, "load") and callable(image.load) and not hasattr(image, "size"):  # an ImageSource, not a PIL image
        return image.load()
    return image


_WORKER: dict[str, HostPredictor] = {}


def _init_worker(spec: HostSpec) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the parent, which ends the pool (no child tracebacks)
    _WORKER["predictor"] = HostPredictor(spec)


def _work(request: Request) -> Prediction:
    return _WORKER["predictor"](request)


class HostPool:
    """Host predictors kept alive across benchmarks: this process, or ``workers`` worker processes.

    Call it with a list of requests to get their predictions as they complete; :meth:`close`
    (or ``with``) ends the workers. The model is loaded once per worker for the whole run.
    """

    def __init__(self, spec: HostSpec, workers: int = 1) -> None:
        self.spec = spec
        self.workers = workers
        self._local: HostPredictor | None = None
        self._pool: Any = None

    def __call__(self, requests: Iterable[Request]) -> Iterator[Prediction]:
        items = list(requests)
        if not items:
            return
        if self.workers <= 1:
            if self._local is None:
                self._local = HostPredictor(self.spec)
            for request in items:
                yield self._local(request)
            return
        if self._pool is None:
            import multiprocessing

            ctx = multiprocessing.get_context("spawn")  # fork after torch's thread pools exist can deadlock
            self._pool = ctx.Pool(self.workers, initializer=_init_worker, initargs=(self.spec,))
        yield from self._pool.imap_unordered(_work, items, chunksize=1)

    def close(self) -> None:
        """Stop the worker processes (if any)."""
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None
        self._local = None

    def __enter__(self) -> HostPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def predict_host(requests: Iterable[Request], spec: HostSpec, *, workers: int = 1) -> Iterator[Prediction]:
    """Answer ``requests`` on this machine, yielding each prediction as soon as it exists.

    Args:
        requests (Iterable[Request]): the questions.
        spec (HostSpec): the model and overrides.
        workers (int): processes, each loading the model once; 1 answers in this process. Default 1.

    Yields:
        Prediction: in completion order (the same as request order with one worker).
    """
    items = list(requests)
    with HostPool(spec, min(workers, max(1, len(items)))) as pool:
        yield from pool(items)
