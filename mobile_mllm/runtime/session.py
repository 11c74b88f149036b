"""The inference loop: image -> tiles -> encode in batches -> interleave -> chunked prefill -> decode.

One loop for every backend: :class:`Session` sees only the three contract methods
(:class:`~mobile_mllm.runtime.methods.ModelMethods`), eager (``eager.py``) or an exported
program (``pte.py``). The loop is gpt-fast's shape: :func:`encode_tiles`, :func:`embed_segments`,
:func:`prefill`, :func:`decode_one_token`, :func:`decode_n_tokens`, and :meth:`Session.ask`
strings them together. A session owns the KV cache's contents: a follow-up question without a
new image is prefilled after the previous answer, so the image is neither encoded nor
prefilled again. Every size check happens before any model call.
Deliberately not here: image decoding and tiling (``vision``), sampling rules (``sampling.py``),
backend loading details (``eager.py``, ``pte.py``, ``model``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mobile_mllm import contract
from mobile_mllm.errors import ContextOverflowError, ContractError
from mobile_mllm.runtime.layout import (
    Segment,
    TileRef,
    TokenRun,
    count_positions,
    first_turn,
    image_block,
    next_turn,
    special_token_ids,
)
from mobile_mllm.runtime.methods import Backend, RuntimeConfig
from mobile_mllm.runtime.preflight import check_question
from mobile_mllm.runtime.sampling import GenerationConfig, make_generator, sample
from mobile_mllm.runtime.stats import Stats, now_ms, peak_rss_bytes

if TYPE_CHECKING:
    import torch

    from mobile_mllm.model.adapter import PromptFormat
    from mobile_mllm.runtime.methods import ModelMethods
    from mobile_mllm.vision.config import VisionConfig

logger = logging.getLogger(__name__)

__all__ = [
    "Answer",
    "Backend",
    "RuntimeConfig",
    "Session",
    "decode_n_tokens",
    "decode_one_token",
    "embed_segments",
    "encode_tiles",
    "open_backend",
    "prefill",
]


@dataclass(frozen=True)
class Answer:
    """One answer: its text, its token ids (the stop token included), why it stopped, and its stats."""

    text: str
    tokens: tuple[int, ...]
    stop_reason: str
    """"eos" (a stop token), "max_new_tokens" or "context_full" (the KV cache is full)."""
    stats: Stats


# --------------------------------------------------------------------------- the loop


def encode_tiles(methods: ModelMethods, tiles: torch.Tensor, batch: int) -> tuple[torch.Tensor, list[float]]:
    """Run ``vision_encoder`` over ``tiles [N, 3, S, S]`` in batches of ``batch``; return ``[N, n, D]`` and each call's ms."""
    import torch

    outputs, times = [], []
    for i in range(0, tiles.shape[0], batch):
        start = now_ms()
        outputs.append(methods.vision_encoder(tiles[i : i + batch]))
        times.append(now_ms() - start)
    return torch.cat(outputs), times


def embed_segments(methods: ModelMethods, segments: Sequence[Segment], image: torch.Tensor | None) -> torch.Tensor:
    """The ``[1, T, D]`` embeddings of a prompt: token runs through ``token_embedding`` (at most ``prefill_chunk`` per call), tiles from ``image``."""
    import torch

    parts = []
    for seg in segments:
        if isinstance(seg, TokenRun):
            for i in range(0, len(seg.ids), methods.prefill_chunk):
                parts.append(methods.token_embedding(torch.tensor([seg.ids[i : i + methods.prefill_chunk]])))
        else:
            if image is None or seg.tile >= image.shape[0] or image.shape[1] != seg.num_tokens:
                got = None if image is None else tuple(image.shape)
                raise ContractError(
                    f"the layout wants tile {seg.tile} with {seg.num_tokens} tokens, but vision_encoder gave {got}; "
                    "check vision.tokens_per_tile against the model"
                )
            parts.append(image[seg.tile].unsqueeze(0))
    return torch.cat(parts, dim=1)


