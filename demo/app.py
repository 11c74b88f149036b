"""The mobile-mllm demo: chat with a model about an image, see the tiles it will see, compare two.

`mobile-mllm demo [MODEL_OR_PROGRAM ...]` runs this file; copy it and pass `--app your_app.py`
to change the layout. Everything that is not layout (the shared model, streaming, follow-ups that
reuse the KV cache, the grid overlay, the stats rows) lives in `mobile_mllm.chat`,
`mobile_mllm.vision.overlay` and `mobile_mllm.runtime.stats_text`.
"""

from __future__ import annotations

import threading
from pathlib import Path

import gradio as gr

from mobile_mllm.chat import Conversation, DemoConfig, GridSettings, ModelSlot, ask_streaming, grid_preview
from mobile_mllm.errors import MobileMLLMError
from mobile_mllm.runtime.stats_text import stats_rows
from mobile_mllm.vision.config import GridPolicy

MODEL_DEFAULT = "model's own"
EXAMPLES = sorted(str(p) for p in Path(__file__).parent.glob("examples/*.png")) or [str(Path(__file__).parent / "sample.png")]


def _settings(policy: str, max_tiles: float | None, budget: float | None) -> GridSettings:
    return GridSettings(
        policy=None if policy == MODEL_DEFAULT else GridPolicy(policy),
        max_tiles=int(max_tiles) if max_tiles else None,
        token_budget=int(budget) if budget else None,
    )


def _stats_markdown(turn) -> str:
    if turn.error:
        return f"**Error:** {turn.error}"
    if turn.stopped:
        return "_stopped_"
    rows = stats_rows(turn.stats)
    note = f"\n\n_{turn.replayed_turns} earlier turn(s) asked again first: another chat had used the model._" if turn.replayed_turns else ""
    return "| | |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows) + note


