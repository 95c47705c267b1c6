#!/usr/bin/env bash
# The dashboard's numbers (first paint with 200 items and thumbnails; page
# memory over an accelerated hour), in headless Chromium against release
# binaries. Writes docs/bench/dashboard.json; see tests/browser/bench.mjs.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p webserver -p detector
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
mkdir -p docs/bench
LOOKOUT_BIN_DIR="$PWD/target/release" CHROMIUM="${CHROMIUM:-/usr/bin/chromium}" \
    node tests/browser/bench.mjs | tee docs/bench/dashboard.json
