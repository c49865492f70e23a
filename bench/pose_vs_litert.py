#!/usr/bin/env python3
"""Human pose (MediaPipe BlazePose full): tessera next to ai-edge-litert running the TFLite models.

Both do the whole job: decode the photo, letterbox it into the detector's 224 x 224 input (-1 to
1), decode the 2,254 SSD anchors, merge overlapping detections by score (weighted NMS), cut each
person's rotated square region into the landmark model's 256 x 256 input (0 to 1, bilinear,
edges replicated), run it and map the 33 landmarks back. tessera runs the ONNX graphs it converted
from the TFLite files at pull time on ONNX Runtime; the peer runs the TFLite files themselves with
ai-edge-litert (TensorFlow Lite's runtime, XNNPACK), pre- and post-processing in numpy, with the
same number of threads. The landmarks tessera sees (visibility >= 0.5) are compared with the
peer's: the median and the largest distance, in pixels (the two letterbox resizes differ a
little, so the regions, and the landmarks with them, differ by a few pixels).

    python3 bench/pose_vs_litert.py --tessera target/release/tessera [IMAGE...]
"""

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import time

HOME = os.environ.get("TESSERA_HOME", os.path.expanduser("~/.cache/tessera"))
IMAGES = [os.path.join(HOME, "fixtures", name) for name in ("astronaut.png", "camera.png")]
FIXTURES = os.path.join(HOME, "fixtures", "mediapipe-pose")


def anchors():
    import numpy as np
    centres = []
    for stride, per_cell in ((8, 2), (16, 2), (32, 6)):
        cells = math.ceil(224 / stride)
        for y in range(cells):
            for x in range(cells):
                centres += [((x + 0.5) / cells, (y + 0.5) / cells)] * per_cell
    return np.array(centres, dtype=np.float32)