def prefill(methods: ModelMethods, embeds: torch.Tensor, start_pos: int, chunk: int) -> torch.Tensor:
    """Write ``embeds [1, T, D]`` into the KV cache from ``start_pos`` in chunks of ``chunk``; return the last logits."""
    import torch

    logits = None
    for i in range(0, embeds.shape[1], chunk):
        logits = methods.text_decoder(embeds[:, i : i + chunk], torch.tensor([start_pos + i]))
    if logits is None:
        raise ContextOverflowError("nothing to prefill: the prompt is empty")
    return logits


def decode_one_token(methods: ModelMethods, token: int, pos: int) -> torch.Tensor:
    """Feed one token at ``pos``; return the next token's logits."""
    import torch

    return methods.text_decoder(methods.token_embedding(torch.tensor([[token]])), torch.tensor([pos]))


def decode_n_tokens(
    methods: ModelMethods,
    logits: torch.Tensor,
    pos: int,
    n: int,
    *,
    pick: Callable[[torch.Tensor], int],
    stop_ids: Sequence[int],
    on_token: Callable[[int], None] | None = None,
) -> tuple[list[int], str]:
    """Generate up to ``n`` tokens from the prefill's ``logits``, the next free position being ``pos``.

    Returns:
        tuple[list[int], str]: the tokens (a stop token included) and the stop reason
        ("eos", "max_new_tokens" or "context_full"). The last token is never fed to the decoder.
    """
    tokens: list[int] = []
    while True:
        token = pick(logits)
        tokens.append(token)
        if on_token is not None:
            on_token(token)
        if token in stop_ids:
            return tokens, "eos"
        if len(tokens) >= n:
            return tokens, "max_new_tokens"
        if pos >= methods.max_context_len:
            return tokens, "context_full"
        logits = decode_one_token(methods, token, pos)
        pos += 1


# --------------------------------------------------------------------------- the session


@dataclass(frozen=True)
class _Plan:
    """A turn laid out and sized, before any pixel is decoded or any model call."""

    segments: list[Segment]
    num_positions: int
    tiles: Any = None
    """The vision TilePlan of a new image, or None."""
    token_budget: int | None = None
    """The image-token budget that shrank the grid, or None."""


