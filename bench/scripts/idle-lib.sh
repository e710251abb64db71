# Shared by idle-rss.sh and idle-node-heap.sh (sourced, not run): the server's RSS
# once stable and the idle connections, as scenario (b) of `make bench` measures
# them. The caller sets `bench` (the palaver-bench binary) and `stop_signal`, starts
# the server with its output in "$log" and sets `pid`; `await_port PREFIX` sets
# `port` from the line the server prints; `hold_idle PORT COUNT ROOM` sets
# `connected`. On exit the workers and the server are stopped and the log removed.

log=$(mktemp)
workers=()
cleanup() {
  for w in "${workers[@]}"; do kill "$w" 2>/dev/null || true; done
  [ -n "${pid:-}" ] && kill "-$stop_signal" "$pid" 2>/dev/null || true
  [ -n "${pid:-}" ] && wait "$pid" 2>/dev/null || true
  rm -f "$log"
}
trap cleanup EXIT

# Waits up to 30 s for the server to print PREFIX followed by its port.
await_port() {
  port=
  for _ in $(seq 1 300); do
    port=$(grep -o "$1[0-9]*" "$log" | head -1 | grep -o '[0-9]*$' || true)
    [ -n "$port" ] && return
    sleep 0.1
  done
  echo "server did not start:"
  cat "$log"
  exit 1
}

rss() { awk '/VmRSS/ {print $2}' "/proc/$pid/status"; }

# Prints the RSS (KiB) once two readings a second apart differ by at most 0.5%.
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

# Opens COUNT joined WebSocket connections (rooms of ROOM) to 127.0.0.1:PORT with
# `palaver-bench hold` workers, which keep them idle until this shell exits.
hold_idle() {
  local port=$1 count=$2 room=$3
  # One worker per 9,000 connections keeps each below its descriptor limit.
  local per=9000 first=0 n fd fifo_dir
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
  rm -rf "$fifo_dir"
}

# Prints "LABEL: ... KiB per connection" from RSS readings BEFORE and AFTER (KiB).
per_connection() {
  awk -v l="$1" -v b="$2" -v a="$3" -v n="$connected" 'BEGIN {
    printf "%s: connections %d  RSS before %.1f MiB  after %.1f MiB  KiB per connection %.2f\n",
      l, n, b / 1024, a / 1024, (a - b) / n }'
}
