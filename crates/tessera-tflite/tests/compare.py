#!/usr/bin/env python3
"""Runs TFLite models with ai-edge-litert and their converted ONNX with onnxruntime on the same
inputs, and prints the largest absolute difference per output.

Usage: compare.py TFLITE_DIR ONNX_DIR [--image PHOTO] [--tolerance 1e-3] [--layers] [MODEL_STEM...]

Each MODEL_STEM.tflite in TFLITE_DIR is paired with MODEL_STEM.onnx in ONNX_DIR (write those with
`cargo run --release -p tessera-tflite --example tflite2onnx -- ONNX_DIR TFLITE_DIR/*.tflite`).
Inputs: uniform noise, a smooth synthetic picture (gradients, discs, a little noise) and, with
--image, a real photo resized to the model input; all in the value range the MediaPipe pose
models expect (the detector [-1, 1], the landmark models [0, 1]).

The reference is TFLite's default CPU path (XNNPack), as MediaPipe runs it. float32 results
depend on summation order, so the script also runs TFLite's optimized builtin kernels and its
reference kernels, and prints how far TFLite's three CPU paths disagree among themselves
("tflite spread"). An output passes when the ONNX difference is within --tolerance ("ok"), or
within --spread-factor times that spread ("noise": TFLite is no closer to itself); the script
exits 1 if any output is over both. A real conversion error (a wrong padding, layout or resize
mode) is orders of magnitude larger.

--layers also compares every intermediate tensor with TFLite's reference kernels (the converter
names ONNX values after TFLite tensors; rank-4 ones are NCHW) and prints the worst relative
differences: the first tensor that is far off is where a conversion goes wrong.

Needs: pip install onnxruntime numpy ai-edge-litert onnx (and pillow for --image)
"""

import argparse
import pathlib
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
from ai_edge_litert.interpreter import Interpreter, OpResolverType

KERNELS = {
    "xnnpack": OpResolverType.AUTO,
    "builtin": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    "reference": OpResolverType.BUILTIN_REF,
}


def image_like(shape, rng, low, high):
    """A picture-like NHWC float input: colour gradients, a few filled discs, mild noise."""
    if len(shape) != 4:
        return rng.uniform(low, high, size=shape).astype(np.float32)
    n, h, w, c = shape
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.zeros((n, h, w, c), np.float32)
    for ch in range(c):
        img[..., ch] = 0.5 + 0.3 * np.sin(x / w * (2 + ch) * np.pi) * np.cos(y / h * (1 + ch) * np.pi)
    for _ in range(6):
        cy, cx, r = rng.uniform(0, h), rng.uniform(0, w), rng.uniform(h / 16, h / 4)
        mask = (y - cy) ** 2 + (x - cx) ** 2 < r * r
        img[:, mask, :] = rng.uniform(0, 1, size=c)
    img += rng.normal(0, 0.02, size=img.shape).astype(np.float32)
    img = np.clip(img, 0, 1)
    return (low + (high - low) * img).astype(np.float32)


def photo(path, shape, low, high):
    """A photo resized (squashed) to the NHWC input shape."""
    from PIL import Image

    n, h, w, c = shape
    img = Image.open(path).convert("RGB").resize((w, h), Image.BILINEAR)
    arr = np.asarray(img, np.float32)[None, ..., :c] / 255.0
    return (low + (high - low) * np.repeat(arr, n, axis=0)).astype(np.float32)


def run_tflite(path, feeds, resolver, keep=False):
    interp = Interpreter(
        model_path=str(path), experimental_op_resolver_type=resolver, experimental_preserve_all_tensors=keep
    )
    interp.allocate_tensors()
    for d in interp.get_input_details():
        interp.set_tensor(d["index"], feeds[d["name"]])
    interp.invoke()
    outputs = {d["name"]: interp.get_tensor(d["index"]) for d in interp.get_output_details()}
    return outputs, interp


def max_abs_diff(a, b):
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0