class Session:
    """A conversation over one model: holds the KV cache's contents between turns.

    Args:
        methods (ModelMethods): the backend (``EagerMethods`` or ``PteMethods``).
        tokenizer: a ``tokenizers.Tokenizer`` of the model.
        prompt (PromptFormat): the model's chat template and image layout.
        vision (VisionConfig): how images become tiles (tokens per tile included).
        eos_ids (Sequence[int]): token ids that end an answer.
        generation (GenerationConfig): sampling and length. Default ``GenerationConfig()``.
        model_load_ms (tuple[float, float]): load start and end timestamps, copied into every
            answer's stats. Default (0, 0).

    Raises:
        ModelLoadError: the tokenizer lacks a special token of ``prompt``.

    Example:
        >>> session = Session.from_dir("tiny-model/", runtime=RuntimeConfig(max_context_len=1024))  # doctest: +SKIP
        >>> session.ask("What colour is the square?", "shapes.png", on_token=print).stats.grid  # doctest: +SKIP
        (3, 2)
        >>> session.ask("And the circle?").stats.num_tiles  # same image: nothing re-encoded  # doctest: +SKIP
        0
    """

    def __init__(
        self,
        methods: ModelMethods,
        *,
        tokenizer: Any,
        prompt: PromptFormat,
        vision: VisionConfig,
        eos_ids: Sequence[int],
        generation: GenerationConfig = GenerationConfig(),
        model_load_ms: tuple[float, float] = (0.0, 0.0),
    ) -> None:
        self.methods = methods
        self.tokenizer = tokenizer
        self.prompt = prompt
        self.vision = vision
        self.eos_ids = tuple(eos_ids)
        self.generation = generation
        self.model_load_ms = model_load_ms
        self.token_ids = special_token_ids(tokenizer, prompt)
        self.reset()

    @classmethod
    def from_dir(
        cls,
        path: str | Path,
        *,
        runtime: RuntimeConfig = RuntimeConfig(),
        generation: GenerationConfig = GenerationConfig(),
    ) -> Session:
        """Open a model directory (eager checkpoint, exported program, or ``builtin:<preset>``); see :func:`open_backend`."""
        b = open_backend(path, runtime)
        return cls(
            b.methods,
            tokenizer=b.tokenizer,
            prompt=b.prompt,
            vision=b.vision,
            eos_ids=b.eos_ids,
            generation=generation,
            model_load_ms=(b.model_load_start_ms, b.model_load_end_ms),
        )

    @property
    def position(self) -> int:
        """KV-cache positions holding the conversation so far."""
        return self._pos

    def reset(self) -> None:
        """Forget the conversation (the next question starts at position 0) and reseed sampling."""
        self._pos = 0
        self._unfed: list[int] = []
        self._started = False
        self._generator = make_generator(self.generation.seed)

    def _encode(self, text: str) -> list[int]:
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def _plan(self, question: str, image: Any, token_budget: int | None = None, styled: bool = True) -> _Plan:
        """Lay the turn out and size it; no model call. Shrinks the grid if the image does not fit.

        ``token_budget`` caps the image tokens of a new image (a user's choice, e.g. the demo's
        slider); the grid shrinks further if even that does not fit the context.

        A new image starts a new conversation at position 0; the session's state is left as it
        is until the plan has passed every check.
        """
        check_question(question)
        if styled:  # the model's prompt style, after the emptiness check
            question = self.prompt.style_question(question)
        if image is None:
            if self._started:
                segs = next_turn(self.prompt, question, encode=self._encode, unfed_answer=self._unfed)
            else:
                segs = first_turn(self.prompt, question, encode=self._encode, token_ids=self.token_ids)
            return self._checked(_Plan(segs, count_positions(segs)), self._pos)
        from mobile_mllm.vision import plan_tiles, read_image_size

        size = read_image_size(image, self.vision)  # the header only: pixels wait until the plan fits
        # The image must leave room for the answer: a bigger grid is worth less than an answer.
        room = self.methods.max_context_len - self.generation.max_new_tokens
        plan = self._image_plan(question, plan_tiles(size, self.vision, token_budget=token_budget), token_budget)
        while plan.num_positions > room:
            budget = plan.tiles.image_tokens - (plan.num_positions - room)
            try:
                smaller = plan_tiles(size, self.vision, token_budget=budget)
            except ContextOverflowError as e:  # not even the smallest grid: _checked reports it
                logger.debug("no grid fits %d image tokens: %s", budget, e)
                break
            if smaller.image_tokens >= plan.tiles.image_tokens:
                break
            logger.info(
                "grid %s needs %d positions, %d more than leave room for %d answer tokens in max_context_len %d; "
                "reduced to grid %s",
                plan.tiles.grid, plan.num_positions, plan.num_positions - room, self.generation.max_new_tokens,
                self.methods.max_context_len, smaller.grid,
            )
            plan = self._image_plan(question, smaller, budget)
        return self._checked(plan, 0)

    def _image_plan(self, question: str, tiles: Any, budget: int | None) -> _Plan:
        block = image_block(
            self.prompt,
            grid=tiles.grid,
            thumbnail_index=tiles.thumbnail_index,
            tokens_per_tile=self.vision.tokens_per_tile,
            token_ids=self.token_ids,
            encode=self._encode,
        )
        segs = first_turn(self.prompt, question, encode=self._encode, token_ids=self.token_ids, image=block)
        return _Plan(segs, count_positions(segs), tiles, budget)

    def _checked(self, plan: _Plan, start: int) -> _Plan:
        free = self.methods.max_context_len - start
        if plan.num_positions > free:
            used = f" ({start} hold earlier turns: reset() starts over)" if start else ""
            raise ContextOverflowError(
                f"the prompt needs {plan.num_positions} positions but only {free} of max_context_len "
                f"{self.methods.max_context_len} are free{used}; shorten the prompt, use a smaller image grid "
                "or raise max_context_len"
            )
        return plan

    def check(self, question: str, image: Any = None, *, styled: bool = True) -> None:
        """Raise what :meth:`ask` would raise before computing (empty question, image, context), computing nothing.

        Lets a caller refuse a turn before showing it (``mobile-mllm run`` echoes the question).
        """
        self._plan(question, image, styled=styled)

    def ask(
        self,
        question: str,
        image: Any = None,
        *,
        on_token: Callable[[str], None] | None = None,
        token_budget: int | None = None,
        styled: bool = True,
    ) -> Answer:
        """Answer ``question`` (about ``image``, which starts a new conversation; without it, continue this one).

        Args:
            question (str): the user's text (may hold the image placeholder).
            image: a path, bytes, PIL image or array, or None to ask about the current image.
            on_token (Callable[[str], None] | None): called with each new piece of answer text.
            token_budget (int | None): most image tokens for a new image (a smaller grid is
                chosen if the policy's grid needs more). Default None: only the context limits it.
            styled (bool): word the question in the model's prompt style (``PromptFormat.question_template``).
                False takes it as-is: for prompts that already carry their own answer-format
                instruction (eval's VLMEvalKit prompts), which a non-identity template would style twice.

        Raises:
            ConfigError: the question is empty or whitespace only.
            ContextOverflowError: the turn does not fit the KV cache (raised before any compute).
            ImageError: the image cannot be loaded.
        """
        start = now_ms()
        plan = self._plan(question, image, token_budget, styled)  # every check, before any compute
        if image is not None:
            self.reset()
        marks: dict[str, Any] = {"inference_start_ms": start, "num_cached_tokens": self._pos}
        image_embeds = self._encode_image(image, plan, marks) if plan.tiles is not None else None
        embeds = embed_segments(self.methods, plan.segments, image_embeds)
        logits = prefill(self.methods, embeds, self._pos, self.methods.prefill_chunk)
        self._pos += plan.num_positions
        self._started = True
        marks["prompt_eval_end_ms"] = now_ms()
        tokens, reason = decode_n_tokens(
            self.methods, logits, self._pos, self.generation.max_new_tokens,
            pick=self._pick, stop_ids=self.eos_ids, on_token=self._streamer(on_token, marks),
        )
        self._pos += len(tokens) - 1  # every token but the last was fed to the decoder
        self._unfed = [] if reason == "eos" else tokens[-1:]
        marks["inference_end_ms"] = now_ms()
        stats = Stats(
            model_load_start_ms=self.model_load_ms[0],
            model_load_end_ms=self.model_load_ms[1],
            num_prompt_tokens=plan.num_positions,
            num_image_tokens=sum(s.num_tokens for s in plan.segments if isinstance(s, TileRef)),
            num_generated_tokens=len(tokens),
            peak_rss_bytes=peak_rss_bytes(),
            **marks,
        )
        logger.debug("stats: %s", stats.to_json())
        return Answer(text=self._decode(tokens), tokens=tuple(tokens), stop_reason=reason, stats=stats)

    def _encode_image(self, image: Any, plan: _Plan, marks: dict[str, Any]) -> torch.Tensor:
        """Decode and tile the image as planned, encode the tiles in batches; record the image stats in ``marks``."""
        from mobile_mllm.vision import preprocess

        tiles = preprocess(image, self.vision, token_budget=plan.token_budget)
        assert tiles.grid == plan.tiles.grid  # same header size and budget: same grid as planned
        marks["image_encode_start_ms"] = now_ms()
        batch = self.methods.max_tile_batch
        embeds, batch_ms = encode_tiles(self.methods, tiles.tiles, batch)
        num_tiles = tiles.tiles.shape[0]
        marks.update(
            image_encode_end_ms=now_ms(),
            vision_batch_ms=tuple(batch_ms),
            vision_batch_sizes=tuple(min(batch, num_tiles - i) for i in range(0, num_tiles, batch)),
            num_tiles=num_tiles,
            grid=(tiles.grid.cols, tiles.grid.rows),
            reduced_by_budget=tiles.reduced_by_budget,
        )
        return embeds

    def _streamer(self, on_token: Callable[[str], None] | None, marks: dict[str, Any]) -> Callable[[int], None]:
        """A per-token callback: stamps the first token and passes new answer text to ``on_token``.

        The whole answer is decoded each time and only the new suffix is passed on, because a
        byte-level BPE token may hold half a character that the next token completes.
        """
        generated: list[int] = []
        shown = [""]

        def callback(token: int) -> None:
            if not generated:
                marks["first_token_ms"] = now_ms()
            generated.append(token)
            if on_token is not None:
                text = self._decode(generated)
                if len(text) > len(shown[0]) and text.startswith(shown[0]):
                    on_token(text[len(shown[0]) :])
                    shown[0] = text

        return callback

    def _pick(self, logits: torch.Tensor) -> int:
        g = self.generation
        return sample(logits, temperature=g.temperature, top_k=g.top_k, top_p=g.top_p, generator=self._generator)

    def _decode(self, tokens: Sequence[int]) -> str:
        return self.tokenizer.decode([t for t in tokens if t not in self.eos_ids], skip_special_tokens=True)


