"""Convert bench_decoder's HF checkpoint to GGUF (f16) with llama.cpp's own converter, for llama-bench.

Run with ``bench/peers/.venv-llamacpp/bin/python`` (see setup_peers.sh). The random-weight model
carries our small bundled tokenizer, whose BPE pre-tokenizer hash llama.cpp's converter does not
know, so this wrapper names it ``qwen2`` (the tokenizer plays no part in llama-bench's timings);
everything else is the converter's ``main`` untouched. Then quantize with
``.llamacpp/build/bin/llama-quantize IN.gguf OUT.gguf Q4_0``.

Usage: to_gguf.py HF_DIR OUT.gguf
"""

from __future__ import annotations

import sys
from pathlib import Path

LLAMA_CPP = Path(__file__).resolve().parent / ".llamacpp" / "src" / "vendor" / "llama.cpp"


def main() -> None:
    hf_dir, out = sys.argv[1], sys.argv[2]
    sys.path.insert(0, str(LLAMA_CPP))
    sys.path.insert(1, str(LLAMA_CPP / "gguf-py"))
    from conversion import base

    base.TextModel.get_vocab_base_pre = lambda self, tokenizer: "qwen2"
    import convert_hf_to_gguf

    sys.argv = ["convert_hf_to_gguf.py", hf_dir, "--outfile", out, "--outtype", "f16"]
    convert_hf_to_gguf.main()


if __name__ == "__main__":
    main()
