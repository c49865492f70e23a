#!/usr/bin/env bash
# Fuzzes tessera's HTTP API with Schemathesis, driven by the server's own /openapi.json: every
# documented operation gets a few hundred generated requests (valid and invalid), and every
# answer must be no 5xx other than those documented, carry a documented status, content type and
# headers, and match its documented schema. Exits non-zero on any failure.
#
#   scripts/schemathesis.sh [TESSERA_BINARY]
#
# The binary defaults to $TESSERA_BIN, else ${CARGO_TARGET_DIR:-target}/debug/tessera; build it
# first (cargo build -p tessera). It needs the test model all-minilm-l6-v2-int8 in the cache
# (scripts/fetch-models.sh). The server runs on 127.0.0.1 with a random port, an admin key that
# every generated request sends, and TESSERA_OFFLINE=1: a generated pull or embedding of a catalog
# model that is not cached fails at once with a documented 503 instead of downloading it
# (scripts/schemathesis.toml says that 503, on those two operations only, is expected). LLMs get a
# 512-token context, so a generated request with a huge `max_tokens` is a quick 400 and any
# generation ends within seconds.
#
# Settings (environment):
#   SCHEMATHESIS_MAX_EXAMPLES  generated cases per operation (default 200)
#   SCHEMATHESIS_SEED          the generator's seed (default fixed, so CI runs are repeatable;
#                              set another number to explore further)
#   SCHEMATHESIS_TIME_LIMIT    seconds before the run is stopped as failed (default 600)
#   TESSERA_TOOLS_DIR          where Schemathesis is installed (default ~/.cache/tessera-ci/tools)
set -euo pipefail
cd "$(dirname "$0")/.."

VERSION=4.32.5
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance
max_examples="${SCHEMATHESIS_MAX_EXAMPLES:-200}"
seed="${SCHEMATHESIS_SEED:-20261123}"
time_limit="${SCHEMATHESIS_TIME_LIMIT:-600}"

bin="${1:-${TESSERA_BIN:-${CARGO_TARGET_DIR:-target}/debug/tessera}}"
if [[ ! -x "$bin" ]]; then
  echo "schemathesis.sh: no tessera binary at $bin; build it with 'cargo build -p tessera' or pass its path" >&2
  exit 2
fi

# Schemathesis, pinned, in its own folder so its dependencies never meet the project's.
tools="${TESSERA_TOOLS_DIR:-$HOME/.cache/tessera-ci/tools}/schemathesis-$VERSION"
st="$tools/bin/schemathesis"
if ! "$st" --version 2>/dev/null | grep -q "$VERSION"; then
  echo "installing schemathesis $VERSION into $tools"
  rm -rf "$tools"
  if python3 -m venv "$tools" >/dev/null 2>&1; then
    "$tools/bin/python" -m pip install --quiet --disable-pip-version-check "schemathesis==$VERSION"
  else
    # No venv module (Debian without python3-venv): a plain folder on PYTHONPATH does the same.
    rm -rf "$tools"
    python3 -m pip install --quiet --disable-pip-version-check --target "$tools/lib" "schemathesis==$VERSION"
    mkdir -p "$tools/bin"
    cat > "$st" <<EOF
#!/usr/bin/env bash
PYTHONPATH="$tools/lib\${PYTHONPATH:+:\$PYTHONPATH}" exec python3 -c 'import sys; from schemathesis.cli import schemathesis; sys.exit(schemathesis())' "\$@"
EOF
    chmod +x "$st"
  fi
  "$st" --version | grep -q "$VERSION"
fi

work="$(mktemp -d)"
server_pid=""
stop_server() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
}
cleanup() {
  stop_server
  rm -rf "$work"
}
trap cleanup EXIT

admin_key="schemathesis-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
TESSERA_OFFLINE=1 TESSERA_ADMIN_KEY="$admin_key" \
  "$bin" serve --host 127.0.0.1 --port 0 --ctx-size 512 >"$work/stdout" 2>"$work/server.log" &
server_pid=$!

base=""
for _ in $(seq 1 600); do
  if line="$(grep -m1 '^tessera listening on ' "$work/stdout")"; then
    base="${line#tessera listening on }"
    break
  fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    break
  fi
  sleep 0.1
done
if [[ -z "$base" ]]; then
  echo "schemathesis.sh: tessera serve did not start; its log:" >&2
  tail -n 40 "$work/server.log" >&2
  exit 1
fi
echo "fuzzing $base/openapi.json with schemathesis $VERSION (seed $seed, $max_examples cases per operation)"

status=0
timeout "$time_limit" "$st" --config-file scripts/schemathesis.toml run "$base/openapi.json" \
  --checks "$CHECKS" \
  --max-examples "$max_examples" \
  --seed "$seed" \
  --header "Authorization: Bearer $admin_key" \
  --request-timeout 60 \
  --generation-database none \
  --no-color \
  || status=$?

if ((status == 124)); then
  echo "schemathesis.sh: stopped after ${time_limit}s (SCHEMATHESIS_TIME_LIMIT)" >&2
fi
if ! kill -0 "$server_pid" 2>/dev/null; then
  echo "schemathesis.sh: the server died during the run" >&2
  status=1
fi
if ((status != 0)); then
  echo "--- last lines of the server log ---" >&2
  tail -n 40 "$work/server.log" >&2
fi
stop_server
exit "$status"
