#!/usr/bin/env bash
# On-demand benchmarks (issue 11); see bench.py for what each prints:
#   transcode  a 60 s 3840x1920 equirect MP4 to the "360" ladder: the server's CPU
#              seconds against one ffmpeg doing the same ladder (target <= 0.9x)
#   mp3        the server's MP3 extraction against ffmpeg -vn -c:a libmp3lame at
#              192 kb/s (target <= 1.0x)
#   upload     a 2 GB tus upload over loopback: MB/s and server RSS growth (< 50 MB)
#
#   benches/vod/run.sh                         uses target/release/panocast (build it first)
#   BENCH_PARTS="mp3 upload" BENCH_RUNS=2 ...  (defaults: all three parts, 2 runs each)
#   BENCH_UPLOAD_BYTES=2000000000 BENCH_NICE=10 BENCH_OUT=<repo>/bench-out
# Not part of CI: the transcode part takes minutes per run on 2 cores. The source is
# generated once into $BENCH_OUT. Every process it starts runs under nice.
set -euo pipefail
repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin="${PANOCAST_BIN:-$repo/target/release/panocast}"
[[ -x "$bin" ]] || { echo "benches/vod/run.sh: $bin missing; cargo build --release first" >&2; exit 1; }
out="${BENCH_OUT:-$repo/bench-out}"
mkdir -p "$out/vod"
nice_n="${BENCH_NICE:-10}"
log() { printf '[vod %s] %s\n' "$(date +%T)" "$*" >&2; }

src="$out/vod-src-3840x1920-60s.mp4"
if [[ ! -s "$src" ]]; then
    log "generating $(basename "$src") (once; a few minutes on 2 cores)"
    nice -n "$nice_n" ffmpeg -nostdin -loglevel error -y \
        -f lavfi -i testsrc2=size=3840x1920:rate=30 -f lavfi -i sine=frequency=440:sample_rate=48000 \
        -t 60 -c:v libx264 -preset ultrafast -pix_fmt yuv420p -b:v 12M -maxrate 12M -bufsize 24M \
        -g 60 -keyint_min 60 -sc_threshold 0 -c:a aac -b:a 128k -ac 2 -movflags +faststart "$src.tmp.mp4"
    mv "$src.tmp.mp4" "$src"
fi

mp3="${PANOCAST_VOD_MP3:-}"
if [[ -z "$mp3" ]]; then
    log "cargo bench --bench vod_mp3 --no-run (release)"
    json="$(cargo bench --bench vod_mp3 --no-run --message-format=json-render-diagnostics 2>"$out/vod/cargo.log")" \
        || { tail -n 20 "$out/vod/cargo.log" >&2; exit 1; }
    mp3="$(python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "vod_mp3" and m.get("executable"):
        print(m["executable"])' <<<"$json" | tail -n 1)"
fi
[[ -x "$mp3" ]] || { echo "benches/vod/run.sh: no vod_mp3 bench binary" >&2; exit 1; }

PANOCAST_BIN="$bin" PANOCAST_VOD_MP3="$mp3" BENCH_SRC="$src" BENCH_OUT_DIR="$out/vod" \
    exec nice -n "$nice_n" python3 "$repo/benches/vod/bench.py"
