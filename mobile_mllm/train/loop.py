"""Train a reference-family model on synthetic visual questions: seeded, checkpointed, resumable.

:func:`train_reference` starts from the model package's own random initialisation
(``write_random_reference``, so the weights at step 0 depend only on the seed) or from the
weights of a model directory (``init_from``), and runs AdamW with linear warm-up and cosine
decay. The vision encoder and the decoder are trained together (all parameters); the loss is
next-token cross-entropy on the answer tokens only. The training forward pass is the HF
decoder over ``inputs_embeds`` (image embeddings scattered into the token embeddings at the
positions the runtime's layout gives them), which shares its parameters with the contract
modules, so what is trained is exactly what ``Session`` and export run.

Output directory::

    checkpoint.pt        fp32 weights + optimiser state + step: an interrupted run resumes exactly
    train_config.json    the resolved TrainConfig
    train_log.jsonl      one line per log interval (loss, lr, samples/s, data wait)
    model/               the model directory (fp16), written when the run ends or stops at its time limit

Run again with the same ``-o`` to resume from ``checkpoint.pt`` (the data stream continues at the
next sample: every sample is a pure function of (seed, index)). ``time_limit_s`` stops a run
cleanly (checkpoint + model) so that a session with a per-command time limit can continue it.

Throughput is bound by small GPU kernels, not data, so several GPUs (``torchrun``,
``train.distributed``) multiply it; the vision encoder can get its own learning rate
(``vision_lr_mult``). The measurements (samples/s per grid cap, data wait, multi-GPU scaling,
learning-rate trials, CPU step time): ``bench/train_reference.md``, "Where the training time goes".
Deliberately not here: the data format (``data.py``), scoring (``evaluate.py``).
"""

from __future__ import annotations

import contextlib
import enum
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mobile_mllm.config import to_dict
from mobile_mllm.errors import ConfigError
from mobile_mllm.eval.synthetic import Kind, SyntheticSpec
from mobile_mllm.train.distributed import World, init_world

if TYPE_CHECKING:
    import torch

    from mobile_mllm.model.adapter import MultimodalModel
    from mobile_mllm.train.data import Batch

logger = logging.getLogger(__name__)

__all__ = [
    "CHECKPOINT_FILE",
    "MODEL_SUBDIR",
    "Device",
    "LossWeighting",
    "TrainConfig",
    "TrainResult",
    "answer_loss",
    "build_vision_config",
    "export_model",
    "loss_count",
    "load_checkpoint",
    "make_optimizer",
    "save_checkpoint",
    "train_reference",
    "training_spec",
]

CHECKPOINT_FILE = "checkpoint.pt"
MODEL_SUBDIR = "model"
_CONFIG_FILE = "train_config.json"
_LOG_FILE = "train_log.jsonl"
_RESUME_KEYS = ("preset", "seed", "batch_size", "lr", "grid_jitter", "content_crop", "small_text_px", "init_from")
"""TrainConfig fields a resumed run must share with the checkpoint (others may change)."""


class Device(str, enum.Enum):
    """Where the training step runs."""

    CPU = "cpu"
    CUDA = "cuda"


class LossWeighting(str, enum.Enum):
    """What the training loss averages over.

    ``token``: every answer token counts the same, so a long answer (a description, a chart's
    values) outweighs a one-token option letter or yes/no many times over. ``example``: every
    example counts the same (its tokens averaged first), which gives the short MCQ and yes/no
    answers their share once descriptions have done their job of teaching the model to see.
    An example is one answer (a labelled run: answer tokens and stop token): a conversation row
    (``chat_dialogues``) counts each of its answers once, like rows of one answer each.
    """

    TOKEN = "token"
    EXAMPLE = "example"


