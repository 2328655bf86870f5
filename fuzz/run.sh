#!/usr/bin/env bash
# Runs every fuzz target (or those in FUZZ_TARGETS) for FUZZ_SECONDS each (default
# 60) with libFuzzer through cargo-fuzz, and fails on the first crash, leaving the
# crashing input under fuzz/artifacts/<target>/. Corpora grow under fuzz/corpus/.
#
# This machine has only a stable toolchain: cargo-fuzz passes a few -Z flags, which
# RUSTC_BOOTSTRAP=1 allows on stable; no sanitizer (-s none), since AddressSanitizer
# needs nightly's std. Rust's own bounds checks and overflow checks (-O keeps
# debug-assertions on) are what catch bugs here.
#
#   fuzz/run.sh                          every target, 60 s each (CI: 15 s)
#   FUZZ_SECONDS=600 fuzz/run.sh         the longer run by hand
#   FUZZ_TARGETS="flv_tags" fuzz/run.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

seconds="${FUZZ_SECONDS:-60}"
export PATH="$HOME/.cargo/bin:$PATH"
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1

# The RTMP targets start from the golden captures (tests/data/capture-rtmp.sh): the
# chunk stream after the 3073-byte handshake, behind the read-size byte the targets
# take first; rtmp_handshake gets the handshake itself.
seed() { # TARGET FILE SKIP
    local out="corpus/$1/golden-$(basename "$2")"
    # head closes the pipe after 64 KiB: tail's SIGPIPE is expected, not a failure.
    [[ -e "$out" ]] || { printf '\x10'; tail -c +"$(($3 + 1))" "$2" | head -c 65535 || true; } >"$out"
}
for capture in ../tests/data/*-rtmp-*.bin; do
    mkdir -p corpus/rtmp_chunks corpus/rtmp_chunk_decoder corpus/rtmp_handshake
    seed rtmp_chunks "$capture" 3073
    seed rtmp_chunk_decoder "$capture" 3073
    seed rtmp_handshake "$capture" 0
done

targets="${FUZZ_TARGETS:-$(cargo fuzz list)}"
for target in $targets; do
    mkdir -p "corpus/$target"
    echo "==> fuzz $target for ${seconds}s" >&2
    # libFuzzer's progress lines are left out; its summary, stats and any crash stay.
    if ! cargo fuzz run --sanitizer none -O "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -print_final_stats=1 -max_len=65536 2>&1 |
        { grep -E "^(Done|stat::|==|SUMMARY|thread '|INFO: Seed)|panicked" || true; }; then
        echo "fuzz/run.sh: $target crashed (input in fuzz/artifacts/$target/)" >&2
        exit 1
    fi
done
