"""mobile-mllm: deploy multimodal LLMs on Android phones.

Importing this package loads nothing heavy (no torch, executorch, torchao, gradio or
adb_shell); each subpackage imports what it needs when used.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