@dataclass(frozen=True)
class TrainConfig:
    """Settings of ``mobile-mllm train-reference``."""

    preset: str = "synth-small"
    """Architecture preset of the reference family."""
    steps: int = 6000
    """Optimiser steps of the whole run (the learning-rate schedule spans them)."""
    batch_size: int = 64
    """Drawn images per step (each gives ``questions_per_image`` examples)."""
    questions_per_image: int = 1
    """Examples per drawn image, sharing its tiles: 1 = the drawn question (or the description,
    see ``describe``); Q > 1 = the drawn question, the description, then the same fact in the
    other forms (``train.data``). Rendering and tiling limit throughput, so Q answers per image
    cost little more than one."""
    seed: int = 0
    """Seed of the initial weights and of the training data stream."""
    device: Device = Device.CPU
    """cpu or cuda (bf16 autocast on cuda)."""
    lr: float = 1e-3
    """Peak learning rate of AdamW."""
    min_lr_ratio: float = 0.05
    """Final learning rate as a fraction of lr (cosine decay)."""
    warmup_steps: int = 200
    """Linear warm-up steps."""
    weight_decay: float = 0.05
    """AdamW weight decay (matrices only)."""
    grad_clip: float = 1.0
    """Gradient-norm clip (0 disables)."""
    num_workers: int = 0
    """DataLoader worker processes rendering and tiling images (0: in the main process)."""
    grid_jitter: float = 0.4
    """Probability that a sample is tiled with another grid (see train.data.JITTER_VARIANTS)."""
    content_crop: float = 0.3
    """Probability that a sample's image is cropped to its content (close-ups that bootstrap learning)."""
    small_text_px: tuple[int, int] = (48, 72)
    """Font size range of the generator's small text (legible on a 3x3 grid of 96 px tiles, not on the thumbnail)."""
    number_fraction: float = 0.35
    """Share of text questions showing a number, not a word (benchmark: 0.35); raise it to drill digits.

    Numbers need every digit right and are read far worse than the generator's 30 words."""
    checkpoint_every: int = 1000
    """Steps between checkpoints (and at the end)."""
    log_every: int = 50
    """Steps between log lines."""
    time_limit_s: float = 0.0
    """Stop cleanly (checkpoint + model) after this many seconds; 0: no limit."""
    init_from: str | None = None
    """A model directory whose weights start the run instead of random ones (a second phase)."""
    kinds: tuple[Kind, ...] = tuple(Kind)
    """Question kinds drawn (a curriculum's first phase leaves out text and charts)."""
    image_max_side_px: int = 1536
    """Largest long side of a generated image (small images tile faster)."""
    max_side: int = 0
    """Cap on the grid side for every sample (0: the model's 3x3); 1 or 2 makes a fast first phase."""
    describe: float = 0.0
    """Probability of the dense "describe" task instead of the drawn question (train.data.describe_sample)."""
    vision_lr_mult: float = 1.0
    """Learning rate of the vision encoder (tower + bridge) as a multiple of lr."""
    loss_weighting: LossWeighting = LossWeighting.TOKEN
    """Mean of the loss over answer tokens (``token``) or over examples (``example``; see LossWeighting)."""
    chat_dialogues: int = 0
    """Extra rows per drawn image, each a conversation (plain questions, a description, follow-ups;
    ``train.data.chat_dialogue``); 0: none, the data of earlier phases unchanged."""
    chat_turns: int = 4
    """Most turns of one conversation row."""
    chat_follow_ups: int = 0
    """Extra rows per drawn image, each a conversation with a benchmark question as its follow-up
    (``train.data.follow_up_dialogue``); 0: none."""
    chat_where: int = 0
    """Extra rows per drawn image that has an object clearly on a side, each an opener and then
    "What shape is on the left?"-style questions (``train.data.where_dialogue``); 0: none."""
    hard_reasks: bool = False
    """Re-asked questions take hard negatives: wrong answers the image suggests (others' colours, opposite relation).

    Re-asked questions are those of ``questions_per_image`` beyond 1 + the number of forms."""

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "checkpoint_every", "log_every", "questions_per_image"):
            if getattr(self, name) < 1:
                raise ConfigError(f"train.{name} must be >= 1, got {getattr(self, name)}")
        if self.lr <= 0 or not 0 <= self.min_lr_ratio <= 1:
            raise ConfigError(f"train.lr must be > 0 and train.min_lr_ratio in [0, 1], got {self.lr} and {self.min_lr_ratio}")
        if self.num_workers < 0 or self.warmup_steps < 0 or self.time_limit_s < 0:
            raise ConfigError("train.num_workers, train.warmup_steps and train.time_limit_s must be >= 0")
        for name in ("chat_dialogues", "chat_follow_ups", "chat_where"):
            if getattr(self, name) < 0:
                raise ConfigError(f"train.{name} (extra rows per image) must be >= 0, got {getattr(self, name)}")
        if self.chat_turns < 1:
            raise ConfigError(f"train.chat_turns must be >= 1, got {self.chat_turns}")


