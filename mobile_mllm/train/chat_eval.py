"""Held-out chat benchmark: plainly asked questions, follow-up turns and descriptions, scored against the generator.

The benchmark of ``evaluate`` asks each question as the first turn of a fresh conversation, in
VLMEvalKit's wording. A chat user asks differently, so for each held-out image this asks two
conversations through the eager ``Session`` (greedy, exactly as ``mobile-mllm run`` does):

- A: a plain question (``chat.plain_turns``, first turn) -> the benchmark's question about the
  same image as a follow-up -> another plain question as a follow-up;
- B: "Describe the image." (first turn) -> A's first plain question again, now as a follow-up;
- C: the benchmark's question of A as the first turn of a fresh conversation;
- D: for an image with an object clearly on one side (``chat.extreme_objects``), "Describe the
  image." -> "What shape is on the left?" (or right, top, bottom): answered from the image, not
  from the order the description named things in.

Reported per setting: ``plain`` (first turns), ``plain_follow_up``, ``form_first`` and
``form_follow_up`` (the same question about the same image, first turn vs follow-up: a paired
comparison, which the first-turn numbers of ``evaluate`` on other images are not), and for
descriptions ``describe_true`` (it names at least one thing and everything it names is in the
image: (colour, shape) pairs, the shown text, a chart's number of bars, their colour and any
label) and ``describe_complete`` (it names every distinct object, the text, a chart's number of
bars and their colour), and ``side_after_describe`` (D).
"""

from __future__ import annotations

import random
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from mobile_mllm.eval.extract import process_punctuation
from mobile_mllm.eval.synthetic import COLOURS, Kind, SyntheticSample, SyntheticSpec, generate_sample
from mobile_mllm.train.chat import (
    DESCRIBE_PROMPTS,
    chart_bars,
    described_objects,
    extreme_objects,
    plain_turns,
    sample_objects,
    side_turn,
)
from mobile_mllm.train.data import question_text
from mobile_mllm.train.evaluate import score_sample

__all__ = ["ChatRecord", "chat_accuracy", "describe_scores", "evaluate_chat", "format_chat_markdown", "plain_correct"]

SETTINGS = ("plain", "plain_follow_up", "form_first", "form_follow_up", "describe_true", "describe_complete",
            "side_after_describe")
"""What :func:`chat_accuracy` reports, in order."""


@dataclass(frozen=True)
class ChatRecord:
    """One scored answer of the chat benchmark."""

    kind: str
    setting: str
    question: str
    answer: str
    prediction: str
    correct: bool


def plain_correct(answer: str, prediction: str) -> bool:
    """Normalised exact match, case-insensitive (a plain "Yes" and "yes" are the same answer)."""
    def norm(text: str) -> str:
        return process_punctuation(text.strip().lower()).strip()

    return norm(prediction) == norm(answer)


def describe_scores(sample: SyntheticSample, text: str) -> tuple[bool, bool]:
    """(true, complete) of a description of ``sample``'s image (see the module docstring).

    Example:
        >>> from mobile_mllm.eval.synthetic import Form
        >>> s = SyntheticSample(0, None, "Q", "A", (), Kind.COLOUR, Form.VQA, "x", "red circle, blue star")
        >>> describe_scores(s, "The image shows a red circle."), describe_scores(s, "A red star.")
        ((True, False), (False, False))
    """
    lowered = text.lower()
    if sample.kind is Kind.TEXT:
        found = sample.description.lower() in lowered
        return found, found
    if sample.kind is Kind.CHART:
        return _chart_scores(sample, lowered)
    truth = set(sample_objects(sample))
    named = described_objects(text)
    return bool(named) and named <= truth, named == truth


_NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")
"""Counts a description may spell out ("a bar chart with four bars") instead of writing the digit."""


def _chart_scores(sample: SyntheticSample, lowered: str) -> tuple[bool, bool]:
    """A chart's description is true when it says "bar chart" and every count, colour and label it
    states is right (labels only in the "bar chart of apple, pear and plum" form), complete when it
    states the number of bars and their colour."""
    if "bar chart" not in lowered:
        return False, False
    bars, colour = chart_bars(sample)
    counts = {int(w) if w.isdigit() else _NUMBER_WORDS.index(w)
              for w in re.findall(rf"\b(\d+|{'|'.join(_NUMBER_WORDS)}) (?:\w+ )?bars\b", lowered)}
    colours = set(re.findall(rf"\b({'|'.join(COLOURS)})\b", lowered))
    labels = {item.rsplit(" ", 1)[0] for item in sample.description.split(", ")}
    named = set(re.findall(r"[a-z]+", lowered.split("bar chart of", 1)[1])) - {"and"} if "bar chart of" in lowered else set()
    true = counts <= {bars} and colours <= {colour} and named <= labels
    return true, true and counts == {bars} and colours == {colour}


MAX_NEW_TOKENS = 64
"""Longest answer (the demo's default): a description of nine objects one by one needs about 40 tokens."""

_WORKER: dict[str, Any] = {}


def _open_session(model: str) -> Any:  # noqa: ANN401
    from mobile_mllm.runtime.sampling import GenerationConfig
    from mobile_mllm.runtime.session import Session

    return Session.from_dir(model, generation=GenerationConfig(max_new_tokens=MAX_NEW_TOKENS))