def peer(images, rounds, threads):
    import numpy as np
    from ai_edge_litert.interpreter import Interpreter
    from PIL import Image

    def interpreter(name):
        it = Interpreter(model_path=os.path.join(FIXTURES, name), num_threads=threads)
        it.allocate_tensors()
        return it

    detector, landmarker = interpreter("pose_detection.tflite"), interpreter("pose_landmark_full.tflite")
    centres = anchors()

    def run(it, tensor):
        it.set_tensor(it.get_input_details()[0]["index"], tensor)
        it.invoke()
        return {d["name"]: it.get_tensor(d["index"]) for d in it.get_output_details()}

    def outputs_by_size(outputs):
        return sorted(outputs.values(), key=lambda a: -a.size)

    def one(path):
        photo = Image.open(path).convert("RGB")
        width, height = photo.size
        scale = min(224 / width, 224 / height)
        new = (max(1, round(width * scale)), max(1, round(height * scale)))
        left, top = (224 - new[0]) // 2, (224 - new[1]) // 2
        canvas = Image.new("RGB", (224, 224))
        canvas.paste(photo.resize(new, Image.BILINEAR), (left, top))
        tensor = (np.asarray(canvas, dtype=np.float32) / 127.5 - 1.0)[None]
        outputs = run(detector, tensor)
        boxes = next(a for a in outputs.values() if a.shape[-1] == 12)[0]
        scores = next(a for a in outputs.values() if a.shape[-1] == 1)[0, :, 0]
        scores = 1 / (1 + np.exp(-np.clip(scores, -80, 80)))
        keep = np.nonzero(scores >= 0.5)[0]
        sx, sy, px, py = new[0] / 224, new[1] / 224, left / 224, top / 224
        found = []
        for i in keep:
            raw, (ax, ay) = boxes[i] / 224, centres[i]
            cx, cy, w, h = raw[0] + ax, raw[1] + ay, raw[2], raw[3]
            box = np.array([(cx - w / 2 - px) / sx, (cy - h / 2 - py) / sy, (cx + w / 2 - px) / sx, (cy + h / 2 - py) / sy])
            kps = np.array([((raw[4 + 2 * k] + ax - px) / sx, (raw[5 + 2 * k] + ay - py) / sy) for k in range(4)])
            found.append((scores[i], box, kps))
        found.sort(key=lambda f: -f[0])
        merged = []
        while found:
            best = found[0]
            group = [f for f in found if iou(f[1], best[1]) > 0.3]
            found = [f for f in found if iou(f[1], best[1]) <= 0.3]
            total = sum(f[0] for f in group)
            merged.append((best[0], sum(f[2] * f[0] for f in group) / total))
        pixels = np.asarray(photo, dtype=np.float32)
        people = []
        for _, kps in merged[:5]:
            x0, y0 = kps[0, 0] * width, kps[0, 1] * height
            x1, y1 = kps[1, 0] * width, kps[1, 1] * height
            side = 2 * math.hypot(x1 - x0, y1 - y0) * 1.25
            angle = math.pi / 2 - math.atan2(-(y1 - y0), x1 - x0)
            angle -= 2 * math.pi * math.floor((angle + math.pi) / (2 * math.pi))
            cos, sin = math.cos(angle), math.sin(angle)
            u = (np.arange(256) + 0.5) / 256 - 0.5
            uu, vv = np.meshgrid(u, u)
            xs = x0 + (cos * uu - sin * vv) * side - 0.5
            ys = y0 + (sin * uu + cos * vv) * side - 0.5
            crop = bilinear(pixels, xs, ys) / 255.0
            outputs = outputs_by_size(run(landmarker, crop[None].astype(np.float32)))
            flag = next(a for a in outputs if a.size == 1).item()
            values = next(a for a in outputs if a.size == 195).reshape(39, 5)
            if flag < 0.5:
                continue
            lu, lv = values[:33, 0] / 256 - 0.5, values[:33, 1] / 256 - 0.5
            people.append(np.stack([x0 + (cos * lu - sin * lv) * side, y0 + (sin * lu + cos * lv) * side], 1))
        return people

    def bilinear(pixels, xs, ys):
        h, w = pixels.shape[:2]
        xs, ys = np.clip(xs, 0, w - 1), np.clip(ys, 0, h - 1)
        x0, y0 = np.floor(xs).astype(int), np.floor(ys).astype(int)
        x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
        fx, fy = (xs - x0)[..., None], (ys - y0)[..., None]
        top = pixels[y0, x0] * (1 - fx) + pixels[y0, x1] * fx
        bottom = pixels[y1, x0] * (1 - fx) + pixels[y1, x1] * fx
        return top * (1 - fy) + bottom * fy

    def iou(a, b):
        w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
        return w * h / union if union > 0 else 0.0

    results = []
    for path in images:
        people = one(path)
        timings = []
        for _ in range(rounds):
            started = time.perf_counter()
            one(path)
            timings.append((time.perf_counter() - started) * 1000.0)
        results.append({"image": path, "ms_per_image": statistics.median(timings),
                        "people": [p.tolist() for p in people]})
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("images", nargs="*", default=IMAGES)
    parser.add_argument("--tessera", default="target/release/tessera")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--peer-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer_only:
        print(json.dumps(peer(args.images, args.rounds, args.threads)))
        return
    ours = subprocess.run([args.tessera, "bench", "vision", "--task", "pose", "--json", "--rounds", str(args.rounds),
                           "--threads", str(args.threads), *args.images],
                          check=True, capture_output=True, text=True).stdout
    ours = [json.loads(line) for line in ours.splitlines() if line.startswith("{")]
    theirs = json.loads(subprocess.run([sys.executable, __file__, "--peer-only", "--rounds", str(args.rounds),
                                        "--threads", str(args.threads), *args.images],
                                       check=True, capture_output=True, text=True).stdout)
    print(f"{'image':<16} {'tessera ms':>10} {'litert ms':>10} {'speed-up':>9} {'apart px (median / max)':>24}")
    for a, b in zip(ours, theirs):
        found = json.loads(subprocess.run([args.tessera, "pose", "--json", a["image"]], check=True,
                                          capture_output=True, text=True).stdout)["people"]
        if len(found) == len(b["people"]):
            gaps = sorted(math.hypot(l["x"] - q[0], l["y"] - q[1])
                          for p, theirs_p in zip(found, b["people"]) for l, q in zip(p["landmarks"], theirs_p)
                          if l["visibility"] >= 0.5) or [0.0]
            apart = f"{statistics.median(gaps):.1f} / {gaps[-1]:.1f}"
        else:
            apart = f"{len(found)} vs {len(b['people'])} people"
        print(f"{os.path.basename(a['image']):<16} {a['ms_per_image']:>10.1f} {b['ms_per_image']:>10.1f} "
              f"{b['ms_per_image'] / a['ms_per_image']:>8.2f}x {apart:>24}")


if __name__ == "__main__":
    main()
