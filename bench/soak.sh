#!/usr/bin/env bash
# Soak test, not run in CI: a real load client (wrk) on loopback for DURATION (default 10m) against a
# release `tessera serve`, mixing embedding requests of varied size over four models, malformed
# requests, and load/unload churn beyond what the memory budget holds. Prints statuses, p50/p99 and
# the server's resident memory over time. Passes when no 5xx other than 503/504 was answered, the
# server is still up, and memory after warm-up stays flat (within 15% + 30 MB of its 25%-mark level).
#
#   bench/soak.sh                 # 10 minutes
#   DURATION=120 bench/soak.sh    # 2 minutes
#   CONNECTIONS=16 bench/soak.sh
#   TESSERA_BIN=path/to/tessera bench/soak.sh   # skip the release build
#   BUDGET=200MB bench/soak.sh                   # tighter memory budget (default 400MB)
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION="${DURATION:-600}"
CONNECTIONS="${CONNECTIONS:-8}"
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk; }
command -v curl >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq curl; }
scripts/setup.sh >/dev/null
if [[ -z "${TESSERA_BIN:-}" ]]; then
  cargo build --release --quiet -p tessera
fi
tessera="${TESSERA_BIN:-${CARGO_TARGET_DIR:-target}/release/tessera}"
"$tessera" pull all-minilm-l6-v2-int8 >/dev/null

work="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT
home="${TESSERA_HOME:-$HOME/.cache/tessera}"
for name in a b c; do
  mkdir -p "$work/models/$name"
  cp -L "$home/models/all-minilm-l6-v2-int8/"{model.onnx,tokenizer.json,config.json} "$work/models/$name/"
done

# A budget that holds about two of the four models (each measures 110-200 MB resident at load),
# so churn evicts.
"$tessera" serve --port 0 --model-dir "$work/models" --memory-budget "${BUDGET:-400MB}" --idle-unload 30s \
  --preload '' >"$work/stdout" 2>"$work/server.log" &
server=$!
for _ in $(seq 100); do grep -q "listening on" "$work/stdout" 2>/dev/null && break; sleep 0.1; done
base="$(sed -n 's/^tessera listening on //p' "$work/stdout")"
[[ -n "$base" ]] || { cat "$work/server.log"; echo "server did not start"; exit 1; }
echo "server $base (pid $server), ${DURATION}s, $CONNECTIONS connections"

# Memory over time.
(
  start=$(date +%s)
  while kill -0 "$server" 2>/dev/null; do
    rss=$(awk '/VmRSS/ {print int($2/1024)}' "/proc/$server/status" 2>/dev/null || echo 0)
    echo "$(( $(date +%s) - start )) $rss" >>"$work/rss"
    sleep 10
  done
) &

# Load/unload churn beyond capacity, by an operator.
(
  models=(a b c all-minilm-l6-v2-int8)
  while kill -0 "$server" 2>/dev/null; do
    m=${models[$((RANDOM % 4))]}
    action=$([[ $((RANDOM % 3)) == 0 ]] && echo unload || echo load)
    code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$base/v1/models/$m/$action" || echo 000)
    echo "$code" >>"$work/churn"
    sleep 1
  done
) &

wrk -t2 -c"$CONNECTIONS" -d"${DURATION}s" --timeout 30s --latency -s bench/soak.lua "$base" \
  -- a b c all-minilm-l6-v2-int8 | tee "$work/wrk"

echo
echo "load/unload churn statuses:"; sort "$work/churn" | uniq -c
echo "resident memory (seconds MB):"; cat "$work/rss"
fail=0
if grep -E '^status 5' "$work/wrk" | grep -vE '^status (503|504):'; then
  echo "FAIL: 5xx other than 503/504"; fail=1
fi
if grep -qvE '^(200|404|503)$' "$work/churn"; then echo "FAIL: unexpected churn status"; fail=1; fi
if ! curl -sf "$base/health" >/dev/null; then echo "FAIL: the server is down"; fail=1; fi
lines=$(wc -l <"$work/rss")
if (( lines >= 4 )); then
  warm=$(sed -n "$(( lines / 4 + 1 ))p" "$work/rss" | cut -d' ' -f2)
  last=$(tail -1 "$work/rss" | cut -d' ' -f2)
  limit=$(( warm + warm * 15 / 100 + 30 ))
  echo "memory after warm-up ${warm} MB, at the end ${last} MB (limit ${limit} MB)"
  (( last <= limit )) || { echo "FAIL: memory grew"; fail=1; }
fi
echo "panics logged: $(grep -c "panicked" "$work/server.log" || true)"
(( fail == 0 )) && echo "PASS" || exit 1
