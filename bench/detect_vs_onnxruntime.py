#!/usr/bin/env python3
"""Object detection (YOLOv8n-320, NudeNet): tessera next to onnxruntime + numpy from Python.

The peer does what tessera does for a request: decode the file (PIL), letterbox it into the
graph's 320 x 320 input (bilinear, centred on grey 114), scale to 0-1, run the graph, keep the
anchors whose best class clears the confidence, map the boxes back and suppress overlaps per
class (numpy). Besides that whole path it times the graph alone on a prepared tensor: the issue's
target is tessera's JPEG -> boxes throughput at >= 0.9x the peer's model-only throughput.
Same graph, ONNX Runtime's default threads on both sides; with --concurrency N both sides run
batches of N (tessera: N requests at once, batched by its worker; the peer: one [N, 3, 320, 320]
tensor). The boxes of both are compared (largest corner difference between matched boxes).
With --replicas N tessera serves the requests with N copies of the graph on cores/N threads each
(the peer keeps one session on the default threads).

    python3 bench/detect_vs_onnxruntime.py --tessera target/release/tessera [IMAGE...]
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HOME = os.environ.get("TESSERA_HOME", os.path.expanduser("~/.cache/tessera"))
IMAGES = [os.path.join(HOME, "fixtures", name) for name in ("astronaut.png", "camera.png")]
SIZE, CONFIDENCE, IOU = 320, 0.2, 0.45


def peer(model, images, rounds, concurrency):
    import numpy as np
    import onnxruntime as ort
    from PIL import Image

    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0].name

    def prepare(path):
        image = Image.open(path).convert("RGB")
        width, height = image.size
        scale = min(SIZE / width, SIZE / height)
        new = (max(1, round(width * scale)), max(1, round(height * scale)))
        canvas = Image.new("RGB", (SIZE, SIZE), (114, 114, 114))
        left, top = (SIZE - new[0]) // 2, (SIZE - new[1]) // 2
        canvas.paste(image.resize(new, Image.BILINEAR), (left, top))
        tensor = (np.asarray(canvas, dtype=np.float32) / 255.0).transpose(2, 0, 1)
        return tensor, (new[0] / width, left, top, width, height)

    def boxes(rows, letterbox):
        scale, left, top, width, height = letterbox
        scores = rows[4:]
        best = scores.argmax(0)
        confidence = scores[best, np.arange(scores.shape[1])]
        keep = confidence >= CONFIDENCE
        cx, cy, w, h = rows[:4, keep]
        corners = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], 1)
        corners = (corners - [left, top, left, top]) / scale
        corners = np.clip(corners, 0, [width, height, width, height])
        classes, confidence = best[keep], confidence[keep]
        found = []
        for index in np.argsort(-confidence):
            box = corners[index]
            same = [f for f in found if f[0] == classes[index]]
            if all(iou(box, f[2]) <= IOU for f in same):
                found.append((int(classes[index]), float(confidence[index]), box))
        return found

    def iou(a, b):
        w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = w * h
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return inter / union if union > 0 else 0.0

    def whole(path):
        prepared = [prepare(path) for _ in range(concurrency)]
        batch = np.stack([tensor for tensor, _ in prepared])
        output = session.run(None, {feed: batch})[0]
        return [boxes(output[i], letterbox) for i, (_, letterbox) in enumerate(prepared)]

    results = []
    for path in images:
        whole(path)
        timings = []
        for _ in range(rounds):
            started = time.perf_counter()
            found = whole(path)[0]
            timings.append((time.perf_counter() - started) * 1000.0 / concurrency)
        batch = np.stack([prepare(path)[0] for _ in range(concurrency)])
        model_only = []
        for _ in range(rounds):
            started = time.perf_counter()
            session.run(None, {feed: batch})
            model_only.append((time.perf_counter() - started) * 1000.0 / concurrency)
        results.append({
            "image": path,
            "ms_per_image": statistics.median(timings),
            "model_only_ms": statistics.median(model_only),
            "boxes": [[c, s, [float(v) for v in b]] for c, s, b in found],
        })
    return results


def largest_difference(ours, theirs):
    """The largest corner difference between boxes matched by class and order; None if the two
    found different numbers of boxes. Boxes within 0.05 of the confidence threshold are left out:
    a score of 0.2003 against 0.1997 is float noise, not a disagreement."""
    ours = [a for a in ours if a["confidence"] >= CONFIDENCE + 0.05]
    theirs = [b for b in theirs if b[1] >= CONFIDENCE + 0.05]
    if len(ours) != len(theirs):
        return None
    worst = 0.0
    for a, (_, _, box) in zip(ours, theirs):
        b = a["box"]
        worst = max(worst, *(abs(x - y) for x, y in zip([b["x1"], b["y1"], b["x2"], b["y2"]], box)))
    return worst


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="*", default=IMAGES)
    parser.add_argument("--tessera", default="target/release/tessera")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--replicas", type=int, default=1,
                        help="tessera's --replicas: copies of the graph, each on cores/N threads")
    parser.add_argument("--jpeg", action="store_true", help="send each image as a JPEG (quality 90), as the target names")
    parser.add_argument("--python", default=os.path.expanduser("~/.cache/tessera-bench/venv/bin/python"),
                        help="a Python with onnxruntime, numpy and pillow for the peer")
    parser.add_argument("--peer-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    model = os.path.join(HOME, "models", "yolov8n-320-nudenet", "model.onnx")
    if args.peer_only:
        print(json.dumps(peer(model, args.images, args.rounds, args.concurrency)))
        return
    images = args.images
    if args.jpeg:
        from PIL import Image
        folder = tempfile.mkdtemp()
        images = []
        for path in args.images:
            out = os.path.join(folder, os.path.splitext(os.path.basename(path))[0] + ".jpg")
            Image.open(path).convert("RGB").save(out, quality=90)
            images.append(out)
    python = args.python if os.path.exists(args.python) else sys.executable
    ours = subprocess.run([args.tessera, "bench", "vision", "--task", "detect", "--json", "--rounds", str(args.rounds),
                           "--concurrency", str(args.concurrency), "--replicas", str(args.replicas), *images],
                          check=True, capture_output=True, text=True).stdout
    ours = [json.loads(line) for line in ours.splitlines() if line.startswith("{")]
    theirs = json.loads(subprocess.run([python, __file__, "--peer-only", "--rounds", str(args.rounds),
                                        "--concurrency", str(args.concurrency), *images],
                                       check=True, capture_output=True, text=True).stdout)
    found = {}
    for path in images:
        out = subprocess.run([args.tessera, "detect", "--json", path], check=True, capture_output=True, text=True)
        found[path] = json.loads(out.stdout)["objects"]
    print(f"{'image':<16} {'tessera ms':>10} {'peer ms':>8} {'peer graph ms':>13} {'vs peer':>8} {'vs graph':>9} {'box diff px':>11}")
    for a, b in zip(ours, theirs):
        name = os.path.basename(a["image"])
        diff = largest_difference(found[a["image"]], b["boxes"])
        diff = "different" if diff is None else f"{diff:.2f}"
        print(f"{name:<16} {a['ms_per_image']:>10.2f} {b['ms_per_image']:>8.2f} {b['model_only_ms']:>13.2f} "
              f"{b['ms_per_image'] / a['ms_per_image']:>7.2f}x {b['model_only_ms'] / a['ms_per_image']:>8.2f}x {diff:>11}")


if __name__ == "__main__":
    main()