def layers(tfl_path, onnx_path, feeds, top=8):
    """Worst relative differences of intermediate tensors against TFLite's reference kernels."""
    _, interp = run_tflite(tfl_path, feeds, KERNELS["reference"], keep=True)
    model = onnx.load(str(onnx_path))
    produced = {o for node in model.graph.node for o in node.output}
    tensors = {t["name"]: t for t in interp.get_tensor_details() if t["name"] in produced}
    outputs = {o.name for o in model.graph.output}
    for name in tensors:
        if name not in outputs:
            model.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
    rows = []
    for name, t in tensors.items():
        ref = interp.get_tensor(t["index"])
        value = got[name]
        if name not in outputs and value.ndim == 4:
            value = value.transpose(0, 2, 3, 1)
        if value.shape != ref.shape:
            rows.append((float("inf"), t["index"], f"shape {value.shape} != {ref.shape}", name))
            continue
        diff = max_abs_diff(ref, value)
        scale = float(np.max(np.abs(ref))) if ref.size else 0.0
        rows.append((diff / max(scale, 1e-12), t["index"], f"abs {diff:.2e} of {scale:.3g}", name))
    rows.sort(reverse=True)
    print(f"  {len(rows)} intermediate tensors; worst relative differences:")
    for rel, index, what, name in rows[:top]:
        print(f"    tensor {index:4d} rel {rel:.2e} {what}  {name[:70]}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("tflite_dir", type=pathlib.Path)
    ap.add_argument("onnx_dir", type=pathlib.Path)
    ap.add_argument("models", nargs="*")
    ap.add_argument("--tolerance", type=float, default=1e-3)
    ap.add_argument("--spread-factor", type=float, default=2.0)
    ap.add_argument("--image", type=pathlib.Path, help="a photo to use as one more input")
    ap.add_argument("--layers", action="store_true", help="compare intermediate tensors too")
    args = ap.parse_intermixed_args()

    stems = args.models or sorted(p.stem for p in args.tflite_dir.glob("*.tflite"))
    if not stems:
        sys.exit(f"no .tflite files in {args.tflite_dir}")
    failed = []
    for stem in stems:
        tfl_path = args.tflite_dir / f"{stem}.tflite"
        onnx_path = args.onnx_dir / f"{stem}.onnx"
        onnx.checker.check_model(str(onnx_path))
        sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        in_details = Interpreter(model_path=str(tfl_path)).get_input_details()
        # The detector takes [-1, 1], the landmark models [0, 1].
        low = -1.0 if "detection" in stem else 0.0
        rng = np.random.default_rng(0)
        cases = {
            "random": {d["name"]: rng.uniform(low, 1.0, size=d["shape"]).astype(np.float32) for d in in_details},
            "synthetic": {d["name"]: image_like(tuple(d["shape"]), rng, low, 1.0) for d in in_details},
        }
        if args.image:
            cases["photo"] = {d["name"]: photo(args.image, tuple(d["shape"]), low, 1.0) for d in in_details}
        for case, feeds in cases.items():
            tflite = {k: run_tflite(tfl_path, feeds, r)[0] for k, r in KERNELS.items()}
            start = time.perf_counter()
            got = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds)))
            ms = (time.perf_counter() - start) * 1e3
            print(f"{stem} [{case}] onnxruntime {ms:.1f} ms")
            for name, ref in tflite["xnnpack"].items():
                value = got[name]
                if ref.shape != value.shape:
                    print(f"  {name}: shape {value.shape} != tflite {ref.shape}")
                    failed.append(f"{stem}/{case}/{name}")
                    continue
                diff = max_abs_diff(ref, value)
                to_ref = max_abs_diff(tflite["reference"][name], value)
                kernels = list(tflite.values())
                spread = max(
                    max_abs_diff(a[name], b[name]) for i, a in enumerate(kernels) for b in kernels[i + 1 :]
                )
                scale = float(np.max(np.abs(ref))) if ref.size else 0.0
                if diff <= args.tolerance:
                    verdict = "ok"
                elif diff <= args.spread_factor * spread:
                    verdict = "noise"
                else:
                    verdict = "FAIL"
                    failed.append(f"{stem}/{case}/{name}")
                print(
                    f"  {name:10s} {str(ref.shape):16s} max|diff| {diff:.2e} (vs reference kernels {to_ref:.2e})"
                    f"  tflite spread {spread:.2e}  max|value| {scale:8.3g}  {verdict}"
                )
            if args.layers:
                layers(tfl_path, onnx_path, feeds)
    print("FAILED: " + ", ".join(failed) if failed else "all outputs match")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
