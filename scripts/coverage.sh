#!/usr/bin/env bash
# Line/region coverage of the whole workspace, including the code the
# end-to-end tests exercise inside the real (instrumented) binaries.
# Needs: rustup component add llvm-tools-preview; cargo install cargo-llvm-cov.
# Prints the per-file summary; an HTML report lands in target/llvm-cov/html.
set -euo pipefail
cd "$(dirname "$0")/.."
eval "$(cargo llvm-cov show-env --export-prefix)"
cargo llvm-cov clean --workspace
cargo build --workspace --bins
# Test processes find the instrumented binaries here; they must exit cleanly
# (the harness stops them with SIGTERM) to write their profiles.
LOOKOUT_BIN_DIR="$CARGO_LLVM_COV_TARGET_DIR/debug" cargo nextest run --workspace --no-fail-fast
cargo llvm-cov report --html
cargo llvm-cov report --summary-only
