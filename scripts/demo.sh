#!/usr/bin/env bash
# Starts the whole Lookout system on this machine: the webserver and a
# simulated detector (`detector --dry-run`), sharing ./data (or
# $LOOKOUT_DATA_DIR). Prints the dashboard URL; Ctrl-C stops both cleanly.
#
#   scripts/demo.sh                 # calm demo, ~0.5 events/s
#   scripts/demo.sh --rate 5        # extra arguments go to the detector
#   LOOKOUT_BIND=127.0.0.1:9000 scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

data_dir="${LOOKOUT_DATA_DIR:-data}"
bind="${LOOKOUT_BIND:-127.0.0.1:8000}"

cargo build --release --locked -p webserver -p detector

./target/release/webserver --data-dir "$data_dir" --bind "$bind" >/dev/null &
webserver=$!
./target/release/detector --dry-run --data-dir "$data_dir" "$@" &
detector=$!

stop() {
    trap - INT TERM EXIT
    kill -TERM "$detector" "$webserver" 2>/dev/null || true
    wait "$detector" "$webserver" 2>/dev/null || true
    echo "Lookout stopped. Events are kept in $data_dir/."
}
trap stop INT TERM EXIT

echo
echo "  Lookout is running (simulated cameras)."
echo "  Dashboard:  http://$bind/"
echo "  API docs:   http://$bind/docs"
echo "  Data:       $data_dir/  (events.db, events.jsonl, events.log)"
echo "  Press Ctrl-C to stop."
echo

# Exit when either process ends on its own (e.g. --count reached, or an error).
wait -n "$detector" "$webserver" || true
