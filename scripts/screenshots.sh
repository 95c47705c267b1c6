#!/usr/bin/env bash
# Regenerates docs/dashboard.png and docs/dashboard-narrow.png from a real
# run (webserver + dry-run detector, headless Chromium), so the README's
# pictures show the current page. Needs Chromium (CHROMIUM=/path) and Node 20.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --workspace --bins --locked
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}" node tests/browser/screenshots.mjs
