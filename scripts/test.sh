#!/usr/bin/env bash
# Everything CI checks: formatting, lints (warnings are errors), all tests.
# The integration tests drive the server with ffmpeg/ffprobe from PATH; the
# player's tests drive it from headless Chromium (/usr/bin/chromium); schemathesis
# (PyPI, in a venv under the build tree) checks the OpenAPI document against it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

./scripts/deps.sh
if ! command -v cargo >/dev/null 2>&1; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
for tool in ffmpeg ffprobe; do
    command -v "$tool" >/dev/null 2>&1 || { echo "test.sh: $tool not on PATH" >&2; exit 1; }
done

step() { printf '\n==> %s\n' "$*" >&2; }

step scripts/build-player.sh
./scripts/build-player.sh

step cargo fmt --check
cargo fmt --check
step cargo clippy --workspace --all-targets -- -D warnings
cargo clippy --workspace --all-targets -- -D warnings
step cargo test --workspace --all-targets
cargo test --workspace --all-targets
step "schemathesis: the OpenAPI document against the running server"
# Against target/debug/panocast, which cargo test has just built.
./scripts/schemathesis.sh
step "fuzz/run.sh: every parser fuzz target, 15 s each"
FUZZ_SECONDS="${FUZZ_SECONDS:-15}" ./fuzz/run.sh
step "player tests (node --test player/tests/)"
# Against target/debug/panocast, which cargo test has just built.
bin="$(realpath "${CARGO_TARGET_DIR:-target}")/debug/panocast"
(cd player && PANOCAST_BIN="$bin" node --test tests/)
step "stock players (tests/players: hls.js, Shaka Player, video.js in Chromium)"
(cd tests/players && npm ci --no-audit --no-fund --loglevel=error && PANOCAST_BIN="$bin" node --test)
