#!/usr/bin/env python3
"""Silero VAD: microseconds per 32 ms window, tessera next to onnxruntime called from Python.

Both run the catalog's silero-vad on the same 512-sample windows of a 16 kHz clip, with the 64
samples of context and the recurrent state carried as Silero's own Python wrapper does, one
thread each (the wrapper's setting). The peer calls the published graph once per window.
tessera is measured twice: on the whole clip (`tessera vad`, `/v1/vad`: its rebuilt graph judges
up to 4096 windows per call) and one window per call (the voice loop's stream). The peer needs `onnxruntime` and `numpy`
(the bench venv: python3 -m venv ~/.cache/tessera-bench/venv && pip install onnxruntime numpy).

    python3 bench/vad_vs_onnxruntime.py --tessera target/release/tessera
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import wave

CLIP = "/usr/share/pocketsphinx/test/data/librivox/sense_and_sensibility_01_austen_64kb-0870.wav"


def peer(model, clip, rounds):
    import numpy as np
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    with wave.open(clip) as w:
        assert w.getframerate() == 16000 and w.getnchannels() == 1, "a 16 kHz mono clip"
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16)
    samples = pcm.astype(np.float32) / 32768.0
    windows = len(samples) // 512
    sr = np.array(16000, dtype=np.int64)

    def one_pass():
        state = np.zeros((2, 1, 128), dtype=np.float32)
        context = np.zeros((1, 64), dtype=np.float32)
        speech = 0
        for i in range(windows):
            x = np.concatenate([context, samples[None, i * 512:(i + 1) * 512]], axis=1)
            out, state = session.run(None, {"input": x, "state": state, "sr": sr})
            context = x[:, -64:]
            speech += out[0][0] >= 0.5
        return speech

    one_pass()
    timings = []
    for _ in range(rounds):
        started = time.perf_counter()
        speech = one_pass()
        timings.append((time.perf_counter() - started) * 1e6 / windows)
    return {"windows": windows, "speech_windows": int(speech), "us_per_window": statistics.median(timings)}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tessera", default="target/release/tessera")
    parser.add_argument("--file", default=CLIP)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--python", default=os.path.expanduser("~/.cache/tessera-bench/venv/bin/python"),
                        help="a Python with onnxruntime and numpy for the peer")
    parser.add_argument("--peer-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    home = os.environ.get("TESSERA_HOME", os.path.expanduser("~/.cache/tessera"))
    model = os.path.join(home, "models", "silero-vad", "model.onnx")
    if args.peer_only:
        print(json.dumps(peer(model, args.file, args.rounds)))
        return
    ours = json.loads(subprocess.check_output(
        [args.tessera, "bench", "vad", "--file", args.file, "--rounds", str(args.rounds), "--json"]))
    theirs = json.loads(subprocess.check_output(
        [args.python, __file__, "--file", args.file, "--rounds", str(args.rounds), "--peer-only"]))
    print(f"silero-vad, {ours['windows']} windows of 32 ms, median of {args.rounds} passes")
    print(f"{'':34}{'tessera':>10}{'onnxruntime (Python)':>22}{'ratio':>8}")
    for label, key in [("us per window, whole clip", "us_per_window"),
                       ("us per window, one at a time", "us_per_window_streaming")]:
        print(f"{label:34}{ours[key]:>10.1f}{theirs['us_per_window']:>22.1f}"
              f"{ours[key] / theirs['us_per_window']:>8.2f}")
    print(f"{'windows judged speech':34}{ours['speech_windows']:>10}{theirs['speech_windows']:>22}")


if __name__ == "__main__":
    sys.exit(main())
