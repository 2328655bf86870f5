#!/usr/bin/env bash
# Takeover isolation benchmark (issue 10); see bench.py for what it prints.
#   benches/takeover/run.sh            builds target/release/panocast first
#   PANOCAST_BIN=... benches/takeover/run.sh
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
if [[ -z "${PANOCAST_BIN:-}" ]]; then
    (cd "$repo" && cargo build --release --quiet)
fi
exec python3 "$repo/benches/takeover/bench.py"
