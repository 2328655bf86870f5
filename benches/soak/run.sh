#!/usr/bin/env bash
# Soak benchmark (issue 18); see soak.py for what it does and prints.
#   benches/soak/run.sh                                  builds target/release/panocast first
#   PANOCAST_BIN=target/debug/panocast benches/soak/run.sh
#   SOAK_CYCLES=20 SOAK_CYCLE_S=3 benches/soak/run.sh    a short run (default 100 x 6 s)
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [[ -z "${PANOCAST_BIN:-}" ]]; then
    (cd "$repo" && cargo build --release --quiet)
fi
exec python3 "$repo/benches/soak/soak.py"