@dataclass(frozen=True)
class TrainResult:
    """What a (possibly partial) training run did."""

    output: Path
    model_dir: Path
    start_step: int
    end_step: int
    finished: bool
    """False when the time limit stopped it (run again to resume)."""
    final_loss: float
    """Mean loss of the last log interval."""
    seconds: float
    samples_per_s: float
    data_wait_fraction: float
    """Share of the wall time the training step waited for data."""


def training_spec(cfg: TrainConfig) -> SyntheticSpec:
    """The generator settings training draws from (all kinds and forms, the model's small-text size)."""
    return SyntheticSpec(kinds=cfg.kinds, small_text_px=cfg.small_text_px, max_side_px=cfg.image_max_side_px,
                         number_fraction=cfg.number_fraction)


def build_vision_config(model_cfg: Any) -> Any:
    """The vision config stored with a trained model: the architecture's, with bilinear resampling.

    Bilinear (antialiased in Pillow when shrinking) is about twice as fast as bicubic on
    1500 px images, and tiling is the bottleneck of training; the model is trained and run with it.
    """
    from mobile_mllm.model.reference.config import default_vision_config
    from mobile_mllm.vision.tiling import Resample

    return default_vision_config(model_cfg, resample=Resample.BILINEAR)


def _lr_at(cfg: TrainConfig, step: int) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


def answer_loss(model: MultimodalModel, batch: Batch, weighting: LossWeighting = LossWeighting.TOKEN) -> torch.Tensor:
    """Cross-entropy of the answer tokens of ``batch`` (teacher forcing, one forward pass).

    Image embeddings from ``model.vision_encoder`` (each image encoded once, however many rows
    ask about it: ``batch.image_index``) replace the token embeddings at ``batch.image_mask``; logits are computed only where the next token is labelled.
    ``weighting`` says what the mean is over: every answer token, or every example (each row's
    tokens averaged first; see :class:`LossWeighting`).
    """
    import torch

    decoder = model.extra["hf_decoder"]
    image = model.vision_encoder(batch.tiles)
    embeds = decoder.get_input_embeddings()(batch.ids)
    image = image.reshape(-1, image.shape[-1])[batch.image_index]
    embeds = embeds.masked_scatter(batch.image_mask.unsqueeze(-1), image.to(embeds.dtype))
    hidden = decoder.model(inputs_embeds=embeds, attention_mask=batch.attention_mask, use_cache=False).last_hidden_state
    targets = batch.labels[:, 1:]
    keep = targets != -100
    logits = decoder.lm_head(hidden[:, :-1][keep])
    if weighting is LossWeighting.TOKEN:
        return torch.nn.functional.cross_entropy(logits.float(), targets[keep])
    per_token = torch.nn.functional.cross_entropy(logits.float(), targets[keep], reduction="none")
    answer_of_token = _answer_runs(keep)
    tokens_per_answer = torch.bincount(answer_of_token)
    answers = max(1, len(tokens_per_answer))
    return (per_token / tokens_per_answer[answer_of_token]).sum() / answers


def _answer_starts(keep: torch.Tensor) -> torch.Tensor:
    """``[B, T]`` bool: where an answer starts, an answer being a run of consecutive labelled
    positions of one row (``keep``; a conversation row holds one run per turn)."""
    starts = keep.clone()
    starts[:, 1:] &= ~keep[:, :-1]
    return starts


def _answer_runs(keep: torch.Tensor) -> torch.Tensor:
    """For each True of ``keep`` (row-major), the number of its answer (:func:`_answer_starts`)."""
    import torch

    return (torch.cumsum(_answer_starts(keep).flatten().long(), 0) - 1)[keep.flatten()]


def loss_count(batch: Batch, weighting: LossWeighting = LossWeighting.TOKEN) -> int:
    """What :func:`answer_loss` of ``batch`` is a mean over: its answer tokens, or its answers."""
    keep = batch.labels[:, 1:] != -100
    return int(keep.sum()) if weighting is LossWeighting.TOKEN else int(_answer_starts(keep).sum())