def build(slots: list[ModelSlot], config: DemoConfig) -> gr.Blocks:
    """The Gradio app over already-created model slots (loaded on first question)."""
    by_label = {slot.label: slot for slot in slots}
    labels = list(by_label)
    stops: dict[str, threading.Event] = {}
    policies = [MODEL_DEFAULT, *(p.value for p in GridPolicy)]

    def preview(image, label, policy, max_tiles, budget):
        if not image:
            return None, ""
        try:
            drawn, text = grid_preview(by_label[label], image, _settings(policy, max_tiles, budget))
        except MobileMLLMError as e:
            return None, f"**Cannot tile this image:** {e}"
        return drawn, text

    def ask(question, image, label, policy, max_tiles, budget, state, history):
        conv, conv_label = state if state else (Conversation(), label)
        if conv_label != label:
            conv = Conversation()
        stop = stops.setdefault(conv.id, threading.Event())
        stop.clear()
        new_image = image if image and image != conv.image else None
        try:
            settings = _settings(policy, max_tiles, budget)
        except MobileMLLMError as e:
            yield history, f"**Error:** {e}", (conv, label), question
            return
        if new_image is not None or settings != conv.settings:
            history = []
        history = [*history, {"role": "user", "content": question}, {"role": "assistant", "content": ""}]
        updates = ask_streaming(by_label[label], conv, question, image=new_image, settings=settings, stop=stop)
        try:
            for update in updates:
                history[-1] = {"role": "assistant", "content": update.text}
                if update.done:
                    if update.turn.error and not update.text:
                        history = history[:-2]
                        gr.Warning(update.turn.error)
                    yield history, _stats_markdown(update.turn), (conv, label), ""
                else:
                    yield history, "_answering..._", (conv, label), ""
        finally:
            updates.close()

    def stop_answer(state):
        if state:
            stops.setdefault(state[0].id, threading.Event()).set()

    def compare(question, image, label_a, policy_a, label_b, policy_b):
        out = ["", "", "", ""]
        for side, (label, policy) in enumerate(((label_a, policy_a), (label_b, policy_b))):
            for update in ask_streaming(by_label[label], Conversation(), question, image=image or None,
                                        settings=_settings(policy, None, None)):
                out[2 * side] = update.text
                if update.done:
                    out[2 * side] = update.text or (update.turn.error and f"**Error:** {update.turn.error}") or ""
                    out[2 * side + 1] = _stats_markdown(update.turn)
                yield tuple(out)

    with gr.Blocks(title="mobile-mllm demo") as demo:
        gr.Markdown("## mobile-mllm: ask a model about an image, as the phone will run it")
        state = gr.State(None)
        with gr.Tab("Chat"):
            with gr.Row():
                with gr.Column(scale=1):
                    image = gr.Image(type="filepath", label="Image", sources=["upload", "clipboard", "webcam"], elem_id="image")
                    gr.Examples(EXAMPLES, inputs=image, label="Examples")
                    model = gr.Dropdown(labels, value=labels[0], label="Model", elem_id="model")
                    with gr.Row():
                        policy = gr.Dropdown(policies, value=MODEL_DEFAULT, label="Grid policy")
                        max_tiles = gr.Number(value=0, precision=0, minimum=0, label="Max tiles (0: model's)")
                        budget = gr.Number(value=0, precision=0, minimum=0, label="Token budget (0: none)")
                    overlay = gr.Image(label="Tiles the model sees", interactive=False, elem_id="overlay")
                    grid_info = gr.Markdown(elem_id="grid-info")
                with gr.Column(scale=2):
                    chatbot = gr.Chatbot(label="Chat", height=420, elem_id="chatbot")
                    question = gr.Textbox(label="Question", placeholder="What colour is the star?", elem_id="question")
                    with gr.Row():
                        ask_btn = gr.Button("Ask", variant="primary", elem_id="ask")
                        stop_btn = gr.Button("Stop", elem_id="stop")
                        new_btn = gr.Button("New chat", elem_id="new-chat")
                    stats = gr.Markdown(elem_id="stats")
            grid_inputs = [image, model, policy, max_tiles, budget]
            for control in grid_inputs:
                control.change(preview, grid_inputs, [overlay, grid_info], api_name=False)
            ask_inputs = [question, image, model, policy, max_tiles, budget, state, chatbot]
            ask_outputs = [chatbot, stats, state, question]
            asked = [ask_btn.click(ask, ask_inputs, ask_outputs, api_name="ask"),
                     question.submit(ask, ask_inputs, ask_outputs, api_name=False)]
            stop_btn.click(stop_answer, [state], None, cancels=asked, api_name=False)
            new_btn.click(lambda: (None, [], ""), None, [state, chatbot, stats], api_name=False)
        with gr.Tab("Side by side"):
            with gr.Row():
                cmp_image = gr.Image(type="filepath", label="Image", elem_id="cmp-image")
                with gr.Column():
                    cmp_question = gr.Textbox(label="Question", elem_id="cmp-question")
                    with gr.Row():
                        cmp_a = gr.Dropdown(labels, value=labels[0], label="Model A")
                        cmp_pa = gr.Dropdown(policies, value=MODEL_DEFAULT, label="Grid policy A")
                    with gr.Row():
                        cmp_b = gr.Dropdown(labels, value=labels[-1], label="Model B")
                        cmp_pb = gr.Dropdown(policies, value=GridPolicy.LLAVA_NEXT.value if len(labels) == 1 else MODEL_DEFAULT,
                                             label="Grid policy B")
                    cmp_btn = gr.Button("Ask both", variant="primary", elem_id="ask-both")
            with gr.Row():
                with gr.Column():
                    ans_a, stats_a = gr.Markdown(elem_id="answer-a"), gr.Markdown(elem_id="stats-a")
                with gr.Column():
                    ans_b, stats_b = gr.Markdown(elem_id="answer-b"), gr.Markdown(elem_id="stats-b")
            cmp_btn.click(compare, [cmp_question, cmp_image, cmp_a, cmp_pa, cmp_b, cmp_pb], [ans_a, stats_a, ans_b, stats_b],
                          api_name="compare")
    return demo.queue(default_concurrency_limit=1, max_size=config.queue_size)
