#!/usr/bin/env bash
# Install the Debian 12 packages panocast needs to build, run and test.
#
#   scripts/deps.sh          build/run/test packages (chromium for the player's
#                            browser test)
#   scripts/deps.sh --bench  the same plus what benches/live_path/run.sh needs
#
# Idempotent: packages are checked with dpkg-query first, and `apt-get update`
# runs only when something is missing, so on a warm machine this costs a few
# dpkg-query calls. Also checks that a Rust toolchain (cargo, rustfmt, clippy)
# and Node.js >= 20 with npm (to build the player) are on PATH; neither is
# installed from here.
set -euo pipefail

usage() {
    echo "usage: $0 [--bench]" >&2
}

bench=0
for arg in "$@"; do
    case "$arg" in
        --bench) bench=1 ;;
        -h | --help) usage; exit 0 ;;
        *) usage; exit 2 ;;
    esac
done

packages=(
    pkg-config
    build-essential
    ffmpeg
    # Also ships libgstcheck-1.0: gst-plugins/tests drive panoproject with
    # gst_check::Harness.
    libgstreamer1.0-dev
    libgstreamer-plugins-base1.0-dev
    gstreamer1.0-plugins-base
    gstreamer1.0-plugins-good
    gstreamer1.0-plugins-bad
    gstreamer1.0-plugins-ugly
    gstreamer1.0-libav
    gstreamer1.0-tools
    # tests/rtsp_ingest.rs: the test camera (gst-rtsp-server and its Rust bindings).
    libgstrtspserver-1.0-dev
    gstreamer1.0-rtsp
    libssl-dev
    curl
    # player/tests/e2e.test.mjs drives it with playwright-core (/usr/bin/chromium).
    chromium
    # scripts/schemathesis.sh: schemathesis from PyPI in a venv under the build tree
    # (python3-venv brings ensurepip); also benches/live_path's measurement helper.
    python3
    python3-venv
    # tests/notify_mail.rs: the real SMTP server the mail tests deliver to.
    python3-aiosmtpd
    # tests/tls.rs: the ACME test server the HTTP-01 order runs against.
    pebble
)
# benches/live_path: nginx + nginx-rtmp as the reference server, python3 for
# the measurement helpers of it and of benches/ladder and benches/projection
# (standard library only).
bench_packages=(
    nginx
    libnginx-mod-rtmp
)
if ((bench)); then
    packages+=("${bench_packages[@]}")
fi

missing=()
for pkg in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    if [[ "$status" != installed ]]; then
        missing+=("$pkg")
    fi
done

if ((${#missing[@]})); then
    echo "deps.sh: installing ${missing[*]}" >&2
    if ((EUID == 0)); then
        as_root=()
    elif command -v sudo >/dev/null 2>&1; then
        as_root=(sudo)
    else
        echo "deps.sh: need root or sudo to install: ${missing[*]}" >&2
        exit 1
    fi
    # Wait for another apt/dpkg (unattended-upgrades on a fresh machine)
    # instead of failing on its lock.
    lock=(-o DPkg::Lock::Timeout=600)
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q "${lock[@]}"
    "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q "${lock[@]}" --no-install-recommends "${missing[@]}" </dev/null
fi

# Rust toolchain: not an apt package here (Debian's rustc is too old for the
# workspace's rust-version), and rustup cannot be fetched from this network.
if ! command -v cargo >/dev/null 2>&1 && [[ -x "$HOME/.cargo/bin/cargo" ]]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! command -v cargo >/dev/null 2>&1; then
    cat >&2 <<'EOF'
deps.sh: cargo not found. panocast needs a Rust toolchain (see rust-version in
Cargo.toml) with the rustfmt and clippy components. Install it with rustup:
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y \
        --profile minimal --component rustfmt,clippy
then open a new shell (or `source "$HOME/.cargo/env"`) and run this again.
EOF
    exit 1
fi
# scripts/test.sh needs these two; running the server does not.
for component in fmt clippy; do
    if ! cargo "$component" --version >/dev/null 2>&1; then
        echo "deps.sh: warning: 'cargo $component' is missing (rustup component add ${component/fmt/rustfmt})" >&2
    fi
done

# Node.js builds the 360 player (scripts/build-player.sh). Debian 12's nodejs is 18,
# too old for vite 7, so it is not installed from here either.
node_min=20
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    cat >&2 <<EOF
deps.sh: node and npm not found. panocast's 360 player (player/) is built with
Node.js >= $node_min and npm. Install Node.js $node_min or newer (with npm) and run this again.
EOF
    exit 1
fi
node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if ((node_major < node_min)); then
    echo "deps.sh: Node.js $(node --version) is too old; the player needs Node.js >= $node_min" >&2
    exit 1
fi
