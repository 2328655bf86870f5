#!/usr/bin/env bash
# Build (release) and start the server: ./scripts/run.sh [serve options]
#   e.g. ./scripts/run.sh --config panocast.toml --http 127.0.0.1:8080
# Without --config it creates a `demo` stream and prints the OBS server URL,
# the stream key and the playback URL.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

./scripts/deps.sh
if ! command -v cargo >/dev/null 2>&1; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
./scripts/build-player.sh
exec cargo run --release -- serve "$@"
