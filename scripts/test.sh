#!/usr/bin/env bash
# Everything CI checks: formatting, lints (warnings are errors), all tests.
# The integration tests drive the server with ffmpeg/ffprobe from PATH; the
# player's tests drive it from headless Chromium (/usr/bin/chromium).
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
step cargo clippy --all-targets -- -D warnings
cargo clippy --all-targets -- -D warnings
step cargo test --all-targets
cargo test --all-targets
step "player tests (node --test player/tests/)"
# Against target/debug/panocast, which cargo test has just built.
bin="$(realpath "${CARGO_TARGET_DIR:-target}")/debug/panocast"
(cd player && PANOCAST_BIN="$bin" node --test tests/)
