#!/usr/bin/env python3
"""Text to speech: time to first audio and real-time factor, tessera next to piper-tts.

Both speak the same two texts (10 and 60 words, `tessera bench speak`'s) with the same voice
(the catalog's piper-en-us-joe-medium), ONNX Runtime on its default threads, each after one
warm-up round. The peer is piper-tts from PyPI in the bench venv
(python3 -m venv ~/.cache/tessera-bench/venv && pip install piper-tts), which bundles its own
espeak-ng; its first audio is its first `AudioChunk` (one sentence).

The two take turns (`--repeats`, each turn `--rounds` rounds per text): this VM's slow spells
last seconds to minutes, and one side measured wholly before the other can land in one.

    python3 bench/speak_vs_piper.py --tessera target/release/tessera
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

TEXTS = [
    ("10 words", "The quick brown fox jumps over the lazy dog today."),
    ("60 words",
     "The old lighthouse keeper climbed the narrow stairs every evening, carrying a lamp and a book. "
     "From the top he could see the harbour, the fishing boats and the long grey line of the coast. "
     "He liked the quiet hours before dawn best, when the sea was calm and the gulls were still asleep. "
     "Then he wrote a few lines in his journal and waited."),
]


def peer(model_dir, rounds):
    from piper import PiperVoice

    voice = PiperVoice.load(os.path.join(model_dir, "model.onnx"),
                            config_path=os.path.join(model_dir, "model.onnx.json"))
    results = []
    for name, text in TEXTS:
        first, rtf = [], []
        for round_ in range(rounds + 1):
            started = time.perf_counter()
            first_audio, samples, rate = None, 0, 22050
            for chunk in voice.synthesize(text):
                if first_audio is None:
                    first_audio = time.perf_counter() - started
                samples += len(chunk.audio_float_array)
                rate = chunk.sample_rate
            total = time.perf_counter() - started
            if round_ > 0:
                first.append(first_audio * 1000)
                rtf.append(total / (samples / rate))
        results.append({"text": name, "first_audio_ms": statistics.median(first),
                        "rtf": statistics.median(rtf), "audio_seconds": samples / rate})
    return results


def combine(turns):
    """Per text, the median over turns of each turn's figures."""
    combined = []
    for rows in zip(*turns):
        combined.append({key: statistics.median(row[key] for row in rows) if key != "text" else rows[0][key]
                         for key in rows[0]})
    return combined


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tessera", default="target/release/tessera")
    parser.add_argument("--rounds", type=int, default=5, help="rounds per text in one turn")
    parser.add_argument("--repeats", type=int, default=3, help="turns each, taken alternately")
    parser.add_argument("--python", default=os.path.expanduser("~/.cache/tessera-bench/venv/bin/python"),
                        help="a Python with piper-tts for the peer")
    parser.add_argument("--peer-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    home = os.environ.get("TESSERA_HOME", os.path.expanduser("~/.cache/tessera"))
    model_dir = os.path.join(home, "models", "piper-en-us-joe-medium")
    if args.peer_only:
        print(json.dumps(peer(model_dir, args.rounds)))
        return
    # The two take turns, `--repeats` times, so that a slow spell of a shared machine falls on
    # both; each figure is the median over every turn of each turn's median.
    turns_ours, turns_theirs = [], []
    for _ in range(args.repeats):
        out = subprocess.check_output([args.tessera, "bench", "speak", "--rounds", str(args.rounds), "--json"],
                                      text=True)
        turns_ours.append([json.loads(line) for line in out.splitlines() if line.strip()])
        turns_theirs.append(json.loads(subprocess.check_output(
            [args.python, __file__, "--rounds", str(args.rounds), "--peer-only"])))
    ours, theirs = combine(turns_ours), combine(turns_theirs)
    print(f"piper-en-us-joe-medium, {args.repeats} turns each of {args.rounds} rounds")
    print(f"{'':34}{'tessera':>10}{'piper-tts':>12}{'ratio':>8}")
    for a, b in zip(ours, theirs):
        print(f"{a['text'] + ', first audio (ms)':34}{a['first_audio_ms']:>10.0f}{b['first_audio_ms']:>12.0f}"
              f"{a['first_audio_ms'] / b['first_audio_ms']:>8.2f}")
        print(f"{a['text'] + ', real-time factor':34}{a['rtf']:>10.3f}{b['rtf']:>12.3f}{a['rtf'] / b['rtf']:>8.2f}")
        print(f"{a['text'] + ', audio (s)':34}{a['audio_seconds']:>10.1f}{b['audio_seconds']:>12.1f}")


if __name__ == "__main__":
    sys.exit(main())
