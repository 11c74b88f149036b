"""The training loop: the loss goes down, a resumed run continues exactly, settings are checked."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from mobile_mllm.errors import ConfigError
from mobile_mllm.eval.synthetic import Kind, SyntheticSpec, generate_sample
from mobile_mllm.model import load_model
from mobile_mllm.train.data import build_example, collate
from mobile_mllm.train.loop import (
    CHECKPOINT_FILE,
    TrainConfig,
    answer_loss,
    make_optimizer,
    train_reference,
    training_spec,
)

FAST = TrainConfig(preset="tiny", steps=3, batch_size=2, log_every=1, warmup_steps=1, small_text_px=(20, 30))


def _losses(run: Path) -> dict[int, float]:
    lines = (run / "train_log.jsonl").read_text(encoding="utf-8").splitlines()
    return {r["step"]: r["loss"] for r in map(json.loads, lines)}


def test_answer_loss_falls_when_training_on_a_batch(tiny_dir, small_spec) -> None:
    torch.manual_seed(0)
    model = load_model(tiny_dir, max_context_len=8)
    for module in (model.vision_encoder, model.extra["hf_decoder"]):
        module.requires_grad_(True)
    examples = [
        build_example(generate_sample(11, i, small_spec), tokenizer=model.tokenizer, prompt=model.prompt,
                      vision=model.vision, pad_id=0)
        for i in range(4)
    ]
    batch = collate(examples)
    optimizer = make_optimizer(model, dataclasses.replace(FAST, lr=3e-3))
    losses = []
    for _ in range(6):
        loss = answer_loss(model, batch)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.7 * losses[0], losses


def test_answer_loss_counts_only_labelled_tokens(tiny, small_spec) -> None:
    example = build_example(generate_sample(2, 0, small_spec), tokenizer=tiny.tokenizer, prompt=tiny.prompt,
                            vision=tiny.vision, pad_id=0)
    batch = collate([example])
    with torch.no_grad():
        loss = answer_loss(tiny, batch)
        # Independent reference: the HF causal LM's full logits, cross-entropy over answer positions only.
        decoder = tiny.extra["hf_decoder"]
        embeds = decoder.get_input_embeddings()(batch.ids)
        image = tiny.vision_encoder(batch.tiles)
        embeds[batch.image_mask] = image.reshape(-1, image.shape[-1])
        logits = decoder(inputs_embeds=embeds).logits[0]
    start = example.num_prompt_positions
    targets = example.ids[start:]
    expected = torch.nn.functional.cross_entropy(logits[start - 1 : -1], targets)
    torch.testing.assert_close(loss, expected, rtol=1e-4, atol=1e-4)


def test_example_weighting_averages_each_examples_own_mean_loss(tiny, small_spec) -> None:
    from mobile_mllm.train.data import describe_sample
    from mobile_mllm.train.loop import LossWeighting

    short = generate_sample(2, 0, small_spec)
    examples = [build_example(s, tokenizer=tiny.tokenizer, prompt=tiny.prompt, vision=tiny.vision, pad_id=0)
                for s in (short, describe_sample(short))]
    answer_tokens = [int((e.labels != -100).sum()) for e in examples]
    assert answer_tokens[1] > answer_tokens[0]  # a long and a short answer: the two weightings differ
    batch = collate(examples)
    with torch.no_grad():
        # Reference: each example alone (its mean over its own tokens), then averaged / token-weighted by hand.
        alone = [float(answer_loss(tiny, collate([e]))) for e in examples]
        by_example = float(answer_loss(tiny, batch, LossWeighting.EXAMPLE))
        by_token = float(answer_loss(tiny, batch, LossWeighting.TOKEN))
    assert by_example == pytest.approx(sum(alone) / 2, rel=1e-4)
    assert by_token == pytest.approx(sum(a * n for a, n in zip(alone, answer_tokens)) / sum(answer_tokens), rel=1e-4)
    assert abs(by_example - by_token) > 1e-3


@pytest.mark.slow
def test_resumed_run_gives_the_same_next_step_loss(tmp_path: Path) -> None:
    whole = train_reference(FAST, tmp_path / "whole")
    assert whole.finished and whole.end_step == 3
    stopped = train_reference(dataclasses.replace(FAST, time_limit_s=1e-9), tmp_path / "resumed")
    assert not stopped.finished and stopped.end_step == 1
    assert (tmp_path / "resumed" / CHECKPOINT_FILE).is_file()
    resumed = train_reference(FAST, tmp_path / "resumed")
    assert (resumed.start_step, resumed.end_step, resumed.finished) == (1, 3, True)
    a, b = _losses(tmp_path / "whole"), _losses(tmp_path / "resumed")
    assert a[1] == b[1]
    assert a[2] == pytest.approx(b[2], rel=1e-6, abs=1e-6)
    assert a[3] == pytest.approx(b[3], rel=1e-6, abs=1e-6)
    model = load_model(whole.model_dir, max_context_len=64)
    assert next(model.vision_encoder.parameters()).dtype == torch.float32  # loaded as asked; stored fp16
    header = (whole.model_dir / "config.json").read_text(encoding="utf-8")
    assert '"torch_dtype": "float16"' in header


@pytest.mark.slow
def test_resume_refuses_a_checkpoint_made_with_other_settings(tmp_path: Path) -> None:
    train_reference(dataclasses.replace(FAST, steps=1), tmp_path)
    with pytest.raises(ConfigError, match="seed: checkpoint 0, now 1"):
        train_reference(dataclasses.replace(FAST, seed=1), tmp_path)


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ConfigError, match="train.batch_size must be >= 1"):
        TrainConfig(batch_size=0)
    with pytest.raises(ConfigError, match="min_lr_ratio"):
        TrainConfig(min_lr_ratio=2.0)
    with pytest.raises(ConfigError, match=r"synthetic.number_fraction must be in \[0, 1\], got 1.5"):
        training_spec(TrainConfig(number_fraction=1.5))
    with pytest.raises(ConfigError, match=r"train.chat_where \(extra rows per image\) must be >= 0, got -1"):
        TrainConfig(chat_where=-1)
    with pytest.raises(ConfigError, match="train.chat_turns must be >= 1"):
        TrainConfig(chat_turns=0)


def _shown_texts(spec: SyntheticSpec, n: int = 30) -> list[str]:
    return [generate_sample(7, i, spec).description for i in range(n)]  # the shown text, whatever the form


def test_number_fraction_changes_only_what_text_shows() -> None:
    text_only = TrainConfig(kinds=(Kind.TEXT,), image_max_side_px=400)
    # the default keeps the benchmark's stream: same answers and pixels as a spec that never heard of the field
    reference = SyntheticSpec(kinds=(Kind.TEXT,), small_text_px=(48, 72), max_side_px=400)
    for i in range(10):
        a, b = generate_sample(7, i, training_spec(text_only)), generate_sample(7, i, reference)
        assert (a.question, a.answer, a.image.tobytes()) == (b.question, b.answer, b.image.tobytes())
    default = _shown_texts(reference)
    assert 0 < sum(x.isdigit() for x in default) < len(default)  # the default mixes words and numbers
    assert all(x.isdigit() for x in _shown_texts(training_spec(dataclasses.replace(text_only, number_fraction=1.0))))
    assert not any(x.isdigit() for x in _shown_texts(training_spec(dataclasses.replace(text_only, number_fraction=0.0))))


def test_vision_lr_mult_scales_only_the_vision_encoder_step(tiny_dir, small_spec) -> None:
    """One SGD-like first Adam step moves each weight by ~lr: the vision weights must move 3x as far."""
    model = load_model(tiny_dir, max_context_len=8)
    for module in (model.vision_encoder, model.extra["hf_decoder"]):
        module.requires_grad_(True)
    cfg = dataclasses.replace(FAST, lr=1e-3, weight_decay=0.0, vision_lr_mult=3.0)
    optimizer = make_optimizer(model, cfg)
    for group in optimizer.param_groups:  # what train_reference does each step
        group["lr"] = cfg.lr * group["lr_mult"]
    example = build_example(generate_sample(5, 0, small_spec), tokenizer=model.tokenizer, prompt=model.prompt,
                            vision=model.vision, pad_id=0)
    vision_w = model.vision_encoder.projector.fc1.weight
    decoder_w = model.extra["hf_decoder"].model.layers[0].mlp.up_proj.weight
    before = vision_w.detach().clone(), decoder_w.detach().clone()
    answer_loss(model, collate([example])).backward()
    optimizer.step()
    # Adam's first step is lr * sign(grad) (up to eps) wherever the gradient is non-zero
    v_step = (vision_w.detach() - before[0]).abs().max().item()
    d_step = (decoder_w.detach() - before[1]).abs().max().item()
    assert v_step == pytest.approx(3e-3, rel=1e-3) and d_step == pytest.approx(1e-3, rel=1e-3)


def test_grouped_batch_gives_the_loss_of_its_examples_tiled_one_by_one(tiny, small_spec) -> None:
    """Several questions about one image share its encoding; the loss must not change because of it."""
    from mobile_mllm.train.data import SyntheticTrainSet, collate_groups

    dataset = SyntheticTrainSet(seed=5, spec=small_spec, tokenizer=tiny.tokenizer, prompt=tiny.prompt, vision=tiny.vision,
                                grid_jitter=0.5, content_crop=0.5, pad_id=0, length=3, questions_per_image=4)
    groups = [dataset[i] for i in range(3)]
    assert [len(g) for g in groups] == [4, 4, 4]
    assert all(e.tiles is g[0].tiles for g in groups for e in g)
    grouped = collate_groups(groups)
    # Reference: every example with its own copy of the tiles, as single-question training builds them.
    separate = collate([dataclasses.replace(e, tiles=e.tiles.clone()) for g in groups for e in g])
    assert grouped.tiles.shape[0] * 4 == separate.tiles.shape[0]
    with torch.no_grad():
        torch.testing.assert_close(answer_loss(tiny, grouped), answer_loss(tiny, separate), rtol=1e-5, atol=1e-5)
