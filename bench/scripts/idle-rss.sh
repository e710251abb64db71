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
rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }
settle() {
  local last now
  last=$(rss)
  while true; do
    sleep 1
    now=$(rss)
    if [ $(( (now > last ? now - last : last - now) * 200 )) -le "$last" ]; then
      echo "$now"
      return
    fi
    last=$now
  done
}
before=$(settle)
# One worker per 9,000 connections keeps each below its descriptor limit.
per=9000
first=0
fifo_dir=$(mktemp -d)
while [ "$first" -lt "$count" ]; do
  n=$(( count - first < per ? count - first : per ))
  mkfifo "$fifo_dir/$first"
  "$bench" hold --addr "127.0.0.1:$port" --first "$first" --count "$n" \
    --room-size "$room" --concurrency 100 --max-seconds 900 \
    <"$fifo_dir/$first" >"$fifo_dir/$first.out" &
  workers+=($!)
  exec {fd}>"$fifo_dir/$first"
  first=$(( first + n ))
done
for f in "$fifo_dir"/*.out; do
  until grep -q HOLD_CONNECTED "$f"; do sleep 0.2; done
done
connected=$(cat "$fifo_dir"/*.out | awk '/HOLD_CONNECTED/ {s += $2} END {print s}')
after=$(settle)
awk -v b="$before" -v a="$after" -v n="$connected" 'BEGIN {
  printf "connections %d  RSS before %.1f MiB  after %.1f MiB  KiB per connection %.2f\n",
    n, b / 1024, a / 1024, (a - b) / n }'
if [ -n "${HOLD_SECONDS:-}" ]; then sleep "$HOLD_SECONDS"; fi
rm -rf "$fifo_dir"
