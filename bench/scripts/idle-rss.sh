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
log=$(mktemp)
workers=()
cleanup() {
  for w in "${workers[@]}"; do kill "$w" 2>/dev/null || true; done
  [ -n "${spid:-}" ] && kill -INT "$spid" 2>/dev/null || true
  [ -n "${spid:-}" ] && wait "$spid" 2>/dev/null || true
  rm -f "$log"
}
trap cleanup EXIT

"$server" --config "$repo/bench/config/palaver.json" >"$log" 2>&1 &
spid=$!
port=
for _ in $(seq 1 300); do
  port=$(grep -o 'http://127.0.0.1:[0-9]*' "$log" | head -1 | cut -d: -f3 || true)
  [ -n "$port" ] && break
  sleep 0.1
done
[ -n "$port" ] || { echo "server did not start:"; cat "$log"; exit 1; }
pid=$spid
# shellcheck source=idle-lib.sh
. "$repo/bench/scripts/idle-lib.sh"
before=$(settle)
hold_idle "$port" "$count" "$room"
after=$(settle)
per_connection "$(basename "$server")" "$before" "$after"
if [ -n "${HOLD_SECONDS:-}" ]; then sleep "$HOLD_SECONDS"; fi
