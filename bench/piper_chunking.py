#!/usr/bin/env python3
"""Piper: what one graph call costs, and three ways to speak a sentence early.

Measures the voice's ONNX graph in ONNX Runtime from Python (no tessera), each way in its own
process so that no other session's threads spin beside it, the ways taken in turn for
`--repeats` rounds; each figure is the median of `--runs` calls. The sentence is `tessera bench
speak`'s ten words, phonemized in advance (espeak-ng's output, written below), noise_w 0 so that
every call makes the same audio.

- one call: the whole sentence in one run, as piper-tts does (first audio = all of it);
- first clause: tessera's way, the first three words alone, then the rest;
- windowed: the graph split in two (text side, then the HiFi-GAN decoder), one pass of the text
  side for the whole sentence, then the decoder over the first 24 frames of the latent (plus 8
  of margin: the decoder sees 12 frames either side, and 8 keep the seam 70 dB under the
  signal), then over the rest. The two sessions share ONNX Runtime's global thread pool; with a
  pool each, their spinning workers slow each other by half.

It also times one call on texts of 2 to 30 words: milliseconds per second of audio by length.
Needs onnxruntime, numpy and onnx (`.ci/run` installs them for the system python3).

    python3 bench/piper_chunking.py
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
VOICE = os.path.join(HOME, "models", "piper-en-us-joe-medium", "model.onnx")
FIRST_CLAUSE = "ðə kwˈɪk bɹˈaʊn"
REST = "fˈɑːks dʒˈʌmps ˌoʊvɚ ðə lˈeɪzi dˈɑːɡ tədˈeɪ."
FIRST_WINDOW, MARGIN = 24, 8
WAYS = ["one call", "first clause", "windowed"]


def phoneme_ids(phonemes):
    with open(VOICE + ".json", encoding="utf-8") as f:
        table = json.load(f)["phoneme_id_map"]
    ids = table["^"] + table["_"]
    for phoneme in phonemes:
        ids += table[phoneme] + table["_"]
    return ids + table["$"]


def feed(phonemes):
    import numpy as np

    ids = phoneme_ids(phonemes)
    return {"input": np.array([ids], np.int64), "input_lengths": np.array([len(ids)], np.int64),
            "scales": np.array([0.667, 1.0, 0.0], np.float32)}


def split_graph(directory):
    """The text side (everything before the decoder) and the decoder, as two files."""
    import onnx
    from onnx import utils

    graph = onnx.load(VOICE).graph
    decoder = {n.name for n in graph.node if n.name.startswith("/dec/")}
    made = {o for n in graph.node if n.name in decoder for o in n.output}
    constants = {i.name for i in graph.initializer}
    cut = sorted({i for n in graph.node if n.name in decoder for i in n.input
                  if i and i not in made and i not in constants})
    text_side, decoder_file = os.path.join(directory, "text.onnx"), os.path.join(directory, "dec.onnx")
    utils.extract_model(VOICE, text_side, [i.name for i in graph.input], cut)
    utils.extract_model(VOICE, decoder_file, cut, [o.name for o in graph.output])
    return text_side, decoder_file


def measure(way, runs, directory):
    import onnxruntime as ort

    if way == "windowed":
        ort.capi._pybind_state.set_global_thread_pool_sizes(0, 1)
    options = ort.SessionOptions()
    if way == "windowed":
        options.use_per_session_threads = False

    def session(path):
        return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])

    whole = feed(FIRST_CLAUSE + " " + REST)
    if way == "one call":
        voice = session(VOICE)

        def speak():
            yield voice.run(None, whole)[0]
    elif way == "first clause":
        voice = session(VOICE)
        parts = [feed(FIRST_CLAUSE), feed(REST)]

        def speak():
            for part in parts:
                yield voice.run(None, part)[0]
    else:
        text_path, decoder_path = split_graph(directory)
        text_side, decoder = session(text_path), session(decoder_path)
        latent_name = decoder.get_inputs()[0].name
        hop = 256

        def speak():
            latent = text_side.run(None, whole)[0]
            first = decoder.run(None, {latent_name: latent[:, :, :FIRST_WINDOW + MARGIN]})[0]
            yield first.reshape(-1)[:FIRST_WINDOW * hop]
            rest = decoder.run(None, {latent_name: latent[:, :, FIRST_WINDOW - MARGIN:]})[0]
            yield rest.reshape(-1)[MARGIN * hop:]

    for _ in speak():
        pass
    first, total, samples = [], [], 0
    for _ in range(runs):
        started = time.perf_counter()
        chunks = []
        for chunk in speak():
            if not chunks:
                first.append(time.perf_counter() - started)
            chunks.append(chunk)
        total.append(time.perf_counter() - started)
        samples = sum(c.size for c in chunks)
    return {"first_ms": statistics.median(first) * 1e3, "total_ms": statistics.median(total) * 1e3,
            "audio_s": samples / 22050}


def call_cost(runs):
    import onnxruntime as ort

    voice = ort.InferenceSession(VOICE, providers=["CPUExecutionProvider"])
    words = ((FIRST_CLAUSE + " " + REST + " ") * 3).split()
    points = []
    for count in (2, 3, 5, 7, 10, 14, 20, 30):
        inputs = feed(" ".join(words[:count]))
        samples = voice.run(None, inputs)[0].size
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            voice.run(None, inputs)
            times.append(time.perf_counter() - started)
        points.append((samples / 22050, statistics.median(times) * 1e3))
    return points


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="calls per figure (the median is kept)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds over the three ways")
    parser.add_argument("--way", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.way == "cost":
        print(json.dumps(call_cost(args.runs)))
        return
    if args.way:
        with tempfile.TemporaryDirectory() as directory:
            print(json.dumps(measure(args.way, args.runs, directory)))
        return
    results = {way: [] for way in WAYS}
    for _ in range(args.repeats):
        for way in WAYS:
            out = subprocess.check_output([sys.executable, __file__, "--way", way, "--runs", str(args.runs)],
                                          text=True, stderr=subprocess.DEVNULL)
            results[way].append(json.loads(out))
    print(f"{'':14}{'first audio':>12}{'total':>10}{'audio':>8}{'ms per audio s':>16}")
    for way, rows in results.items():
        first = statistics.median(r["first_ms"] for r in rows)
        total = statistics.median(r["total_ms"] for r in rows)
        audio = rows[0]["audio_s"]
        print(f"{way:14}{first:>10.1f}ms{total:>8.1f}ms{audio:>7.2f}s{total / audio:>16.1f}")
    cost = json.loads(subprocess.check_output([sys.executable, __file__, "--way", "cost", "--runs", str(args.runs)],
                                              text=True, stderr=subprocess.DEVNULL))
    print("one call per text length:", ", ".join(f"{audio:.1f} s {ms:.0f} ms ({ms / audio:.1f} per s)" for audio, ms in cost))


if __name__ == "__main__":
    sys.exit(main())
