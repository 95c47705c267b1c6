#!/usr/bin/env bash
# Runs every Lookout test: unit tests, and end-to-end tests that start the real
# binaries. The README's test command; .ci/run calls exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# End-to-end tests start the real binaries, so build them first.
cargo build --workspace --bins --locked

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --no-fail-fast
else
    echo "cargo-nextest not found; falling back to cargo test" >&2
    cargo test --workspace --locked --no-fail-fast
fi
