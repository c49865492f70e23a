#!/bin/sh
# Writes the four MediaPipe pose models the fixture tests read into DIR, from the npm package
# @mediapipe/pose (the detector is the first 2,962,288 bytes of its packed assets file).
# Usage: tests/fetch_fixtures.sh DIR, then TESSERA_TFLITE_FIXTURES=DIR cargo test -p tessera-tflite
set -eu
dir=${1:?usage: fetch_fixtures.sh DIR}
version=0.5.1675469404
mkdir -p "$dir"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "@mediapipe/pose@$version" >/dev/null && tar xzf "mediapipe-pose-$version.tgz")
for m in lite full heavy; do
    cp "$tmp/package/pose_landmark_$m.tflite" "$dir/"
done
head -c 2962288 "$tmp/package/pose_solution_packed_assets.data" >"$dir/pose_detection.tflite"
for f in "$dir"/pose_*.tflite; do
    [ "$(dd if="$f" bs=1 skip=4 count=4 2>/dev/null)" = TFL3 ] || { echo "$f is not a TFLite model" >&2; exit 1; }
done
ls -l "$dir"/pose_*.tflite
