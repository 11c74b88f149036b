"""Train the reference family's small built-in model on synthetic visual questions.

``data.py`` turns generator samples into examples laid out exactly as the runtime prompts the
model; ``loop.py`` is the seeded, checkpointed, resumable training loop behind
``mobile-mllm train-reference``; ``evaluate.py`` measures a model on a held-out generated
benchmark through the eager :class:`~mobile_mllm.runtime.session.Session`. Importing this
package loads no torch.
"""

from mobile_mllm.train.loop import Device, TrainConfig, TrainResult, train_reference

__all__ = ["Device", "TrainConfig", "TrainResult", "train_reference"]
