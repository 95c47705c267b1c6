#!/usr/bin/env bash
# Builds release binaries and runs the benchmark (scripts/bench.py):
# every scenario against Lookout and the minimal baseline, in one run.
#   scripts/bench.sh           full table into docs/bench/ (about 25 minutes)
#   scripts/bench.sh --smoke   50 clients for 5 s; fails if anything is lost
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked -p webserver -p detector -p bench
exec python3 scripts/bench.py "$@"