def _trainable(model: MultimodalModel) -> list[torch.nn.Module]:
    return [model.vision_encoder, model.extra["hf_decoder"]]


def make_optimizer(model: MultimodalModel, cfg: TrainConfig) -> torch.optim.Optimizer:
    import torch

    groups = []
    for module, mult in zip(_trainable(model), (cfg.vision_lr_mult, 1.0)):
        decay = [p for p in module.parameters() if p.dim() >= 2]
        no_decay = [p for p in module.parameters() if p.dim() < 2]
        groups += [
            {"params": decay, "weight_decay": cfg.weight_decay, "lr_mult": mult},
            {"params": no_decay, "weight_decay": 0.0, "lr_mult": mult},
        ]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.98), eps=1e-8)


def save_checkpoint(path: Path, model: MultimodalModel, optimizer: torch.optim.Optimizer, step: int, cfg: TrainConfig) -> None:
    """Write weights (fp32), optimiser state and step atomically (temporary name, then rename)."""
    import torch

    state = {
        "step": step,
        "vision_encoder": model.vision_encoder.state_dict(),
        "decoder": model.extra["hf_decoder"].state_dict(),
        "optimizer": optimizer.state_dict(),
        "config": to_dict(cfg),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)
    logger.info("checkpoint at step %d -> %s", step, path)


def load_checkpoint(path: Path, model: MultimodalModel, optimizer: torch.optim.Optimizer, cfg: TrainConfig) -> int:
    """Restore weights and optimiser state from ``path``; return the step to continue from.

    Raises:
        ConfigError: the checkpoint was made with a different preset, seed, batch size,
            learning rate, jitter, text size or initial weights (naming each difference).
    """
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    saved, now = state["config"], to_dict(cfg)
    diffs = [f"{k}: checkpoint {saved.get(k)!r}, now {now.get(k)!r}" for k in _RESUME_KEYS if saved.get(k) != now.get(k)]
    if diffs:
        raise ConfigError(
            f"{path} was made with other settings ({'; '.join(diffs)}); use the same flags to resume, "
            "or another output directory to start over"
        )
    model.vision_encoder.load_state_dict(state["vision_encoder"])
    model.extra["hf_decoder"].load_state_dict(state["decoder"])
    optimizer.load_state_dict(state["optimizer"])
    return int(state["step"])


def _initial_model(cfg: TrainConfig, work: Path) -> MultimodalModel:
    """A float32 model: random (deterministic in the seed) or the weights of ``cfg.init_from``."""
    from mobile_mllm.model.reference.checkpoint import load_reference, write_random_reference
    from mobile_mllm.model.reference.presets import preset_config

    if cfg.init_from:
        from mobile_mllm.model.registry import resolve_model_path

        source = resolve_model_path(cfg.init_from)
    else:
        model_cfg = preset_config(cfg.preset)
        source = write_random_reference(model_cfg, work, seed=cfg.seed, vision=build_vision_config(model_cfg))
    model = load_reference(source, max_context_len=8)
    if model.extra["config"].variant != cfg.preset:
        raise ConfigError(f"init_from {cfg.init_from} is a {model.extra['config'].variant!r} model, not preset {cfg.preset!r}")
    if not cfg.init_from:
        _scale_bridge_init(model, cfg.seed)
    for module in _trainable(model):
        module.requires_grad_(True)
    return model


def _scale_bridge_init(model: MultimodalModel, seed: int) -> None:
    """Re-draw the downsampler and projector weights with std 1/sqrt(fan_in).

    With every weight at std 0.02 (the checkpoint writer's LLM-style default) the three small
    linears between tower and decoder shrink the image embeddings to ~0.007 with ~0.0006
    between tokens, 30x weaker than text embeddings, and training sits on a text-only plateau
    (how long: ``bench/train_reference.md``, "Where the training time goes"). Unit-gain layers
    give image tokens the decoder can see from the first step.
    """
    import torch

    generator = torch.Generator().manual_seed(seed + 1)
    vision = model.vision_encoder
    with torch.no_grad():
        for linear in (vision.downsampler.linear, vision.projector.fc1, vision.projector.fc2):
            linear.weight.normal_(0.0, linear.in_features ** -0.5, generator=generator)


