#!/usr/bin/env bash
# Instructions per call, counted by valgrind's callgrind: unlike a rate on a shared
# machine, the same for the same binary whatever else runs. For the node (`syncman serve`)
# and for the Rust client (`syncman-bench --drive-calls`), with 1 and with 16 dict calls in
# flight on one connection, and a queue's put/get and a lock's acquire/release at 1, as the
# difference between a run of 3,000 calls and one of 1,000 (which takes out start-up, the
# handshake and shutdown), divided by 2,000. Then the node's side of the same dict calls
# from an unmodified CPython client (`bench/cpython_clients.py calls`, the pickle
# dialect), when python3 is there.
#
#   bench/instructions.sh                      # builds release binaries, counts both sides
#   bench/instructions.sh --syncman OTHER_BIN  # another node build, beside this client
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { apt-get update -q && apt-get install -y -q valgrind; }
cargo build --release -q -p syncman-server -p syncman-bench
NODE=target/release/syncman
if [ "${1:-}" = "--syncman" ]; then NODE=$2; fi
BENCH=target/release/syncman-bench
# KEEP=DIR keeps callgrind's files there, for callgrind_annotate.
if [ -n "${KEEP:-}" ]; then WORK=$KEEP; mkdir -p "$WORK"; else
  WORK=$(mktemp -d)
  trap 'rm -rf "$WORK"' EXIT
fi
export SYNCMAN_AUTHKEY=instructions SYNCMAN_LOG=warn

# Starts the node under callgrind, its files named OUT.*; sets NODE_PID and ADDR.
start_node() {
  local out=$1
  valgrind --tool=callgrind --callgrind-out-file="$out.node" "$NODE" serve --bind 127.0.0.1:0 \
    >"$out.stdout" 2>"$out.log" &
  NODE_PID=$! ADDR=""
  for _ in $(seq 1 600); do
    ADDR=$(sed -n 's/^listening on //p' "$out.stdout" 2>/dev/null | head -1)
    [ -n "$ADDR" ] && break
    kill -0 $NODE_PID 2>/dev/null || { cat "$out.log" >&2; exit 1; }
    sleep 0.1 # polling for the ready line, bounded: 60 s
  done
  [ -n "$ADDR" ] || { echo "the node never printed its address" >&2; exit 1; }
}
stop_node() { kill -TERM $NODE_PID; wait $NODE_PID || true; }
total() { grep -E '^(summary|totals):' "$1" | head -1 | awk '{print $2}'; }

# Total instructions of the node and of the client for CALLS calls, IN_FLIGHT at a time,
# of OP (dict, queue or lock; `syncman-bench --drive-op`).
count() {
  local calls=$1 in_flight=$2 op=$3 out=$WORK/$1-$2-$3
  start_node "$out"
  SYNCMAN_ADDR=$ADDR valgrind --tool=callgrind --callgrind-out-file="$out.client" \
    "$BENCH" --drive-calls "$calls" --in-flight "$in_flight" --drive-op "$op" \
    2>"$out.client.log"
  stop_node
  echo "$(total "$out.node") $(total "$out.client")"
}

# Total instructions of the node for CALLS calls from a CPython client.
count_python() {
  local calls=$1 out=$WORK/python-$1 key_hex
  start_node "$out"
  key_hex=$(printf '%s' "$SYNCMAN_AUTHKEY" | od -An -tx1 | tr -d ' \n')
  python3 bench/cpython_clients.py calls "${ADDR%:*}" "${ADDR##*:}" "$key_hex" "$calls"
  stop_node
  total "$out.node"
}

echo "| calls in flight | node instructions/call | client instructions/call |"
echo "|---|---|---|"
# The dict alternation at 1 and 16 in flight, then a queue's put/get and a lock's
# acquire/release at 1 (calls that may wait, answered at once here).
for case in "1 dict" "16 dict" "1 queue" "1 lock"; do
  read -r in_flight op <<<"$case"
  read -r node_lo client_lo < <(count 1000 "$in_flight" "$op")
  read -r node_hi client_hi < <(count 3000 "$in_flight" "$op")
  label=$in_flight
  [ "$op" = dict ] || label="$in_flight, $op"
  echo "| $label | $(( (node_hi - node_lo) / 2000 )) | $(( (client_hi - client_lo) / 2000 )) |"
done
if command -v python3 >/dev/null; then
  lo=$(count_python 1000)
  hi=$(count_python 3000)
  echo "| 1, CPython client (pickle dialect) | $(( (hi - lo) / 2000 )) | — |"
fi
