"""Ship an ONNX graph without its weights, and give it random weights of the same types on the other side.

Why: the second timing host (a quiet 16-core machine lent for the bench, reachable only by copying
at most 64 MiB) has ``onnxruntime`` and ``numpy`` but not this project, and the int8 towers are
28-421 MB. The speed of a CPU graph does not depend on the weight values (int8 GEMMs, no
data-dependent branches), so the graph plus each initializer's dtype and byte range is enough:

    strip  MODEL.onnx OUT_DIR   -> OUT_DIR/<stem>.onnx (weights as external data in <stem>.bin,
                                   not written) + <stem>.layout.json (offset, length, dtype of each)
    fill   OUT_DIR              -> writes every <stem>.bin from its layout with seeded random values
                                   (floats positive in [0.01, 0.1): scales and norms stay sane; int8/uint8 uniform;
                                   int32/int64 constants, e.g. position indices, keep their real values)

``strip`` needs the ``onnx`` package; ``fill`` only numpy. This is a script, not library code.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

_DTYPES = {1: "float32", 2: "uint8", 3: "int8", 6: "int32", 7: "int64", 10: "float16", 11: "float64"}


def strip(model: str, out_dir: str) -> dict:
    import onnx
    import onnx.numpy_helper
    from onnx.external_data_helper import convert_model_to_external_data

    src = Path(model)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    proto = onnx.load(str(src))
    exact = {t.name: onnx.numpy_helper.to_array(t) for t in proto.graph.initializer
             if t.data_type in (6, 7)}  # integer constants (indices, shapes) keep their values
    bin_name = f"{src.stem}.bin"
    convert_model_to_external_data(proto, all_tensors_to_one_file=True, location=bin_name, size_threshold=1024)
    onnx.save_model(proto, str(out / src.name), save_as_external_data=True, all_tensors_to_one_file=True,
                    location=bin_name, size_threshold=1024)
    layout = []
    for t in proto.graph.initializer:
        info = {e.key: e.value for e in t.external_data}
        if "offset" in info:
            entry = {"offset": int(info["offset"]), "length": int(info["length"]), "dtype": _DTYPES[t.data_type]}
            if t.name in exact:
                entry["values"] = exact[t.name].reshape(-1).tolist()
            layout.append(entry)
    (out / f"{src.stem}.layout.json").write_text(json.dumps({"bin": bin_name, "tensors": layout}))
    (out / bin_name).unlink(missing_ok=True)  # the real weights stay here
    return {"graph_bytes": (out / src.name).stat().st_size, "tensors": len(layout),
            "weight_bytes": sum(x["length"] for x in layout)}


def fill(out_dir: str) -> dict:
    import numpy as np

    rng = np.random.default_rng(0)
    written = {}
    for layout_file in sorted(Path(out_dir).glob("*.layout.json")):
        layout = json.loads(layout_file.read_text())
        size = max((x["offset"] + x["length"] for x in layout["tensors"]), default=0)
        buf = np.zeros(size, dtype=np.uint8)
        for x in layout["tensors"]:
            dtype = np.dtype(x["dtype"])
            n = x["length"] // dtype.itemsize
            if "values" in x:
                values = np.asarray(x["values"], dtype=dtype)
            elif dtype.kind == "f":
                values = rng.uniform(0.01, 0.1, n).astype(dtype)
            else:
                info = np.iinfo(dtype)
                values = rng.integers(max(info.min, -127), min(info.max, 127), n, endpoint=True).astype(dtype)
            buf[x["offset"] : x["offset"] + x["length"]] = values.view(np.uint8)
        (Path(out_dir) / layout["bin"]).write_bytes(buf.tobytes())
        written[layout["bin"]] = size
    return written


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("strip")
    s.add_argument("model")
    s.add_argument("out_dir")
    f = sub.add_parser("fill")
    f.add_argument("out_dir")
    args = p.parse_args()
    print(json.dumps(strip(args.model, args.out_dir) if args.mode == "strip" else fill(args.out_dir)))


if __name__ == "__main__":
    main()