def export_model(model: MultimodalModel, out: Path) -> Path:
    """Write the model directory in fp16 (the training model is left untouched)."""
    import copy

    import torch

    from mobile_mllm.model.reference.checkpoint import save_reference

    frozen = copy.copy(model)
    mods = copy.deepcopy(model.extra["modules"])
    for module in (mods.vision_encoder, mods.hf_decoder):
        module.to(device="cpu", dtype=torch.float16)
    frozen.extra = {**model.extra, "modules": mods}
    return save_reference(frozen, out)


def _loader(cfg: TrainConfig, model: MultimodalModel, start_step: int, world: World) -> Any:
    import torch

    from mobile_mllm.train.data import SyntheticTrainSet, collate_with

    pad_id = model.special_ids[model.prompt.eos[0]]
    dataset = SyntheticTrainSet(
        seed=cfg.seed,
        spec=training_spec(cfg),
        tokenizer=model.tokenizer,
        prompt=model.prompt,
        vision=model.vision,
        grid_jitter=cfg.grid_jitter,
        content_crop=cfg.content_crop,
        describe=cfg.describe,
        max_side=cfg.max_side or None,
        questions_per_image=cfg.questions_per_image,
        hard_reasks=cfg.hard_reasks,
        chat_dialogues=cfg.chat_dialogues,
        chat_turns=cfg.chat_turns,
        chat_follow_ups=cfg.chat_follow_ups,
        chat_where=cfg.chat_where,
        pad_id=pad_id,
        length=cfg.steps * cfg.batch_size,
    )
    batches = [world.shard(list(range(s * cfg.batch_size, (s + 1) * cfg.batch_size))) for s in range(start_step, cfg.steps)]
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=batches,
        collate_fn=collate_with(pad_id),
        num_workers=cfg.num_workers,
        pin_memory=cfg.device is Device.CUDA,
        worker_init_fn=_worker_init if cfg.num_workers else None,
        prefetch_factor=4 if cfg.num_workers else None,
        persistent_workers=False,
    )


def _worker_init(_: int) -> None:
    import torch

    torch.set_num_threads(1)


def train_reference(
    cfg: TrainConfig, output: str | Path, *, on_progress: Callable[[dict[str, Any]], None] | None = None
) -> TrainResult:
    """Train (or resume training) a reference-family model on the synthetic generator.

    Started by ``torchrun`` with several processes, each trains on its share of every batch
    and the gradients are averaged (``train.distributed``); rank 0 alone writes the log,
    checkpoints and the model, and the run is the same as one process with the same flags.

    Args:
        cfg (TrainConfig): the run's settings.
        output (str | Path): the run directory (see the module docstring); resumed when it holds a checkpoint.
        on_progress (Callable[[dict], None] | None): called with each log record (on rank 0).

    Returns:
        TrainResult: steps done, final loss, throughput, where the model went.

    Raises:
        ConfigError: bad settings, cuda asked for but absent, a batch the processes cannot share
            evenly, or a checkpoint made with other settings.
    """
    import torch

    out = Path(output)
    if cfg.device is Device.CUDA and not torch.cuda.is_available():
        raise ConfigError("train.device is cuda but torch sees no CUDA device; use --device cpu")
    world = init_world(cfg.device.value)
    try:
        if cfg.batch_size % world.world_size:
            raise ConfigError(f"train.batch_size ({cfg.batch_size}) must be divisible by the number of processes "
                              f"({world.world_size}): it is the global batch, shared evenly")
        return _train(cfg, out, world, on_progress)
    finally:
        world.close()


