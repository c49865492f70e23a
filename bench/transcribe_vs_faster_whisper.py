#!/usr/bin/env python3
"""Whisper: tessera next to faster-whisper on the same CTranslate2 weights, int8, beam 1.

Both transcribe the LibriVox clips of Debian's pocketsphinx-testdata one by one (language given,
so neither spends time detecting it), then a long file built from the clips (each clip six
times over with 1.5 s of silence between, about 3 minutes). faster-whisper runs the long file
through its plain `transcribe` and through its `BatchedInferencePipeline` (VAD chunks decoded in
batches). Each side runs in its own process with the same thread count, model loaded once,
one warm-up call, then the median of `--rounds` calls per file; the word error rate is over the
clips' reference transcripts (lower case, punctuation and hyphens dropped).

The peer needs faster-whisper in the bench venv:
    ~/.cache/tessera-bench/venv/bin/pip install faster-whisper

    python3 bench/transcribe_vs_faster_whisper.py --tessera target/release/tessera [--model whisper-tiny.en]
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import wave

LIBRIVOX = "/usr/share/pocketsphinx/test/data/librivox"


def clips():
    references = {}
    for line in open(os.path.join(LIBRIVOX, "transcription")):
        text, _, rest = line.rpartition(" (")
        references[rest.strip().rstrip(")")] = text.replace("<s>", "").replace("</s>", "").strip()
    ids = [line.strip() for line in open(os.path.join(LIBRIVOX, "fileids")) if line.strip()]
    return [(os.path.join(LIBRIVOX, f"{i}.wav"), references[i]) for i in ids]


def long_file(path, repeats=6, gap_seconds=1.5):
    frames, reference = [], []
    for _ in range(repeats):
        for clip, text in clips():
            with wave.open(clip) as w:
                frames.append(w.readframes(w.getnframes()))
            frames.append(b"\0\0" * int(16000 * gap_seconds))
            reference.append(text)
    with wave.open(path, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"".join(frames))
    return " ".join(reference)


def words(text):
    return re.sub(r"[^a-z0-9' ]", " ", text.lower()).split()


def word_errors(hypothesis, reference):
    h, r = words(hypothesis), words(reference)
    previous = list(range(len(h) + 1))
    for i in range(1, len(r) + 1):
        current = [i] + [0] * len(h)
        for j in range(1, len(h) + 1):
            current[j] = min(previous[j - 1] + (r[i - 1] != h[j - 1]), previous[j] + 1, current[j - 1] + 1)
        previous = current
    return previous[len(h)], len(r)


def peer(model_dir, files, rounds, threads, batched):
    from faster_whisper import BatchedInferencePipeline, WhisperModel

    model = WhisperModel(model_dir, device="cpu", compute_type="int8", cpu_threads=threads)
    language = "en"
    if batched:
        pipeline = BatchedInferencePipeline(model)
        run = lambda f: pipeline.transcribe(f, language=language, beam_size=1, batch_size=8)
    else:
        run = lambda f: model.transcribe(f, language=language, beam_size=1)

    def once(f):
        segments, info = run(f)
        return "".join(s.text for s in segments).strip(), info.duration

    once(files[0])
    results = []
    for f in files:
        times = []
        for _ in range(rounds):
            started = time.perf_counter()
            text, duration = once(f)
            times.append(time.perf_counter() - started)
        results.append({"file": f, "seconds": statistics.median(times), "audio_seconds": duration, "text": text})
    return results


def ours(tessera, model, files, rounds, threads):
    out = subprocess.check_output(
        [tessera, "bench", "transcribe", "--model", model, "--language", "en", "--rounds", str(rounds),
         "--threads", str(threads), "--json", *files])
    return [json.loads(line) for line in out.decode().splitlines() if line.strip()]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tessera", default="target/release/tessera")
    parser.add_argument("--model", default="whisper-base")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--python", default=os.path.expanduser("~/.cache/tessera-bench/venv/bin/python"),
                        help="a Python with faster-whisper for the peer")
    parser.add_argument("--peer", choices=["plain", "batched"], help=argparse.SUPPRESS)
    parser.add_argument("files", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    home = os.environ.get("TESSERA_HOME", os.path.expanduser("~/.cache/tessera"))
    model_dir = os.path.join(home, "models", args.model)
    if args.peer:
        print(json.dumps(peer(model_dir, args.files, args.rounds, args.threads, args.peer == "batched")))
        return

    def theirs(kind, files):
        out = subprocess.check_output(
            [args.python, __file__, "--model", args.model, "--rounds", str(args.rounds),
             "--threads", str(args.threads), "--peer", kind, *files])
        return json.loads(out)

    pairs = clips()
    paths = [p for p, _ in pairs]
    with tempfile.TemporaryDirectory() as tmp:
        long_path = os.path.join(tmp, "long.wav")
        long_reference = long_file(long_path)
        ours_clips = ours(args.tessera, args.model, paths, args.rounds, args.threads)
        peer_clips = theirs("plain", paths)
        ours_long = ours(args.tessera, args.model, [long_path], 1, args.threads)[0]
        peer_long = theirs("plain", [long_path])[0]
        peer_batched = theirs("batched", [long_path])[0]

    def summary(results, references):
        errors = sum(word_errors(r["text"], ref)[0] for r, ref in zip(results, references))
        total = sum(len(words(ref)) for ref in references)
        return sum(r["seconds"] for r in results), 100.0 * errors / total

    references = [t for _, t in pairs]
    audio = sum(r["audio_seconds"] for r in ours_clips)
    print(f"{args.model}, int8, beam 1, {args.threads} threads; {len(paths)} LibriVox clips ({audio:.1f} s), "
          f"median of {args.rounds}; long file {ours_long['audio_seconds']:.0f} s, one run each")
    print(f"{'':34}{'tessera':>10}{'faster-whisper':>16}{'ratio':>8}")
    for a, b in zip(ours_clips, peer_clips):
        name = os.path.basename(a["file"]).rsplit("-", 1)[-1]
        print(f"{'clip ' + name + ' seconds':34}{a['seconds']:>10.3f}{b['seconds']:>16.3f}{a['seconds'] / b['seconds']:>8.2f}")
    (ours_time, ours_wer), (peer_time, peer_wer) = summary(ours_clips, references), summary(peer_clips, references)
    print(f"{'clips, total seconds':34}{ours_time:>10.3f}{peer_time:>16.3f}{ours_time / peer_time:>8.2f}")
    print(f"{'clips, word error rate %':34}{ours_wer:>10.2f}{peer_wer:>16.2f}")
    long_ours_wer = summary([ours_long], [long_reference])[1]
    best = min(peer_long["seconds"], peer_batched["seconds"])
    print(f"{'long file seconds (plain)':34}{ours_long['seconds']:>10.2f}{peer_long['seconds']:>16.2f}"
          f"{ours_long['seconds'] / peer_long['seconds']:>8.2f}")
    print(f"{'long file seconds (batched peer)':34}{'':>10}{peer_batched['seconds']:>16.2f}"
          f"{ours_long['seconds'] / peer_batched['seconds']:>8.2f}")
    print(f"{'long file vs the better peer':34}{'':>10}{'':>16}{ours_long['seconds'] / best:>8.2f}")
    print(f"{'long file word error rate %':34}{long_ours_wer:>10.2f}"
          f"{summary([peer_long], [long_reference])[1]:>16.2f}")
    print(f"{'long file WER %, batched peer':34}{'':>10}{summary([peer_batched], [long_reference])[1]:>16.2f}")


if __name__ == "__main__":
    sys.exit(main())
