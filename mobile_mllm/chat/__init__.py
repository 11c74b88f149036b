"""Chat over one shared model: what the Gradio demo runs, without any Gradio in it.

``config.py`` holds the demo's settings, ``slot.py`` one model instance shared by every user
(a :class:`~mobile_mllm.runtime.session.Session` behind a lock), ``conversation.py`` a user's
conversation and the streaming ask that keeps the KV cache between turns. ``demo/app.py`` lays
these out in Gradio; tests drive them directly.
"""

from mobile_mllm.chat.config import DemoBackend, DemoConfig, GridSettings
from mobile_mllm.chat.conversation import ChatUpdate, Conversation, Turn, ask_streaming, grid_preview
from mobile_mllm.chat.slot import ModelSlot

__all__ = [
    "ChatUpdate",
    "Conversation",
    "DemoBackend",
    "DemoConfig",
    "GridSettings",
    "ModelSlot",
    "Turn",
    "ask_streaming",
    "grid_preview",
]
