#!/usr/bin/env python3
"""OCR (PP-OCRv4): milliseconds per image and character accuracy, tessera next to RapidOCR.

The images are drawn here with Pillow in DejaVu Sans (Debian's fonts-dejavu-core), so the text
they hold is known: a one-line strip (a cropped line or a screenshot of one) and a page of
paragraphs. Both sides do the whole job: read the file, detect, classify the angle, recognise.
The peer is rapidocr-onnxruntime 1.4.4, whose ONNX files the catalog's pp-ocrv4 are; both run
ONNX Runtime with the same intra-op thread count (--threads, default: ONNX Runtime's own choice,
one per physical core, on both sides).

Character accuracy is 1 - (edit distance / reference length) over the whole text, lines joined by
newlines in the order each side gives them.

    python3 -m venv ~/.cache/tessera-bench/venv
    ~/.cache/tessera-bench/venv/bin/pip install rapidocr-onnxruntime==1.4.4 pillow
    python3 bench/ocr_vs_rapidocr.py --tessera target/release/tessera
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"

LINE = "Tessera reads this line of text in one pass: 42 words, 7 numbers."

PAGE = [
    "Local inference keeps every document on the machine that holds it.",
    "The detector finds each line of text and draws a box around it;",
    "the angle classifier turns the lines that were scanned upside down,",
    "and the recognizer reads each line into characters, left to right.",
    "",
    "Invoice 2024-117, due on 15 March: 3 items, total 86.50 EUR.",
    "Ship to: 221B Baker Street, London NW1 6XE, United Kingdom.",
    "Questions? Write to billing@example.com or call +44 20 7946 0018.",
    "",
    "The quick brown fox jumps over the lazy dog. Pack my box with",
    "five dozen liquor jugs. How vexingly quick daft zebras jump!",
    "Sphinx of black quartz, judge my vow. Waltz, bad nymph, for quick jigs vex.",
]


def draw(folder):
    """The two test images and their texts."""
    from PIL import Image, ImageDraw, ImageFont

    images = []
    font = ImageFont.truetype(FONT, 28)
    width = int(font.getlength(LINE)) + 40
    strip = Image.new("RGB", (width, 64), "white")
    ImageDraw.Draw(strip).text((20, 16), LINE, font=font, fill="black")
    path = os.path.join(folder, "line.png")
    strip.save(path)
    images.append((path, LINE))

    font = ImageFont.truetype(FONT, 24)
    page = Image.new("RGB", (1240, 1754), "white")  # A4 at 150 dpi
    pen = ImageDraw.Draw(page)
    for row, text in enumerate(PAGE):
        pen.text((100, 120 + row * 48), text, font=font, fill="black")
    path = os.path.join(folder, "page.png")
    page.save(path)
    images.append((path, "\n".join(line for line in PAGE if line)))
    return images


def edit_distance(a, b):
    previous = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        current = [i]
        for j, y in enumerate(b, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (x != y)))
        previous = current
    return previous[-1]


def accuracy(text, reference):
    return max(0.0, 1.0 - edit_distance(text, reference) / len(reference))


def peer(paths, rounds, threads):
    from rapidocr_onnxruntime import RapidOCR

    engine = RapidOCR(**({"intra_op_num_threads": threads} if threads else {}))

    def one(path):
        result, _ = engine(path)
        return "\n".join(line[1] for line in result or [])

    results = []
    for path in paths:
        text = one(path)
        timings = []
        for _ in range(rounds):
            started = time.perf_counter()
            text = one(path)
            timings.append((time.perf_counter() - started) * 1000.0)
        results.append({"image": path, "ms_per_image": statistics.median(timings), "ms_best": min(timings), "text": text})
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tessera", default="target/release/tessera")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="intra-op threads on both sides (0: ONNX Runtime's default)")
    parser.add_argument("--python", default=os.path.expanduser("~/.cache/tessera-bench/venv/bin/python"),
                        help="a Python with rapidocr-onnxruntime 1.4.4 and pillow for the peer")
    parser.add_argument("--keep", help="write the images into this folder and keep them")
    parser.add_argument("--peer-only", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.peer_only is not None:
        print(json.dumps(peer(args.peer_only, args.rounds, args.threads)))
        return
    folder = args.keep or tempfile.mkdtemp(prefix="tessera-ocr-bench-")
    os.makedirs(folder, exist_ok=True)
    images = draw(folder)
    paths = [path for path, _ in images]
    python = args.python if os.path.exists(args.python) else sys.executable
    command = [args.tessera, "bench", "vision", "--model", "pp-ocrv4", "--json", "--rounds", str(args.rounds)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    ours = subprocess.run(command + paths, check=True, capture_output=True, text=True).stdout
    ours = [json.loads(line) for line in ours.splitlines() if line.startswith("{")]
    theirs = json.loads(subprocess.run(
        [python, __file__, "--rounds", str(args.rounds), "--threads", str(args.threads), "--peer-only", *paths],
        check=True, capture_output=True, text=True).stdout)
    # Medians, and in brackets the fastest round of each side: on a shared machine the least
    # disturbed one.
    print(f"{'image':<10} {'tessera ms':>17} {'rapidocr ms':>17} {'speed-up':>15} {'tessera acc':>12} {'rapidocr acc':>13}")
    for (path, reference), a, b in zip(images, ours, theirs):
        name = os.path.basename(path)
        print(f"{name:<10} {a['ms_per_image']:>8.1f} ({a['ms_best']:>6.1f}) {b['ms_per_image']:>8.1f} ({b['ms_best']:>6.1f}) "
              f"{b['ms_per_image'] / a['ms_per_image']:>6.2f}x ({b['ms_best'] / a['ms_best']:.2f}x) "
              f"{accuracy(a['text'], reference):>12.4f} {accuracy(b['text'], reference):>13.4f}")
    for (path, reference), a, b in zip(images, ours, theirs):
        for who, text in (("tessera", a["text"]), ("rapidocr", b["text"])):
            if text != reference:
                print(f"\n{os.path.basename(path)}, {who} read:\n{text}")


if __name__ == "__main__":
    main()