def _ask_image(session: Any, seed: int, number: int) -> list[ChatRecord]:  # noqa: ANN401
    """The conversations of the module docstring about held-out image ``number`` of stream ``seed``."""
    sample = generate_sample(seed, number, SyntheticSpec())
    records: list[ChatRecord] = []

    def ask(setting: str, question: str, answer: str, first: bool, score: Callable[[str], bool],
            styled: bool = True) -> str:
        prediction = session.ask(question, sample.image if first else None, styled=styled).text.strip()
        records.append(ChatRecord(sample.kind.value, setting, question, answer, prediction, score(prediction)))
        return prediction

    def ask_form(setting: str, first: bool) -> None:  # worded by eval, exactly as the benchmark asks
        ask(setting, question_text(sample), sample.answer, first, lambda p: score_sample(sample, p) == 1.0,
            styled=False)

    turns = plain_turns(sample, random.Random(f"mobile-mllm-chat-bench/{seed}/{sample.id}"))
    (q1, a1), (q2, a2) = turns[0], turns[-1]  # one turn (text asked as MCQ): the same question twice
    ask("plain", q1, a1, True, lambda p: plain_correct(a1, p))
    ask_form("form_follow_up", first=False)
    ask("plain_follow_up", q2, a2, False, lambda p: plain_correct(a2, p))
    description = ask("describe_true", DESCRIBE_PROMPTS[0], "", True, lambda p: describe_scores(sample, p)[0])
    records.append(ChatRecord(sample.kind.value, "describe_complete", DESCRIBE_PROMPTS[0], "", description,
                              describe_scores(sample, description)[1]))
    ask("plain_follow_up", q1, a1, False, lambda p: plain_correct(a1, p))
    ask_form("form_first", first=True)
    sides = extreme_objects(sample)
    if sides:
        rng = random.Random(f"mobile-mllm-chat-bench-side/{seed}/{sample.id}")
        side = rng.choice(sorted(sides))
        question, answer = side_turn(side, sample_objects(sample)[sides[side]][1], rng)
        session.ask(DESCRIBE_PROMPTS[0], sample.image)  # conversation B's description again (greedy: the same text)
        ask("side_after_describe", question, answer, False, lambda p: plain_correct(answer, p))
    return records


def _init_worker(model: str) -> None:
    import signal

    import torch

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the parent, which ends the pool
    torch.set_num_threads(1)
    _WORKER["session"] = _open_session(model)


def _work(job: tuple[int, int]) -> list[ChatRecord]:
    return _ask_image(_WORKER["session"], *job)


def evaluate_chat(
    model: str, *, seed: int, count: int, workers: int = 1, on_progress: Callable[[int, int], None] | None = None
) -> list[ChatRecord]:
    """Ask ``count`` held-out images (generator stream ``seed``) the conversations of the module docstring.

    Args:
        model (str): a model directory, an exported program directory or ``builtin:NAME``.
        seed (int): generator stream (one training never saw).
        count (int): images (samples ``0 .. count - 1``, the stream of ``generate_samples``).
        workers (int): processes, each loading the model once and using one thread (each image's
            conversations run in one process, so the answers do not depend on it); 1: this process.
        on_progress (Callable[[int, int], None] | None): called with (images done, count).

    Returns:
        list[ChatRecord]: image by image, in stream order.
    """
    jobs = [(seed, i) for i in range(count)]
    if workers <= 1:
        session = _open_session(model)
        results = (_ask_image(session, *job) for job in jobs)
        return _collect(results, count, on_progress)
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")  # fork after torch's thread pools exist can deadlock
    with ctx.Pool(min(workers, count), initializer=_init_worker, initargs=(model,)) as pool:
        return _collect(pool.imap(_work, jobs), count, on_progress)


def _collect(results: Iterable[list[ChatRecord]], count: int,
             on_progress: Callable[[int, int], None] | None) -> list[ChatRecord]:
    records: list[ChatRecord] = []
    for done, image_records in enumerate(results, 1):
        records += image_records
        if on_progress:
            on_progress(done, count)
    return records


def chat_accuracy(records: Sequence[ChatRecord]) -> dict[str, dict[str, float]]:
    """setting -> kind (and ``all``) -> percent correct."""
    cells: dict[str, dict[str, list[bool]]] = defaultdict(lambda: defaultdict(list))
    for r in records:
        cells[r.setting][r.kind].append(r.correct)
        cells[r.setting]["all"].append(r.correct)
    return {s: {k: 100.0 * sum(v) / len(v) for k, v in kinds.items()} for s, kinds in cells.items()}


def format_chat_markdown(records: Sequence[ChatRecord]) -> str:
    """The chat benchmark as a markdown table (settings x kinds, percent; n per cell in brackets)."""
    acc = chat_accuracy(records)
    counts: dict[tuple[str, str], int] = defaultdict(int)
    for r in records:
        counts[(r.setting, r.kind)] += 1
    kinds = [k.value for k in Kind if any(r.kind == k.value for r in records)]
    lines = ["| chat setting | " + " | ".join(kinds) + " | all |", "|---" * (len(kinds) + 2) + "|"]
    for s in SETTINGS:
        if s in acc:
            cells = [f"{acc[s][k]:.1f} ({counts[(s, k)]})" if k in acc[s] else "-" for k in kinds]
            lines.append(f"| {s} | " + " | ".join(cells) + f" | {acc[s]['all']:.1f} |")
    return "\n".join(lines) + "\n"
