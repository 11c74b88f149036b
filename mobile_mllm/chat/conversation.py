"""A user's conversation with a shared model, and the streaming ask behind the demo's chat.

:func:`ask_streaming` runs :meth:`Session.ask` on a worker thread and yields the answer as it
grows, so a UI can stream it and stop it. The session keeps the image's encoding and the KV
cache between turns: a follow-up from the conversation whose turns the cache holds is
prefilled after the previous answer (its stats say how many tokens were reused). When another
user asked in between, or a stop left the cache half-written, the earlier turns are asked
again first (greedy decoding gives the same answers), so every answer is the one an
uninterrupted session would give. Errors come back as a message in the turn, never as an
exception: a demo must not die on a corrupt image or an over-long prompt.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from mobile_mllm.chat.config import GridSettings
from mobile_mllm.chat.slot import ModelSlot
from mobile_mllm.errors import MobileMLLMError

logger = logging.getLogger(__name__)

__all__ = ["ChatUpdate", "Conversation", "Turn", "ask_streaming", "grid_preview"]


@dataclass(frozen=True)
class Turn:
    """One question and what came of it."""

    question: str
    answer: str = ""
    stats: dict[str, Any] | None = None
    """``Stats.to_dict()`` of the answer (None when it failed or was stopped)."""
    error: str | None = None
    """One line for the user when the question could not be answered."""
    stopped: bool = False
    replayed_turns: int = 0
    """Earlier turns asked again because the KV cache held another conversation."""


@dataclass
class Conversation:
    """One user's chat: the image asked about, the grid settings it was encoded with, the turns."""

    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    image: Any = None
    """The image of the conversation (a path, bytes or PIL image), or None for text only."""
    settings: GridSettings = GridSettings()
    turns: list[Turn] = field(default_factory=list)


@dataclass(frozen=True)
class ChatUpdate:
    """What a UI shows while an answer streams: the text so far, and the finished turn at the end."""

    text: str
    done: bool = False
    turn: Turn | None = None


class _Stopped(Exception):
    """Raised from the token callback to abandon an answer the user stopped."""


def grid_preview(slot: ModelSlot, image: Any, settings: GridSettings) -> tuple[Any, str]:
    """The image with the grid the model would use drawn over it, and a one-line caption.

    Reads only what planning needs (no model call besides loading it once for its vision
    settings).

    Returns:
        tuple: (PIL image with the overlay, caption such as ``relaxed 3x2: 6 tiles + thumbnail = ...``).

    Raises:
        ImageError: the image cannot be loaded.
        ContextOverflowError: the token budget is smaller than the smallest grid.
    """
    from mobile_mllm.vision.io import load_image
    from mobile_mllm.vision.overlay import caption, draw_grid
    from mobile_mllm.vision.processor import plan_tiles

    with slot.lock:
        cfg = slot.vision(settings)
    img = load_image(image, cfg)
    from mobile_mllm.vision.grid import Size

    plan = plan_tiles(Size(*img.size), cfg, token_budget=settings.token_budget)
    return draw_grid(img, plan), caption(plan)


def ask_streaming(
    slot: ModelSlot,
    conversation: Conversation,
    question: str,
    *,
    image: Any = None,
    settings: GridSettings | None = None,
    stop: threading.Event | None = None,
) -> Iterator[ChatUpdate]:
    """Ask ``question`` in ``conversation``, yielding the answer as it grows.

    A new ``image`` (or new ``settings``) starts the conversation over about that image;
    without them the question follows the earlier turns. The last update has ``done=True``
    and the :class:`Turn`, which is also appended to the conversation (unless it failed before
    any answer, so a refused question leaves the history as it was).

    Args:
        slot (ModelSlot): the shared model.
        conversation (Conversation): the user's conversation (updated in place).
        question (str): the user's text.
        image: a new image (path, bytes, PIL image), or None to ask about the current one.
        settings (GridSettings | None): grid choices; None keeps the conversation's.
        stop (threading.Event | None): set it to stop the answer (the partial text is kept).
    """
    settings = conversation.settings if settings is None else settings
    if image is not None or settings != conversation.settings:
        if image is None and conversation.image is None:  # grid changed without an image: nothing to re-encode
            conversation.settings = settings
        else:
            conversation.image = image if image is not None else conversation.image
            conversation.settings = settings
            conversation.turns = []
    pieces: queue.Queue[str | None] = queue.Queue()
    result: dict[str, Turn] = {}
    stop = stop or threading.Event()
    worker = threading.Thread(
        target=_answer, args=(slot, conversation, question, stop, pieces, result), daemon=True, name="demo-answer"
    )
    worker.start()
    text = ""
    try:
        while True:
            piece = pieces.get()
            if piece is None:
                break
            text += piece
            yield ChatUpdate(text)
    except GeneratorExit:  # the UI went away or cancelled: stop the model too
        stop.set()
        raise
    worker.join()
    turn = result["turn"]
    if turn.error is None or turn.answer:
        conversation.turns.append(turn)
    yield ChatUpdate(turn.answer or text, done=True, turn=turn)


def _answer(
    slot: ModelSlot, conv: Conversation, question: str, stop: threading.Event, pieces: queue.Queue, result: dict
) -> None:
    """Worker: take the model, bring its cache to this conversation, answer; always end the stream."""
    shown: list[str] = []

    def on_token(piece: str) -> None:
        if stop.is_set():
            raise _Stopped
        shown.append(piece)
        pieces.put(piece)

    replayed = 0
    try:
        with slot.lock:
            session = slot.session()
            session.vision = slot.vision(conv.settings)
            try:
                first = not conv.turns
                keeps_cache = getattr(session, "keeps_cache", True)  # a device answers each question afresh
                if slot.owner != conv.id and not first and keeps_cache:
                    replayed = _replay(session, conv)
                slot.owner = None  # until this answer completes, the cache is nobody's
                if first:
                    session.reset()  # a first turn never continues whatever the cache holds
                image = conv.image if first or not keeps_cache else None
                answer = session.ask(question, image, on_token=on_token, token_budget=conv.settings.token_budget)
                slot.owner = conv.id
            except _Stopped:
                result["turn"] = Turn(question, "".join(shown), stopped=True, replayed_turns=replayed)
                return
        result["turn"] = Turn(question, answer.text, stats=answer.stats.to_dict(), replayed_turns=replayed)
    except MobileMLLMError as e:
        result["turn"] = Turn(question, "".join(shown), error=str(e), replayed_turns=replayed)
    except Exception as e:  # noqa: BLE001 -- the UI boundary: report, log the traceback, keep serving
        logger.exception("demo answer failed")
        result["turn"] = Turn(question, "".join(shown), error=f"internal error: {type(e).__name__}: {e}")
    finally:
        pieces.put(None)


def _replay(session: Any, conv: Conversation) -> int:
    """Ask the conversation's earlier questions again so the KV cache holds them; return how many."""
    asked = [t for t in conv.turns if t.error is None]
    session.reset()
    for i, turn in enumerate(asked):
        session.ask(turn.question, conv.image if i == 0 else None, token_budget=conv.settings.token_budget)
    logger.info("replayed %d earlier turn(s) of conversation %s", len(asked), conv.id[:8])
    return len(asked)