def _train(cfg: TrainConfig, out: Path, world: World, on_progress: Callable[[dict[str, Any]], None] | None) -> TrainResult:
    import tempfile

    import torch

    device = torch.device("cuda", world.local_rank) if cfg.device is Device.CUDA else torch.device("cpu")
    if world.is_main:
        out.mkdir(parents=True, exist_ok=True)
    world.barrier()
    torch.manual_seed(cfg.seed)
    with tempfile.TemporaryDirectory() as work:
        model = _initial_model(cfg, Path(work))
    optimizer = make_optimizer(model, cfg)
    checkpoint = out / CHECKPOINT_FILE
    start_step = load_checkpoint(checkpoint, model, optimizer, cfg) if checkpoint.is_file() else 0
    for module in _trainable(model):
        module.to(device).train()
    _move_optimizer_state(optimizer, device)
    params = [p for m in _trainable(model) for p in m.parameters()]
    if world.is_main:
        (out / _CONFIG_FILE).write_text(json.dumps(to_dict(cfg), indent=2) + "\n", encoding="utf-8")
    logger.info("training %s from step %d to %d on %s (batch %d over %d process(es), %d workers each)",
                cfg.preset, start_step, cfg.steps, device, cfg.batch_size, world.world_size, cfg.num_workers)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()
    started = time.perf_counter()
    wait = 0.0
    window: list[float] = []
    step = start_step
    finished = True
    last_loss = float("nan")
    tick = time.perf_counter()
    with contextlib.ExitStack() as stack:
        log = stack.enter_context((out / _LOG_FILE).open("a", encoding="utf-8")) if world.is_main else None
        for batch in _loader(cfg, model, start_step, world):
            wait += time.perf_counter() - tick
            scale = world.loss_scale(loss_count(batch, cfg.loss_weighting), device)
            batch = batch.to(device)
            for group in optimizer.param_groups:
                group["lr"] = _lr_at(cfg, step) * group.get("lr_mult", 1.0)
            with autocast:
                loss = answer_loss(model, batch, cfg.loss_weighting)
            optimizer.zero_grad(set_to_none=True)
            (loss * scale).backward()
            world.average_gradients(params)
            if cfg.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            step += 1
            elapsed = time.perf_counter() - started
            # one collective: the global mean loss (the ranks' scaled losses, averaged) and whether any
            # rank's clock passed the time limit (so that every rank stops at the same step)
            loss_sum, ranks_over = world.sum_all([float(loss.detach()) * scale, float(elapsed > cfg.time_limit_s > 0)], device)
            window.append(loss_sum / world.world_size)
            if log is not None and (step % cfg.log_every == 0 or step == cfg.steps):
                last_loss = sum(window) / len(window)
                record = {
                    "step": step, "loss": round(last_loss, 5), "lr": _lr_at(cfg, step - 1), "elapsed_s": round(elapsed, 1),
                    "samples_per_s": round((step - start_step) * cfg.batch_size / elapsed, 1),
                    "data_wait_fraction": round(wait / elapsed, 3),
                }
                window = []
                log.write(json.dumps(record) + "\n")
                log.flush()
                logger.info("step %(step)d loss %(loss).4f lr %(lr).2e %(samples_per_s).0f samples/s data wait %(data_wait_fraction).0f%%",
                            {**record, "data_wait_fraction": 100 * record["data_wait_fraction"]})
                if on_progress is not None:
                    on_progress(record)
            if world.is_main and step % cfg.checkpoint_every == 0 and step < cfg.steps:
                save_checkpoint(checkpoint, model, optimizer, step, cfg)
            if ranks_over > 0 and step < cfg.steps:
                logger.info("time limit %.0f s reached at step %d of %d; run again to resume", cfg.time_limit_s, step, cfg.steps)
                finished = False
                break
            tick = time.perf_counter()
    if window:
        last_loss = sum(window) / len(window)
    seconds = time.perf_counter() - started
    model_dir = out / MODEL_SUBDIR
    if world.is_main:
        if step > start_step:
            save_checkpoint(checkpoint, model, optimizer, step, cfg)
        model_dir = export_model(model, model_dir)
    world.barrier()
    return TrainResult(
        output=out,
        model_dir=model_dir,
        start_step=start_step,
        end_step=step,
        finished=finished and step >= cfg.steps,
        final_loss=last_loss,
        seconds=seconds,
        samples_per_s=(step - start_step) * cfg.batch_size / max(seconds, 1e-9),
        data_wait_fraction=wait / max(seconds, 1e-9),
    )


def _move_optimizer_state(optimizer: torch.optim.Optimizer, device: torch.device) -> None:
    for state in optimizer.state.values():
        for k, v in state.items():
            if hasattr(v, "to") and k != "step":
                state[k] = v.to(device)

