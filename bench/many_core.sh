#!/usr/bin/env bash
# Issue 15's many-core runs, for a machine with more than 4 CPUs on which nothing can be
# built or fetched: carry the release binaries there and run this beside them.
#
#   bench/many_core.sh [BIN_DIR] [OUT_DIR]
#
# BIN_DIR holds `syncman` and `syncman-bench` (default target/release); results go to OUT_DIR
# (default target/bench/many-core). Two calls-only runs, each pinned: the servers on CPU 0
# (the one-core target, ≥ 0.9× the echo), then on CPUs 0-3 (the 4-core target, ≥ 3×
# Redis), the clients on every other CPU. Redis is measured when `redis-server` and
# `redis-benchmark` are on PATH; without them the ratios to Redis are left out. CPython's
# manager is measured only where the repository's scripts are (bench/README.md).
set -euo pipefail
bin=${1:-target/release}
out=${2:-target/bench/many-core}
cpus=$(nproc)
if [ "$cpus" -le 4 ]; then
  echo "many_core.sh: needs more than 4 CPUs, this machine has $cpus" >&2
  exit 1
fi
for tool in "$bin/syncman" "$bin/syncman-bench"; do
  [ -x "$tool" ] || { echo "many_core.sh: $tool is missing" >&2; exit 1; }
done
command -v redis-server >/dev/null 2>&1 && command -v redis-benchmark >/dev/null 2>&1 ||
  echo "many_core.sh: no redis-server/redis-benchmark on PATH: no ratios to Redis" >&2
mkdir -p "$out"
for servers in 1 4; do
  echo "== servers on $servers CPU(s), clients on the other $((cpus - servers))" >&2
  "$bin/syncman-bench" --pin --server-cpus "$servers" --only calls --syncman "$bin/syncman" \
    --json "$out/servers-$servers.json" --svg "$out/servers-$servers.svg" |
    tee "$out/servers-$servers.md"
done
