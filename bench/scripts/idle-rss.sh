#!/usr/bin/env bash
# Idle memory of one palaver-server build, without the whole runner: starts the
# given server binary with bench/config/palaver.json, opens COUNT joined, idle
# WebSocket connections (rooms of ROOM) with `palaver-bench hold` workers, and
# prints the server's RSS before and after and the KiB per connection, as
# scenario (b) of `make bench` computes them. Useful to compare two builds of the
# server in the same sitting (copy each build's binary aside first).
#
#   bench/scripts/idle-rss.sh SERVER_BINARY [COUNT] [ROOM] [BENCH_BINARY]
#
# For a heap profile, run the server under heaptrack by hand with the same config
# and point `palaver-bench hold` at it (see the byte budget in results/RESULTS.md).
set -euo pipefail
server=$1
count=${2:-10000}
room=${3:-100}
bench=${4:-target/release/palaver-bench}
repo=$(cd "$(dirname "$0")/../.." && pwd)
stop_signal=INT
# shellcheck source=idle-lib.sh
. "$repo/bench/scripts/idle-lib.sh"

"$server" --config "$repo/bench/config/palaver.json" >"$log" 2>&1 &
pid=$!
await_port 'http://127.0.0.1:'
before=$(settle)
hold_idle "$port" "$count" "$room"
after=$(settle)
per_connection "$(basename "$server")" "$before" "$after"
if [ -n "${HOLD_SECONDS:-}" ]; then sleep "$HOLD_SECONDS"; fi
