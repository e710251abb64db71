#!/usr/bin/env bash
# Idle memory of a Node benchmark server (bench/servers/palaver-express.js or
# socketio-express.js) with and without the garbage V8 has not collected yet:
# scenario (b)'s measurement (RSS once stable, minus RSS before, over the joined
# idle WebSocket connections), then a full collection (SIGUSR2 to the server,
# run with `--expose-gc` and gc-on-signal.cjs) and the same measurement again.
# Run `make bench-build` first: palaver-express loads the release addon from
# target/bench-addon.
#
#   bench/scripts/idle-node-heap.sh SERVER_JS [COUNT] [ROOM] [BENCH_BINARY]
set -euo pipefail
server_js=$1
count=${2:-10000}
room=${3:-100}
bench=${4:-target/release/palaver-bench}
repo=$(cd "$(dirname "$0")/../.." && pwd)
stop_signal=TERM
# shellcheck source=idle-lib.sh
. "$repo/bench/scripts/idle-lib.sh"

NODE_PATH="$repo/bench/node_modules" \
  NAPI_RS_NATIVE_LIBRARY_PATH="$repo/target/bench-addon/palaver.linux-x64-gnu.node" \
  BENCH_PALAVER_CONFIG="$repo/bench/config/palaver.json" \
  node --expose-gc -r "$repo/bench/scripts/gc-on-signal.cjs" "$server_js" >"$log" 2>&1 &
pid=$!
await_port 'BENCH_LISTENING '
before=$(settle)
hold_idle "$port" "$count" "$room"
after=$(settle)
per_connection "$(basename "$server_js") as measured" "$before" "$after"
kill -USR2 "$pid"
until grep -q HEAP_AFTER_GC "$log"; do sleep 0.2; done
after_gc=$(settle)
per_connection "$(basename "$server_js") after a full GC" "$before" "$after_gc"
grep HEAP_AFTER_GC "$log"