# --------------------------------------------------------------------------- backends


def open_backend(path: str | Path, runtime: RuntimeConfig = RuntimeConfig()) -> Backend:
    """Open a model for the session, choosing the backend by what ``path`` holds.

    * a directory with ``model.pte`` (``contract.PROGRAM_FILE``): the exported program, through
      ``mobile_mllm.runtime.pte.open_program_dir(path, runtime) -> Backend`` (its static sizes
      win over ``runtime``);
    * a directory whose manifest has ``static_programs`` (a ``--simulate`` MediaTek export): its
      graphs through the static-shape runner, ``mobile_mllm.runtime.static.open_static_dir``;
    * ``builtin:<preset>`` or a checkpoint directory: the eager model from ``mobile_mllm.model``.

    Raises:
        UnsupportedModelError: nothing loadable at ``path``.
    """
    from mobile_mllm.model.registry import BUILTIN_PREFIX

    from mobile_mllm.export.manifest import has_static_programs

    text = str(path)
    if not text.startswith(BUILTIN_PREFIX) and (Path(text) / contract.PROGRAM_FILE).is_file():
        from mobile_mllm.runtime.pte import open_program_dir

        return open_program_dir(Path(text), runtime)
    if not text.startswith(BUILTIN_PREFIX) and has_static_programs(text):
        from mobile_mllm.runtime.static import open_static_dir

        return open_static_dir(Path(text), runtime)
    return _open_eager(text, runtime)


def _open_eager(path: str, runtime: RuntimeConfig) -> Backend:
    from mobile_mllm.model import load_model
    from mobile_mllm.runtime.eager import EagerMethods

    start = now_ms()
    model = load_model(path, max_context_len=runtime.max_context_len)
    end = now_ms()
    logger.info("loaded %s model from %s in %.0f ms (max_context_len %d)", model.family, path, end - start, model.max_context_len)
    methods = EagerMethods(model, tile_batch=runtime.tile_batch, prefill_chunk=runtime.prefill_chunk)
    return Backend(
        methods=methods,
        tokenizer=model.tokenizer,
        prompt=model.prompt,
        vision=model.vision,
        eos_ids=model.eos_ids,
        model_load_start_ms=start,
        model_load_end_ms=end,
    )
