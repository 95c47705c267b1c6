#!/usr/bin/env bash
# The fault tests at length, for docs/reliability.md. The default test run
# (scripts/test.sh) runs the same tests at a smaller size.
#
#   scripts/chaos.sh                       # 200 SIGKILLs, 100 alternating-kill rounds, fuzzing 5 min per target
#   CRASH_ROUNDS=1000 CHAOS_ROUNDS=300 FUZZ_SECONDS=1800 scripts/chaos.sh
#
# Prints one FIGURE line per test; the fuzzers print their own summary.
set -euo pipefail
cd "$(dirname "$0")/.."

crash_rounds="${CRASH_ROUNDS:-200}"
chaos_rounds="${CHAOS_ROUNDS:-100}"
fuzz_seconds="${FUZZ_SECONDS:-300}"

cargo build --workspace --bins --locked
LOOKOUT_CRASH_ROUNDS="$crash_rounds" LOOKOUT_CHAOS_ROUNDS="$chaos_rounds" \
    cargo nextest run -p e2e --test reliability --test hostile --no-fail-fast --no-capture 2>&1 \
    | grep -E '^(FIGURE|SKIPPED)|Summary'

if command -v cargo-fuzz >/dev/null 2>&1; then
    for target in frame_decode frame_round_trip; do
        (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run "$target" corpus/"$target" -- \
            -max_total_time="$fuzz_seconds" -malloc_limit_mb=64 -rss_limit_mb=512 2>&1 | tail -n 3)
    done
else
    echo "cargo-fuzz not installed (cargo install cargo-fuzz): fuzzing skipped" >&2
fi
