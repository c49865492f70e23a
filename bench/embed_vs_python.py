#!/usr/bin/env python3
"""Compare `tessera bench embed` with the plain Python way of embedding the same sentences.

One invocation does three things:

1. Runs `tessera bench embed --json --write-sets SETS.json`, which measures tessera in-process and
   over HTTP and saves the sentence sets it used.
2. Runs the very same sets, at the same batch sizes and for the same time, through the pipeline a
   Python user would write: `tokenizers` (pad to the longest in the batch, truncate at 256),
   `onnxruntime` with default session options on the CPU, mean pooling with numpy, L2 norm.
3. Prints a table side by side, with the machine and library versions.

Before timing anything it checks that both sides compute the same thing: the Python vector for the
first short sentence must match `tessera embed` (cosine >= 0.999).

Usage:
    python3 bench/embed_vs_python.py
    python3 bench/embed_vs_python.py --batches 1,8,32,64 --seconds 3 --json
    python3 bench/embed_vs_python.py --tessera target/release/tessera --no-http

Needs: onnxruntime, tokenizers, numpy (pip), and the model pulled with
`tessera pull all-minilm-l6-v2-int8`.
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_MODEL = "all-minilm-l6-v2-int8"
MAX_TOKENS = 256  # the model's limit in tessera's catalog (sentence-transformers' max_seq_length)
MIN_COSINE = 0.999
REPO_ROOT = Path(__file__).resolve().parent.parent


def fail(message):
    """Print an error and stop with a non-zero exit status."""
    print(f"embed_vs_python: error: {message}", file=sys.stderr)
    sys.exit(1)


def note(message):
    """Progress on standard error, so `--json` output stays clean."""
    print(f"embed_vs_python: {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# Arguments and locations
# ---------------------------------------------------------------------------------------------


def parse_args():
    parser = argparse.ArgumentParser(
        description="tessera's embedding throughput next to onnxruntime + tokenizers in Python, on the same sentences."
    )
    parser.add_argument("--tessera", type=Path, help="tessera binary (default: target/release/tessera if built, else target/debug/tessera)")
    parser.add_argument("--batches", default="1,8,32,64", help="batch sizes, comma separated (default: 1,8,32,64)")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per measurement (default: 3)")
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"catalog id of an ONNX embedding model (default: {DEFAULT_MODEL})")
    parser.add_argument("--no-http", action="store_true", help="skip tessera's HTTP measurements")
    parser.add_argument("--json", action="store_true", help="print one JSON document instead of a table")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, each measuring every cell on both sides; the median is reported (default: 3)")
    # Internal: measure the Python pipeline for one batch size in a child process.
    parser.add_argument("--python-worker", type=int, metavar="BATCH", help=argparse.SUPPRESS)
    parser.add_argument("--sets-file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.rounds < 1:
        fail("--rounds must be at least 1")
    try:
        args.batch_list = [int(b) for b in args.batches.split(",") if b.strip()]
    except ValueError:
        fail(f"--batches must be comma-separated numbers, got {args.batches!r}")
    if not args.batch_list or any(b <= 0 for b in args.batch_list):
        fail("--batches must be positive numbers, e.g. --batches 1,8,32,64")
    return args


def find_tessera(given):
    """The binary to run: --tessera, else the release build, else the debug build."""
    if given is not None:
        candidates = [given]
    else:
        candidates = [REPO_ROOT / "target" / "release" / "tessera", REPO_ROOT / "target" / "debug" / "tessera"]
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    fail(f"no tessera binary at {', '.join(str(c) for c in candidates)}; build it with `cargo build --release` or pass --tessera PATH")


def model_files(model):
    """model.onnx and tokenizer.json under $TESSERA_HOME/models/<model>, as tessera stores them."""
    home = Path(os.environ.get("TESSERA_HOME") or Path.home() / ".cache" / "tessera")
    folder = home / "models" / model
    onnx_path, tokenizer_path = folder / "model.onnx", folder / "tokenizer.json"
    for path in (onnx_path, tokenizer_path):
        if not path.is_file():
            fail(f"{path} is missing; run `tessera pull {model}` first")
    return onnx_path, tokenizer_path


# ---------------------------------------------------------------------------------------------
# The tessera side
# ---------------------------------------------------------------------------------------------


def run_tessera_bench(tessera, args, sets_path, batches, seconds=None, no_http=None):
    """Runs `tessera bench embed --json` and returns its rows (one dict per JSON line)."""
    command = [
        str(tessera), "bench", "embed", "--json",
        "--write-sets", str(sets_path),
        "--batches", ",".join(str(b) for b in batches),
        "--seconds", str(args.seconds if seconds is None else seconds),
        "--model", args.model,
    ]
    if args.no_http if no_http is None else no_http:
        command.append("--no-http")
    note("running " + " ".join(command))
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        fail(f"`tessera bench embed` exited with status {result.returncode}:\n{result.stderr.strip()[-3000:]}")
    rows = []
    for line in result.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            rows.append(json.loads(line))
    if not rows:
        fail(f"`tessera bench embed --json` printed no results; its output was:\n{result.stdout}{result.stderr}")
    return rows


def tessera_vector(tessera, model, sentence):
    """The embedding `tessera embed` prints for one sentence."""
    result = subprocess.run([str(tessera), "embed", model, sentence], capture_output=True, text=True)
    if result.returncode != 0:
        fail(f"`tessera embed` exited with status {result.returncode}:\n{result.stderr.strip()[-3000:]}")
    try:
        return json.loads(result.stdout)["embeddings"][0]
    except (json.JSONDecodeError, KeyError, IndexError) as error:
        fail(f"could not read the vector from `tessera embed` ({error}); it printed:\n{result.stdout[:500]}")


def tessera_version(tessera):
    result = subprocess.run([str(tessera), "--version"], capture_output=True, text=True)
    return result.stdout.strip() or "unknown"


# ---------------------------------------------------------------------------------------------
# The Python side: what a Python user would write
# ---------------------------------------------------------------------------------------------


class PythonEmbedder:
    """tokenizers + onnxruntime + numpy, the straightforward way."""

    def __init__(self, onnx_path, tokenizer_path):
        import numpy
        import onnxruntime
        from tokenizers import Tokenizer

        self.np = numpy
        self.tokenizer = Tokenizer.from_file(str(tokenizer_path))
        # tokenizer.json ships fixed padding to 128 and truncation at 128; a user embedding
        # batches pads to the longest sentence and truncates at the model's limit instead.
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self.tokenizer.enable_truncation(max_length=MAX_TOKENS)
        # Default session options: ONNX Runtime picks its own thread counts.
        self.session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
        self.input_names = {i.name for i in self.session.get_inputs()}

    def embed(self, texts):
        """Returns (vectors as a [batch, dims] array, real token count without padding)."""
        np = self.np
        encodings = self.tokenizer.encode_batch(texts)
        input_ids = np.array([e.ids for e in encodings], dtype=np.int64)
        attention_mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        token_type_ids = np.array([e.type_ids for e in encodings], dtype=np.int64)
        feeds = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        feeds = {name: value for name, value in feeds.items() if name in self.input_names}
        hidden = self.session.run(None, feeds)[0]  # last_hidden_state: [batch, tokens, dims]

        # Mean over the real tokens only: padded positions have mask 0.
        mask = attention_mask[:, :, None].astype(np.float32)
        summed = (hidden * mask).sum(axis=1)
        counts = np.clip(mask.sum(axis=1), 1e-9, None)
        pooled = summed / counts

        # Unit length, so a dot product is the cosine similarity.
        norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        vectors = pooled / norms
        tokens = int(attention_mask.sum())
        return vectors, tokens


def measure_python(embedder, set_name, batch, sentences, seconds):
    """Same protocol as tessera's bench: full chunks of `batch` consecutive sentences, taken in
    order and cycled, one warm-up call, then as many calls as fit in `seconds` (at least one)."""
    chunks = [sentences[i:i + batch] for i in range(0, len(sentences) - batch + 1, batch)]
    if not chunks:
        fail(f"the {set_name} set has fewer than {batch} sentences")
    embedder.embed(chunks[0])  # warm-up
    requests = sentences_done = tokens = 0
    started = time.perf_counter()
    while requests == 0 or time.perf_counter() - started < seconds:
        texts = chunks[requests % len(chunks)]
        _, used = embedder.embed(texts)
        tokens += used
        sentences_done += len(texts)
        requests += 1
    elapsed = time.perf_counter() - started
    return {
        "set": set_name,
        "mode": "python",
        "batch": batch,
        "requests": requests,
        "sentences_per_s": sentences_done / elapsed,
        "tokens_per_s": tokens / elapsed,
        "ms_per_request": elapsed * 1000.0 / requests,
    }


def cosine(a, b):
    import numpy as np

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# ---------------------------------------------------------------------------------------------
# Machine and versions
# ---------------------------------------------------------------------------------------------


def machine_info():
    """CPU model and core counts from /proc/cpuinfo (Linux); falls back to `platform`."""
    model, cores = None, set()
    physical_id = None
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key == "model name" and model is None:
                    model = value
                elif key == "physical id":
                    physical_id = value
                elif key == "core id":
                    cores.add((physical_id, value))
    except OSError:
        pass
    return {
        "cpu": model or platform.processor() or platform.machine(),
        "logical_cpus": os.cpu_count(),
        "physical_cores": len(cores) or None,
        "os": platform.platform(),
        "python": platform.python_version(),
    }


def library_versions():
    import numpy
    import onnxruntime
    import tokenizers

    return {"onnxruntime": onnxruntime.__version__, "tokenizers": tokenizers.__version__, "numpy": numpy.__version__}


# ---------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------


def combine(tessera_rows, python_rows, sets):
    """One entry per (set, batch) with the three measurements and the ratio."""
    def find(rows, set_name, mode, batch):
        return next((r for r in rows if r["set"] == set_name and r["mode"] == mode and r["batch"] == batch), None)

    table = []
    for set_name in sets:
        for python in (r for r in python_rows if r["set"] == set_name):
            local = find(tessera_rows, set_name, "in-process", python["batch"])
            http = find(tessera_rows, set_name, "http", python["batch"])
            ratio = local["sentences_per_s"] / python["sentences_per_s"] if local else None
            table.append({"set": set_name, "batch": python["batch"], "tessera": local, "tessera_http": http, "python": python, "ratio": ratio})
    overhead = {}
    for entry in table:
        if entry["batch"] == 1 and entry["tessera"] and entry["tessera_http"]:
            overhead[entry["set"]] = entry["tessera_http"]["ms_per_request"] - entry["tessera"]["ms_per_request"]
    return table, overhead


def print_table(report):
    def number(row, digits=1):
        return f"{row['sentences_per_s']:.{digits}f}" if row else "-"

    print(f"{'SET':<7} {'BATCH':>5} {'TESSERA/S':>11} {'PYTHON/S':>11} {'RATIO':>7} {'HTTP/S':>11}")
    for entry in report["results"]:
        ratio = f"{entry['ratio']:.2f}x" if entry["ratio"] is not None else "-"
        print(
            f"{entry['set']:<7} {entry['batch']:>5} {number(entry['tessera']):>11} {number(entry['python']):>11} "
            f"{ratio:>7} {number(entry['tessera_http']):>11}"
        )
    print("(sentences per second; RATIO = tessera in-process / python; HTTP/S = tessera over HTTP on loopback)")
    for set_name, ms in report["http_overhead_ms_at_batch_1"].items():
        print(f"HTTP overhead at batch 1 ({set_name}): {ms:.3f} ms per request (paired in-process/HTTP requests)")
    print(f"Same computation: cosine(tessera, python) = {report['cosine_first_short_sentence']:.6f} on the first short sentence")
    m, v = report["machine"], report["versions"]
    print(
        f"Machine: {m['cpu']}, {m['physical_cores']} physical cores, {m['logical_cpus']} logical CPUs; "
        f"{report['tessera_version']}; onnxruntime {v['onnxruntime']}, tokenizers {v['tokenizers']}, numpy {v['numpy']}, "
        f"Python {m['python']}; {report['seconds']} s per measurement, median of {report['rounds']} rounds"
    )


def json_rows(text):
    return [json.loads(line) for line in text.splitlines() if line.strip().startswith("{")]


def run_python_worker(args, batch, sets_path):
    """Measures the Python pipeline for one batch size in a child process, so this process never
    loads tokenizers (whose threads must not see a fork) and both sides can take turns."""
    command = [sys.executable, __file__, "--python-worker", str(batch), "--sets-file", str(sets_path),
               "--seconds", str(args.seconds), "--model", args.model]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        fail(f"the Python pipeline failed for batch {batch}:\n{result.stderr.strip()[-3000:]}")
    return json_rows(result.stdout)


def python_worker(args):
    onnx_path, tokenizer_path = model_files(args.model)
    with open(args.sets_file) as file:
        sets = json.load(file)
    embedder = PythonEmbedder(onnx_path, tokenizer_path)
    for set_name in ("short", "long", "mixed"):
        if set_name in sets:
            row = measure_python(embedder, set_name, args.python_worker, sets[set_name], args.seconds)
            print(json.dumps(row), flush=True)


def median_rows(rounds):
    """Per (set, mode, batch), the row with the median throughput across rounds."""
    groups = {}
    for row in (r for rows in rounds for r in rows if "sentences_per_s" in r):
        groups.setdefault((row["set"], row["mode"], row["batch"]), []).append(row)
    medians = []
    for rows in groups.values():
        rows.sort(key=lambda r: r["sentences_per_s"])
        medians.append(rows[len(rows) // 2])
    return medians


def main():
    args = parse_args()
    if args.python_worker:
        python_worker(args)
        return
    tessera = find_tessera(args.tessera)
    onnx_path, tokenizer_path = model_files(args.model)  # fail early, before the long runs

    with tempfile.TemporaryDirectory(prefix="tessera-bench-") as scratch:
        sets_path = Path(scratch) / "sets.json"
        # A zero-length run only to write the sentence sets.
        run_tessera_bench(tessera, args, sets_path, [1], seconds=0, no_http=True)
        with open(sets_path) as file:
            sets = json.load(file)
        if "short" not in sets:
            fail(f"the sets file from tessera has no 'short' set (it has {', '.join(sets)})")
        first_short = sets["short"][0]
        reference = tessera_vector(tessera, args.model, first_short)
        version = tessera_version(tessera)

        # The machine's speed drifts over minutes (shared cores), so the two sides take turns
        # cell by cell, round after round, and each cell reports its median round.
        tessera_rounds, python_rounds = [], []
        for round_number in range(1, args.rounds + 1):
            for batch in args.batch_list:
                note(f"round {round_number}/{args.rounds}, batch {batch}: tessera, then python")
                tessera_rounds.append(run_tessera_bench(tessera, args, sets_path, [batch]))
                python_rounds.append(run_python_worker(args, batch, sets_path))
    tessera_rows, python_rows = median_rows(tessera_rounds), median_rows(python_rounds)
    # tessera measures HTTP overhead itself, in interleaved pairs; take the median over rounds.
    paired = {}
    for row in (r for rows in tessera_rounds for r in rows if r.get("mode") == "http-overhead"):
        paired.setdefault(row["set"], []).append(row["median_ms"])
    python_rows.sort(key=lambda r: args.batch_list.index(r["batch"]))

    note("checking that both sides compute the same vectors")
    embedder = PythonEmbedder(onnx_path, tokenizer_path)
    vectors, _ = embedder.embed([first_short])
    similarity = cosine(reference, vectors[0])
    if len(reference) != len(vectors[0]) or similarity < MIN_COSINE:
        fail(
            f"the Python pipeline and tessera disagree on {first_short!r}: cosine {similarity:.6f} "
            f"(need >= {MIN_COSINE}), dimensions {len(vectors[0])} vs {len(reference)}; the comparison would not be fair"
        )

    order = [name for name in ("short", "long", "mixed") if name in sets]
    results, overhead = combine(tessera_rows, python_rows, order)
    for set_name, values in paired.items():
        overhead[set_name] = sorted(values)[len(values) // 2]
    report = {
        "model": args.model,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "tessera_version": version,
        "cosine_first_short_sentence": similarity,
        "machine": machine_info(),
        "versions": library_versions(),
        "results": results,
        "http_overhead_ms_at_batch_1": overhead,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report)


if __name__ == "__main__":
    main()
