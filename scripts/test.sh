#!/usr/bin/env bash
# Runs every Lookout test: unit tests, end-to-end tests that start the real
# binaries, and dashboard tests in real headless Chromium. The README's test
# command; .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# Camera tests decode real video with the system's ffmpeg.
if ! command -v ffmpeg >/dev/null 2>&1; then
    echo "error: ffmpeg not found; the camera tests need it (apt-get install ffmpeg)" >&2
    exit 1
fi

# The /metrics tests use the reference OpenMetrics parser; the AsyncAPI
# test validates captured messages with jsonschema.
if ! python3 -c 'import prometheus_client, jsonschema' >/dev/null 2>&1; then
    echo "error: Python's prometheus_client or jsonschema not found; the tests need them" >&2
    echo "       (pip install prometheus-client==0.26.0 jsonschema==4.26.0)" >&2
    exit 1
fi

# End-to-end and browser tests start the real binaries: build them first.
cargo build --workspace --bins --locked

# The object tests run the real model on real photos: build the model once
# (cached outside the clone, ~/.cache/lookout/models; see models/README.md)
# and fetch the photos (the scikit-image wheel's samples, never committed).
LOOKOUT_MODEL="${LOOKOUT_MODEL:-$(./scripts/fetch-model.sh)}"
export LOOKOUT_MODEL
./scripts/fetch-photos.sh >/dev/null

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --no-fail-fast
else
    echo "cargo-nextest not found; falling back to cargo test" >&2
    cargo test --workspace --locked --no-fail-fast
fi

# The dashboard, driven in headless Chromium (Debian's `chromium` package).
chromium="${CHROMIUM:-/usr/bin/chromium}"
if [ -x "$chromium" ]; then
    (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error && CHROMIUM="$chromium" node --test --test-concurrency=1)
elif [ "${CI:-}" = "true" ]; then
    echo "error: $chromium not found; the browser tests need Debian's chromium package" >&2
    exit 1
else
    echo "warning: SKIPPED the dashboard browser tests: no Chromium at $chromium (apt-get install chromium, or set CHROMIUM)" >&2
fi
