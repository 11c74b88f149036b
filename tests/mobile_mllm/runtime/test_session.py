"""Session on the tiny preset: multi-turn reuse, context checks before compute, grid reduction, stats.

The multi-turn reference is a fresh prefill of the whole two-turn prompt (the previous answer's
token ids included), so cache reuse must give exactly the tokens of recomputing everything.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mobile_mllm.errors import ContextOverflowError
from mobile_mllm.runtime.eager import EagerMethods
from mobile_mllm.runtime.layout import TokenRun, first_turn, image_block, next_turn
from mobile_mllm.runtime.sampling import GenerationConfig
from mobile_mllm.runtime.session import Session, decode_n_tokens, embed_segments, encode_tiles, prefill
from mobile_mllm.vision import preprocess

Q1 = "What shape is on the left?"
Q2 = "And what colour is it?"


def _session(model, methods, *, vision=None, **generation) -> Session:
    return Session(
        methods,
        tokenizer=model.tokenizer,
        prompt=model.prompt,
        vision=vision or model.vision,
        eos_ids=generation.pop("eos_ids", model.eos_ids),
        generation=GenerationConfig(**generation),
    )


def _greedy_on_whole_conversation(model, picture, answer1: tuple[int, ...], stop_ids, n: int) -> list[int]:
    """Prefill turn 1 + answer 1 (without its stop token) + turn 2 from position 0 in one go, then decode."""
    methods = EagerMethods(model)
    session = _session(model, methods)  # only for its tokenizer helpers and special ids
    tiles = preprocess(picture, model.vision)
    block = image_block(
        model.prompt, grid=tiles.grid, thumbnail_index=tiles.thumbnail_index,
        tokens_per_tile=model.vision.tokens_per_tile, token_ids=session.token_ids,
    )
    fed_answer = tuple(t for t in answer1 if t not in stop_ids)
    segments = [
        *first_turn(model.prompt, Q1, encode=session._encode, token_ids=session.token_ids, image=block),
        TokenRun(fed_answer),
        *next_turn(model.prompt, Q2, encode=session._encode),
    ]
    image, _ = encode_tiles(methods, tiles.tiles, 4)
    embeds = embed_segments(methods, segments, image)
    logits = prefill(methods, embeds, 0, 128)
    tokens, _ = decode_n_tokens(methods, logits, embeds.shape[1], n, pick=lambda x: int(x.argmax()), stop_ids=stop_ids)
    return tokens


def test_follow_up_reuses_cache_and_equals_whole_prefill(tiny, counting, picture) -> None:
    methods = counting(EagerMethods(tiny))
    session = _session(tiny, methods, max_new_tokens=6)
    a1 = session.ask(Q1, picture)
    assert a1.stop_reason == "max_new_tokens" and len(a1.tokens) == 6
    vision_calls = methods.calls["vision_encoder"]
    assert methods.tile_batches == [4, 3]  # 3x2 grid + thumbnail = 7 tiles at batch 4
    methods.decoder_positions.clear()

    a2 = session.ask(Q2)
    assert methods.calls["vision_encoder"] == vision_calls  # the image is not encoded again
    fed_before = a1.stats.num_prompt_tokens + 5  # the 6th token of answer 1 was never fed
    assert a2.stats.num_cached_tokens == fed_before
    assert methods.decoder_positions[0][0] == fed_before  # turn 2 prefill starts right after answer 1
    assert sum(n for _, n in methods.decoder_positions) == a2.stats.num_prompt_tokens + 5
    assert a2.stats.num_tiles == 0 and a2.stats.grid is None

    expected = _greedy_on_whole_conversation(tiny, picture, a1.tokens, tiny.eos_ids, 6)
    assert list(a2.tokens) == expected


def test_follow_up_after_stop_token_drops_it(tiny, picture) -> None:
    probe = _session(tiny, EagerMethods(tiny), max_new_tokens=6).ask(Q1, picture).tokens
    stop_at = next(i for i in range(1, len(probe)) if probe[i] not in probe[:i])
    stop_ids = (probe[stop_at],)  # pretend this token is the model's stop token
    session = _session(tiny, EagerMethods(tiny), max_new_tokens=6, eos_ids=stop_ids)
    a1 = session.ask(Q1, picture)
    assert a1.stop_reason == "eos" and a1.tokens == probe[: stop_at + 1]
    assert session.position == a1.stats.num_prompt_tokens + stop_at  # the stop token is not in the cache
    a2 = session.ask(Q2)
    assert list(a2.tokens) == _greedy_on_whole_conversation(tiny, picture, a1.tokens, stop_ids, 6)


def test_too_long_prompt_raises_before_any_compute(tiny, counting) -> None:
    methods = counting(EagerMethods(tiny))
    session = _session(tiny, methods)
    with pytest.raises(ContextOverflowError, match=r"needs \d+ positions but only 512 of max_context_len 512 are free"):
        session.ask("describe the red square " * 200)
    assert sum(methods.calls.values()) == 0


def test_too_long_follow_up_raises_and_keeps_conversation(tiny, counting, picture) -> None:
    methods = counting(EagerMethods(tiny))
    session = _session(tiny, methods, max_new_tokens=4)
    session.ask(Q1, picture)
    position, calls = session.position, sum(methods.calls.values())
    with pytest.raises(ContextOverflowError, match=rf"{position} hold earlier turns: reset\(\) starts over"):
        session.ask("and the blue circle " * 150)
    assert session.position == position and sum(methods.calls.values()) == calls
    assert session.ask(Q2).stats.num_cached_tokens == position  # the conversation goes on


def test_image_over_budget_gets_smaller_grid(tiny, tiny_dir, counting, picture) -> None:
    from mobile_mllm.model import load_model

    small = load_model(tiny_dir, max_context_len=128)
    methods = counting(EagerMethods(small))
    answer = _session(small, methods, max_new_tokens=8).ask(Q1, picture)
    s = answer.stats
    assert s.reduced_by_budget is True
    assert s.grid is not None and s.grid[0] * s.grid[1] < 3 * 2  # unreduced: 3x2 + thumbnail
    assert s.num_prompt_tokens + 8 <= 128  # room left for the whole answer
    assert s.num_image_tokens == s.num_tiles * small.vision.tokens_per_tile
    assert sum(methods.tile_batches) == s.num_tiles
    # With room (512 positions) the same image keeps its preferred 3x2 grid.
    roomy = _session(tiny, EagerMethods(tiny), max_new_tokens=8).ask(Q1, picture).stats
    assert roomy.grid == (3, 2) and roomy.reduced_by_budget is False


def test_image_that_cannot_fit_raises_before_compute(tiny_dir, counting, picture) -> None:
    from mobile_mllm.model import load_model

    small = load_model(tiny_dir, max_context_len=64)
    methods = counting(EagerMethods(small))
    session = _session(small, methods, max_new_tokens=8)
    with pytest.raises(ContextOverflowError, match="max_context_len 64"):
        session.ask("describe every shape and colour you can see in this picture " * 4, picture)
    assert sum(methods.calls.values()) == 0


def test_stats_of_nine_tiles(tiny, counting) -> None:
    vision = dataclasses.replace(tiny.vision, max_side=4)
    image = (np.random.default_rng(1).random((256, 128, 3)) * 255).astype(np.uint8)  # 128 wide, 256 high: 2x4
    methods = counting(EagerMethods(tiny))
    pieces: list[str] = []
    answer = _session(tiny, methods, vision=vision, max_new_tokens=5).ask(Q1, image, on_token=pieces.append)
    s = answer.stats
    assert s.grid == (2, 4) and s.num_tiles == 9 and s.vision_batch_sizes == (4, 4, 1)
    assert len(s.vision_batch_ms) == 3 and all(t > 0 for t in s.vision_batch_ms)
    assert s.num_image_tokens == 9 * tiny.vision.tokens_per_tile
    assert s.num_prompt_tokens == sum(n for _, n in methods.decoder_positions[: -(5 - 1)])
    assert s.num_generated_tokens == 5 and not s.reduced_by_budget
    assert s.inference_start_ms <= s.image_encode_start_ms < s.image_encode_end_ms <= s.prompt_eval_end_ms
    assert s.prompt_eval_end_ms <= s.first_token_ms <= s.inference_end_ms
    assert s.peak_rss_bytes > 0
    assert "".join(pieces) == answer.text


def test_sampling_is_seeded_and_reset_replays(tiny, picture) -> None:
    kwargs = {"max_new_tokens": 8, "temperature": 1.5, "top_p": 0.95, "seed": 3}
    session = _session(tiny, EagerMethods(tiny), **kwargs)
    first = session.ask(Q1, picture).tokens
    second = session.ask(Q1, picture)  # a new image resets the conversation and the generator
    again = second.tokens
    assert second.stats.num_cached_tokens == 0
    other = _session(tiny, EagerMethods(tiny), **{**kwargs, "seed": 4}).ask(Q1, picture).tokens
    greedy = _session(tiny, EagerMethods(tiny), max_new_tokens=8).ask(Q1, picture).tokens
    assert first == again
    assert first != other  # another seed, another answer
    assert first != greedy  # sampling actually samples


def test_answer_stops_when_cache_is_full(tiny_dir, counting) -> None:
    from mobile_mllm.model import load_model

    small = load_model(tiny_dir, max_context_len=48)
    methods = counting(EagerMethods(small))
    session = _session(small, methods, max_new_tokens=100, eos_ids=())
    answer = session.ask("What is the shape?")
    assert answer.stop_reason == "context_full"
    assert session.position == 48  # every position used, none past the end
    assert answer.stats.num_prompt_tokens + answer.stats.num_generated_tokens == 49  # the last token is never fed
    assert max(start + n for start, n in methods.decoder_positions) == 48
    with pytest.raises(ContextOverflowError, match="reset"):
        session.ask("More?")
    session.reset()
    assert session.ask("What is the shape?").tokens == answer.tokens


def test_question_template_styles_once_and_styled_false_takes_the_prompt_as_is(tiny, picture) -> None:
    """A model whose template appends an instruction prompts a plain question exactly as the identity model
    prompts the hand-styled one; styled=False (eval's prompts, which carry their instruction) is not styled twice.
    Prompt lengths tell the wordings apart (a random tiny model may answer them alike)."""
    suffix = "\nAnswer the question using a single word or phrase."
    styled = dataclasses.replace(tiny, prompt=dataclasses.replace(tiny.prompt, question_template="{question}" + suffix))
    methods = EagerMethods(tiny)  # the template changes the prompt only, not the weights

    def ask(model, question: str, **kw) -> tuple[tuple[int, ...], int]:  # noqa: ANN001, ANN003
        answer = _session(model, methods, max_new_tokens=4).ask(question, picture, **kw)
        return answer.tokens, answer.stats.num_prompt_tokens

    reference = ask(tiny, Q1 + suffix)
    twice = ask(tiny, Q1 + suffix + suffix)
    assert twice[1] > reference[1]
    assert ask(styled, Q1) == reference
    assert ask(styled, Q1 + suffix, styled=False) == reference
    assert ask(styled, Q1 + suffix) == twice  # styled (the default): the template applies to whatever is typed
    session = _session(styled, methods, max_new_tokens=4)
    session.check(Q1 + suffix, picture, styled=False)  # check() takes the same flag as ask()
