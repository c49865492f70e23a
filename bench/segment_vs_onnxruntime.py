#!/usr/bin/env python3
"""Background removal (IS-Net): milliseconds per image, tessera next to onnxruntime from Python.

Both do the whole job a request asks for: read the image file, resize it to the graph's
1024 x 1024 input bilinearly, normalise ((value - 128) / 256, IMG.LY's reference), run the graph,
scale the mask to 0-255 and resize it back, and encode the mask and the cut-out (RGBA) as PNG.
Same graph (the catalog's isnet-general-small), ONNX Runtime's default threads on both sides (one
per physical core). The peer needs onnxruntime, numpy and pillow
(python3 -m venv ~/.cache/tessera-bench/venv && pip install onnxruntime numpy pillow).

    python3 bench/segment_vs_onnxruntime.py --tessera target/release/tessera [IMAGE...]
"""

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import time

HOME = os.environ.get("TESSERA_HOME", os.path.expanduser("~/.cache/tessera"))
IMAGES = [os.path.join(HOME, "fixtures", name) for name in ("astronaut.png", "rocket.jpg")]


def peer(model, images, rounds):
    import numpy as np
    import onnxruntime as ort
    from PIL import Image

    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0].name

    def one(path):
        image = Image.open(path).convert("RGB")
        resized = np.asarray(image.resize((1024, 1024), Image.BILINEAR), dtype=np.float32)
        tensor = ((resized - 128.0) / 256.0).transpose(2, 0, 1)[None]
        mask = session.run(None, {feed: tensor})[0][0, 0]
        mask = Image.fromarray((np.clip(mask, 0.0, 1.0) * 255.0).round().astype(np.uint8))
        mask = mask.resize(image.size, Image.BILINEAR)
        cutout = image.copy()
        cutout.putalpha(mask)
        for picture in (mask, cutout):
            picture.save(io.BytesIO(), format="PNG")

    results = []
    for path in images:
        one(path)
        timings = []
        for _ in range(rounds):
            started = time.perf_counter()
            one(path)
            timings.append((time.perf_counter() - started) * 1000.0)
        results.append({"image": path, "ms_per_image": statistics.median(timings)})
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="*", default=IMAGES)
    parser.add_argument("--tessera", default="target/release/tessera")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--python", default=os.path.expanduser("~/.cache/tessera-bench/venv/bin/python"),
                        help="a Python with onnxruntime, numpy and pillow for the peer")
    parser.add_argument("--peer-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    model = os.path.join(HOME, "models", "isnet-general-small", "model.onnx")
    if args.peer_only:
        print(json.dumps(peer(model, args.images, args.rounds)))
        return
    python = args.python if os.path.exists(args.python) else sys.executable
    ours = subprocess.run([args.tessera, "bench", "vision", "--json", "--rounds", str(args.rounds), *args.images],
                          check=True, capture_output=True, text=True).stdout
    ours = [json.loads(line) for line in ours.splitlines() if line.startswith("{")]
    theirs = json.loads(subprocess.run([python, __file__, "--peer-only", "--rounds", str(args.rounds), *args.images],
                                       check=True, capture_output=True, text=True).stdout)
    print(f"{'image':<40} {'tessera ms':>11} {'onnxruntime+PIL ms':>19} {'speed-up':>9}")
    for a, b in zip(ours, theirs):
        name = os.path.basename(a["image"])
        print(f"{name:<40} {a['ms_per_image']:>11.1f} {b['ms_per_image']:>19.1f} {b['ms_per_image'] / a['ms_per_image']:>8.2f}x")


if __name__ == "__main__":
    main()
