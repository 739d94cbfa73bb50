#!/usr/bin/env bash
# Runs the whole benchmark (bench/README.md): builds release binaries, installs Redis where
# it is missing (apt; needs root), then runs syncman-bench with any arguments given
# (--pin, --quick, --seconds S, --json FILE, --svg FILE).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-benchmark >/dev/null 2>&1; then
  apt-get update -q && apt-get install -y -q redis-server redis-tools
fi
cargo build --release -q -p syncman-server -p syncman-bench
exec target/release/syncman-bench "$@"
