#!/usr/bin/env python3
"""tessera next to llama-cpp-python on the same GGUF, the same threads, in the same run.

llama-cpp-python is built from source by pip (so its llama.cpp is compiled for this machine) in
a virtual environment under ~/.cache/tessera-bench the first time (several minutes). Then:

1. `tessera bench chat --json` measures tessera: prompt and generation tokens/s alone, time to
   first token in-process and over HTTP, aggregate tokens/s at 4 and 8 streams, the second turn
   of a conversation with the prefix cache.
2. The same prompt (the same words, the same token count) goes through llama-cpp-python:
   prompt tokens/s, generated tokens/s, and the time to the first token of a streamed chat.

Prints both and the ratios the LLM issue targets. Usage:

    python3 bench/chat_vs_llama_cpp_python.py [--model smollm2-135m-instruct] [--threads 2]
        [--tokens 128] [--rounds 3] [--tessera target/release/tessera]
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

VERSION = "0.3.36"
HOME = pathlib.Path.home()
VENV = HOME / ".cache" / "tessera-bench" / "venv"


def ensure_peer():
    python = VENV / "bin" / "python"
    check = [str(python), "-c", f"import llama_cpp, sys; sys.exit(llama_cpp.__version__ != '{VERSION}')"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return python
    print(f"building llama-cpp-python {VERSION} from source into {VENV} (several minutes)", file=sys.stderr)
    subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--no-binary", "llama-cpp-python", f"llama-cpp-python=={VERSION}"],
        check=True,
    )
    return python


PEER = r'''
import json, sys, time
import llama_cpp
from llama_cpp import Llama

path, threads, tokens, rounds, words, prompt_tokens = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], int(sys.argv[6])
llm = Llama(model_path=path, n_ctx=8192, n_threads=threads, n_threads_batch=threads, n_batch=512, verbose=False)
vocab = llama_cpp.llama_model_get_vocab(llm.model)
ends = [t for t in range(llm.n_vocab()) if llama_cpp.llama_vocab_is_eog(vocab, t)]
bias = {t: -float("inf") for t in ends}

def stream(prompt):
    llm.reset()  # no reuse between rounds
    started = time.perf_counter()
    first, count = None, 0
    for chunk in llm.create_completion(prompt, max_tokens=tokens, temperature=0, logit_bias=bias, stream=True):
        if first is None:
            first = time.perf_counter() - started
        count += 1
    total = time.perf_counter() - started
    return first, total, count

rows = []
for r in range(rounds):
    first, total, count = stream(f"Round {r}. {words}")
    rows.append((first, total, count))
n = len(llm.tokenize(f"Round 0. {words}".encode()))
prompt_rate = sorted(n / f for f, _, _ in rows)[len(rows) // 2]
gen_rate = sorted((c - 1) / (t - f) for f, t, c in rows)[len(rows) // 2]

chat_first = []
for r in range(rounds):
    llm.reset()
    started = time.perf_counter()
    for chunk in llm.create_chat_completion(
        messages=[{"role": "user", "content": f"Round {r}. {words}"}],
        max_tokens=8, temperature=0, stream=True,
    ):
        delta = chunk["choices"][0]["delta"]
        if delta.get("content"):
            chat_first.append(time.perf_counter() - started)
            break
print(json.dumps({
    "prompt_tokens": n,
    "prompt_tokens_per_s": prompt_rate,
    "generated_tokens_per_s": gen_rate,
    "completion_first_token_ms": sorted(f for f, _, _ in rows)[len(rows) // 2] * 1000,
    "chat_first_token_ms": sorted(chat_first)[len(chat_first) // 2] * 1000,
}))
'''


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tessera", default=os.environ.get("TESSERA_BIN", "target/release/tessera"))
    args = parser.parse_args()

    python = ensure_peer()
    home = pathlib.Path(os.environ.get("TESSERA_HOME", HOME / ".cache" / "tessera"))
    gguf = home / "models" / args.model / "model.gguf"
    if not gguf.exists():
        sys.exit(f"{gguf} is missing; run `{args.tessera} pull {args.model}` first")

    ours_out = subprocess.run(
        [args.tessera, "bench", "chat", "--model", args.model, "--tokens", str(args.tokens),
         "--rounds", str(args.rounds), "--llm-threads", str(args.threads), "--json"],
        check=True, capture_output=True, text=True,
    ).stdout
    ours = {row["metric"]: row["value"] for row in map(json.loads, ours_out.splitlines())}

    # The same words tessera measured: its prompt is "Round N. " plus words from the same
    # generator; rebuild them by asking tessera's tokenizer-sized text through a tiny helper.
    words = subprocess.run(
        [args.tessera, "bench", "chat", "--model", args.model, "--print-prompt",
         "--llm-threads", str(args.threads)],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    peer_out = subprocess.run(
        [str(python), "-c", PEER, str(gguf), str(args.threads), str(args.tokens), str(args.rounds), words,
         str(int(ours["prompt_tokens"]))],
        check=True, capture_output=True, text=True,
    ).stdout
    peer = json.loads(peer_out.strip().splitlines()[-1])

    rows = [
        ("prompt tokens/s (alone)", ours["prompt_tokens_per_s"], peer["prompt_tokens_per_s"]),
        ("generated tokens/s (alone)", ours["generated_tokens_per_s"], peer["generated_tokens_per_s"]),
        ("first token, completion, ms (in process)", ours["first_token_ms"], peer["completion_first_token_ms"]),
        ("first token, streamed chat: HTTP vs peer in process, ms", ours["http_first_token_ms"], peer["chat_first_token_ms"]),
    ]
    print(f"{args.model}, {args.threads} threads, {int(ours['prompt_tokens'])}-token prompt, {args.tokens} generated tokens, median of {args.rounds}")
    print(f"{'':52} {'tessera':>10} {'llama-cpp-python':>17} {'ratio':>7}")
    for name, a, b in rows:
        print(f"{name:52} {a:10.1f} {b:17.1f} {a / b:7.2f}")
    one = ours["short_prompt_tokens_per_s_1"]
    print(f"{'one stream, short prompt, tokens/s':52} {one:10.1f}")
    print(f"{'aggregate tokens/s, 4 streams (× one stream)':52} {ours['aggregate_tokens_per_s_4']:10.1f} {'':17} {ours['aggregate_tokens_per_s_4'] / one:7.2f}")
    print(f"{'aggregate tokens/s, 8 streams (× one stream)':52} {ours['aggregate_tokens_per_s_8']:10.1f} {'':17} {ours['aggregate_tokens_per_s_8'] / one:7.2f}")
    print(f"{'second turn / first turn, first token':52} {ours['second_turn_first_token_ms']:10.1f} {ours['first_turn_first_token_ms']:17.1f} {ours['second_turn_ratio']:7.2f}")
    print(f"{'server overhead, ms per token (HTTP - in process)':52} {ours['http_overhead_ms_per_token']:10.3f}")


if __name__ == "__main__":
    main()
