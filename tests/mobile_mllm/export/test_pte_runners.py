"""The exported program behind our Session and behind ExecuTorch's stock MultimodalRunner.

* ``Session`` over :class:`PteMethods` (what ``mobile-mllm run OUT`` does) gives the same greedy
  answer as ``Session`` over the eager float model for the fp32 program, and enforces the
  program's limits.
* The stock ``MultimodalRunner`` (Python binding) given the same layout as successive inputs —
  text runs, then each tile as its own float image ``[1, 3, S, S]`` — produces the same greedy
  tokens as our runtime. Its token callback decodes each token to ``str``, which fails on a
  byte-level BPE piece that is not complete UTF-8 (random weights produce such tokens), so
  this test hands the runner a copy of ``tokenizer.json`` without its ByteLevel decoder: token
  ids are unchanged, and each token comes back as its vocabulary string (rows of the random-weight
  model's 2048-row vocabulary past the tokenizer's 1945 tokens get ``<unused_N>`` names).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from mobile_mllm import contract
from mobile_mllm.errors import ContextOverflowError, ContractError

pytestmark = pytest.mark.slow

QUESTION = "What is in the image?"


def _image() -> np.ndarray:
    return (np.random.default_rng(3).random((70, 130, 3)) * 255).astype(np.uint8)


def test_session_over_fp32_program_answers_like_the_eager_model(exported, tiny_dir: Path) -> None:
    from mobile_mllm.runtime.sampling import GenerationConfig
    from mobile_mllm.runtime.session import RuntimeConfig, Session

    out = exported("fp32").output
    gen = GenerationConfig(max_new_tokens=10)
    program = Session.from_dir(out, generation=gen)
    assert type(program.methods).__name__ == "PteMethods"
    eager = Session.from_dir(tiny_dir, runtime=RuntimeConfig(max_context_len=192, prefill_chunk=32), generation=gen)
    a, b = program.ask(QUESTION, image=_image()), eager.ask(QUESTION, image=_image())
    assert a.tokens == b.tokens
    assert a.stats.num_tiles == b.stats.num_tiles > 1  # several tiles, encoded in batches


def test_session_over_w4_program_matches_the_quantized_eager_greedy_tokens(exported) -> None:
    greedy = exported("w4").report["verification"]["greedy"]
    assert greedy["program_tokens"] == greedy["quantized_tokens"]


def test_program_limits_are_enforced(exported) -> None:
    from mobile_mllm.runtime.pte import open_program_dir

    methods = open_program_dir(exported("w4").output).methods
    assert (methods.max_context_len, methods.max_tile_batch, methods.prefill_chunk) == (192, 4, 32)
    with pytest.raises(ContractError, match="1 <= B <= 4 tiles"):
        methods.vision_encoder(torch.zeros(5, 3, 64, 64))
    with pytest.raises(ContextOverflowError, match="do not fit the KV cache of 192"):
        methods.text_decoder(torch.zeros(1, 4, 128), torch.tensor([190]))


def _runner_inputs(backend, image):  # -> (list of MultimodalInput, our segments and tiles)
    from executorch.extension.llm.runner import make_image_input, make_text_input

    from mobile_mllm.runtime.layout import TokenRun, first_turn, image_block, special_token_ids
    from mobile_mllm.vision import preprocess

    ids = special_token_ids(backend.tokenizer, backend.prompt)
    tiles = preprocess(image, backend.vision)
    block = image_block(backend.prompt, grid=tiles.grid, thumbnail_index=tiles.thumbnail_index,
                        tokens_per_tile=backend.vision.tokens_per_tile, token_ids=ids)
    segments = first_turn(backend.prompt, QUESTION, encode=lambda s: backend.tokenizer.encode(s, add_special_tokens=False).ids,
                          token_ids=ids, image=block)
    inputs = []
    for seg in segments:
        if isinstance(seg, TokenRun):
            inputs.append(make_text_input(backend.tokenizer.decode(list(seg.ids), skip_special_tokens=False)))
        else:
            inputs.append(make_image_input(tiles.tiles[seg.tile].unsqueeze(0).contiguous()))
    return inputs


def test_stock_multimodal_runner_gives_our_greedy_tokens(exported, tmp_path: Path) -> None:
    from mobile_mllm.runtime.pte import load_executorch_kernels, open_program_dir
    from mobile_mllm.runtime.sampling import GenerationConfig
    from mobile_mllm.runtime.session import Session

    load_executorch_kernels()
    from executorch.extension.llm.runner import GenerationConfig as RunnerConfig
    from executorch.extension.llm.runner import MultimodalRunner

    out = exported("w4").output
    backend = open_program_dir(out)
    n = 6
    ours = Session(backend.methods, tokenizer=backend.tokenizer, prompt=backend.prompt, vision=backend.vision,
                   eos_ids=backend.eos_ids, generation=GenerationConfig(max_new_tokens=n)).ask(QUESTION, image=_image())
    tokenizer = json.loads((out / contract.TOKENIZER_FILE).read_text(encoding="utf-8"))
    tokenizer["decoder"] = None  # pieces come back as vocabulary strings (always valid UTF-8)
    vocab = tokenizer["model"]["vocab"]
    known = set(vocab.values()) | {t["id"] for t in tokenizer["added_tokens"]}
    for i in range(backend.methods.constants[contract.GET_VOCAB_SIZE]):  # random weights may pick rows past the tokenizer
        if i not in known:
            vocab[f"<unused_{i}>"] = i
    (tmp_path / "tokenizer.json").write_text(json.dumps(tokenizer), encoding="utf-8")
    runner = MultimodalRunner(str(out / contract.PROGRAM_FILE), str(tmp_path / "tokenizer.json"))
    pieces: list[str] = []
    runner.generate(_runner_inputs(backend, _image()), RunnerConfig(max_new_tokens=n, temperature=0.0, echo=False),
                    token_callback=pieces.append)
    expected = [backend.tokenizer.id_to_token(t) or f"<unused_{t}>" for t in ours.tokens]
    k = len(expected) - (1 if ours.stop_reason == "eos" else 0)  # the runner may not echo a stop token
    assert k >= 1
    assert pieces[:k] == expected[:k]


def test_other_methods_between_decoder_calls_leave_the_kv_cache_alone(exported, tiny) -> None:
    """A decode step after ``token_embedding``/``vision_encoder`` calls equals HF's forward (regression).

    ExecuTorch's Python runtime shares one set of memory arenas between the host methods of one
    loaded program; the KV cache lives in ``text_decoder``'s arena, so before ``PteMethods`` gave
    each method its own program instance these calls overwrote part of the cache (this tiny fp32
    program: 1.9e-2 / 4.8e-1 relative error on the next decode step), while each method alone was
    exact — which is why the per-method parity checks never saw it.
    """
    from mobile_mllm.runtime.eager import EagerMethods
    from mobile_mllm.runtime.parity import relative_error
    from mobile_mllm.runtime.pte import open_program_dir

    program = open_program_dir(exported("fp32").output).methods
    eager = EagerMethods(tiny, tile_batch=4, prefill_chunk=32)
    gen = torch.Generator().manual_seed(0)
    width, size = tiny.hidden_size, tiny.vision.tile_size
    prompt = torch.randn(1, 20, width, generator=gen) * 0.05
    for methods in (program, eager):
        methods.text_decoder(prompt, torch.tensor([0]))
    calls_between = {
        "token_embedding": lambda: program.token_embedding(torch.tensor([[5, 6, 7]])),
        "vision_encoder": lambda: program.vision_encoder(torch.randn(4, 3, size, size, generator=gen)),
    }
    for pos, (name, call) in enumerate(calls_between.items(), start=prompt.shape[1]):
        call()
        step = torch.randn(1, 1, width, generator=gen) * 0.05
        got = program.text_decoder(step, torch.tensor([pos]))
        assert relative_error(got, eager.text_decoder(step, torch.tensor([pos]))) < 1e-5, f"after {name}"
