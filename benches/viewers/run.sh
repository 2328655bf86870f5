#!/usr/bin/env bash
# Viewer capacity benchmark (issue 14, item 5). One live stream (an ffmpeg publisher
# looping a 640x320@30 H.264 + AAC clip at 600 kb/s, passthrough, 200 ms parts) and the load tool
# of benches/viewers/load.rs, everything on 127.0.0.1. Prints:
#   (a) viewers: for each N in BENCH_VIEWERS, N simulated LL-HLS viewers (one
#       keep-alive connection each, looping blocking playlist `_HLS_msn/_HLS_part` of
#       the preload hint -> that part): the release spread (each viewer's playlist
#       response behind the first viewer's, by kernel receive time; p50/p99 over every
#       held viewer and part, and the per-part first-to-last spread; viewers whose
#       request went out after the release were not held and are shown as the share
#       held), errors, requests/s,
#       server CPU per request and RSS, and RSS per 1,000 held requests (peak under
#       load minus the idle server's, per viewer). Each N gets a fresh server.
#       Target: p99 <= 50 ms at 2,000 viewers.
#   (b) fetch: one published part fetched over and over by C keep-alive connections
#       for each C in BENCH_CONNECTIONS, from panocast and then from nginx serving the
#       same bytes as a static file (sendfile on), same tool, back to back; requests/s,
#       latency p50/p99, CPU per request and the ratio panocast/nginx.
#       Target: ratio >= 1.
#
#   benches/viewers/run.sh
#   BENCH_VIEWERS="500 2000" BENCH_CONNECTIONS=100 BENCH_SECONDS=5 benches/viewers/run.sh  # quick
#
# Environment (defaults in brackets):
#   BENCH_PARTS        what to run [viewers fetch]
#   BENCH_VIEWERS      (a) viewer counts [100 500 1000 2000 4000 8000]
#   BENCH_CONNECTIONS  (b) connection counts [100 500 2000]
#   BENCH_SECONDS      measured seconds per run [15]; BENCH_WARMUP before it [3]
#   BENCH_FETCH_RENDITION  (b) whose newest part is fetched: video or audio [video]
#   BENCH_THREADS      the load tool's tokio worker threads [1]
#   BENCH_OUT          cache for the encoded clip and the logs [<repo>/bench-out]
#   NGINX_WORKERS      nginx worker_processes [auto]
#   PANOCAST_BIN       run this server instead of building target/release/panocast
#   VIEWERS_BIN        run this load tool instead of building target/release/viewers-load
#
# Every child process is stopped on exit. The exit status is non-zero only when
# something fails to run, never for a missed target.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

BENCH_PARTS="${BENCH_PARTS:-viewers fetch}"
BENCH_VIEWERS="${BENCH_VIEWERS:-100 500 1000 2000 4000 8000}"
BENCH_CONNECTIONS="${BENCH_CONNECTIONS:-100 500 2000}"
BENCH_SECONDS="${BENCH_SECONDS:-15}"
BENCH_WARMUP="${BENCH_WARMUP:-3}"
BENCH_THREADS="${BENCH_THREADS:-1}"
BENCH_FETCH_RENDITION="${BENCH_FETCH_RENDITION:-video}"
BENCH_OUT="${BENCH_OUT:-$repo/bench-out}"
NGINX_WORKERS="${NGINX_WORKERS:-auto}"
HOST=127.0.0.1
KEY="viewers-bench-key-0001-$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"

log() { printf '[viewers %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
has() { [[ " $1 " == *" $2 "* ]]; }

tmp="$(mktemp -d "${TMPDIR:-/tmp}/panocast-viewers.XXXXXX")"
server_pid=""
publisher_pid=""
nginx_pid=""

stop_pid() { # PID: TERM, wait up to 5 s, then KILL
    local pid="$1" i
    [[ -n "$pid" ]] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

stop_panocast() {
    stop_pid "$publisher_pid"
    publisher_pid=""
    stop_pid "$server_pid"
    server_pid=""
}

cleanup() {
    trap - EXIT INT TERM
    stop_panocast
    stop_pid "$nginx_pid"
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for tool in ffmpeg curl; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found: run ./scripts/deps.sh --bench"
done
has "$BENCH_PARTS" fetch && { command -v nginx >/dev/null 2>&1 || die "nginx not found"; }

# Each viewer is a socket on both ends.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

mkdir -p "$BENCH_OUT/media" "$BENCH_OUT/viewers"
logs="$BENCH_OUT/viewers"

panocast_bin="${PANOCAST_BIN:-$repo/target/release/panocast}"
if [[ -z "${PANOCAST_BIN:-}" ]]; then
    log "cargo build --release"
    (cd "$repo" && cargo build --release --quiet --bin panocast) || die "cargo build --release failed"
fi
load_bin="${VIEWERS_BIN:-$repo/target/release/viewers-load}"
if [[ -z "${VIEWERS_BIN:-}" ]]; then
    log "cargo build --release -p panocast-viewers-load"
    (cd "$repo" && cargo build --release --quiet -p panocast-viewers-load) || die "the load tool did not build"
fi
load() { "$load_bin" "$@"; }

# --- the stream ------------------------------------------------------------------

# Small parts (~10-20 kB, ~3 kB audio), as in the issue's measurement: at 4 Mb/s the
# part bytes alone (2,000 viewers x 5 parts/s x 100 kB) would saturate two cores.
clip="$BENCH_OUT/media/viewers-640x320-30fps-600k-gop1s-20s.flv"
if [[ ! -s "$clip" ]]; then
    log "encoding $(basename "$clip") (once)"
    ffmpeg -nostdin -hide_banner -loglevel error -y \
        -f lavfi -i "testsrc2=size=640x320:rate=30,noise=alls=12:allf=t" \
        -f lavfi -i "sine=frequency=440:sample_rate=48000" -t 20 -map 0:v -map 1:a \
        -c:v libx264 -preset veryfast -pix_fmt yuv420p -b:v 600k -maxrate 600k -bufsize 600k \
        -g 30 -keyint_min 30 -sc_threshold 0 -c:a aac -b:a 128k -f flv "$clip.tmp"
    mv "$clip.tmp" "$clip"
fi

http_port=""
start_panocast() { # LOGNAME CLIENTS [WINDOW_SEGMENTS]
    local dir="$tmp/panocast" line
    rm -rf "$dir"
    mkdir -p "$dir"
    cat >"$dir/panocast.toml" <<EOF
[hls]
window_segments = ${3:-10}

[limits]
http_connections = $(($2 + 500))
http_connections_per_address = $(($2 + 500))
max_held_requests = $((2 * $2 + 500))

[[streams]]
slug = "bench"
key = "$KEY"
projection = "equirect"
EOF
    env -u PANOCAST_HTTP -u PANOCAST_RTMP -u PANOCAST_DATA_DIR RUST_LOG=warn NO_COLOR=1 \
        PANOCAST_ADMIN_PASSWORD="viewers-bench-admin-1" \
        "$panocast_bin" serve --config "$dir/panocast.toml" --http "$HOST:0" --rtmp "$HOST:0" \
        --data-dir "$dir/data" >"$logs/$1.log" 2>&1 &
    server_pid=$!
    local http="" rtmp="" i
    for ((i = 0; i < 300; i++)); do
        http="$(sed -n 's|.*http://\([0-9.]*:[0-9]*\)/api/v1.*|\1|p' "$logs/$1.log" 2>/dev/null | head -n 1)"
        rtmp="$(sed -n 's|.*rtmp://\([0-9.]*:[0-9]*\)/live.*|\1|p' "$logs/$1.log" 2>/dev/null | head -n 1)"
        [[ -n "$http" && -n "$rtmp" ]] && break
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    [[ -n "$http" && -n "$rtmp" ]] || { tail -n 20 "$logs/$1.log" >&2; die "panocast did not start"; }
    http_port="${http##*:}"
    ffmpeg -nostdin -hide_banner -loglevel error -re -stream_loop -1 -i "$clip" -c copy \
        -f flv "rtmp://$rtmp/live/$KEY" >"$logs/$1-publisher.log" 2>&1 &
    publisher_pid=$!
    for ((i = 0; i < 300; i++)); do
        curl -sf -o /dev/null "http://$HOST:$http_port/hls/bench/index.m3u8" && break
        sleep 0.1
    done
    curl -sf -o /dev/null "http://$HOST:$http_port/hls/bench/index.m3u8" ||
        die "the stream did not go live (see $logs/)"
    # A few parts in, so the first viewers find a preload hint.
    sleep 2
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }
field() { sed -n "s/.*\"$2\":\([-0-9.e]*\).*/\1/p" <<<"$1"; }

# --- (a) viewers -----------------------------------------------------------------

viewer_rows=()
if has "$BENCH_PARTS" viewers; then
    for n in $BENCH_VIEWERS; do
        log "(a) $n viewers, ${BENCH_SECONDS}s"
        start_panocast "viewers-$n" "$n"
        idle="$(rss_kib "$server_pid")"
        out="$(load viewers --addr "$HOST:$http_port" --path /hls/bench/index.m3u8 \
            --viewers "$n" --seconds "$BENCH_SECONDS" --warmup "$BENCH_WARMUP" \
            --threads "$BENCH_THREADS" --pid "$server_pid" 2>>"$logs/viewers-$n-tool.log")"
        printf '%s\n' "$out" | tee -a "$logs/results.jsonl" | head -n 1
        json="$(tail -n 1 <<<"$out")"
        peak="$(field "$json" server_rss_kib_peak)"
        per1000="$(awk -v p="$peak" -v i="$idle" -v n="$n" 'BEGIN { printf "%.0f", (p - i) * 1000 / n }')"
        viewer_rows+=("$(printf '%6s %9.1f %9.1f %9.1f %9.1f %6.0f%% %7s %9.0f %8.1f %9s %9s' "$n" \
            "$(field "$json" delay_ms_p50)" "$(field "$json" delay_ms_p99)" \
            "$(field "$json" spread_ms_p50)" "$(field "$json" spread_ms_p99)" \
            "$(awk -v h="$(field "$json" held_share)" 'BEGIN { print h * 100 }')" \
            "$(field "$json" errors)" "$(field "$json" requests_per_s)" \
            "$(field "$json" server_cpu_us_per_request)" "$idle" "$per1000")")
        stop_panocast
    done
fi

# --- (b) fetch -------------------------------------------------------------------

start_nginx() {
    local prefix="$tmp/nginx" user=""
    mkdir -p "$prefix/conf" "$prefix/logs" "$prefix/www"
    ((EUID == 0)) && user="user root;"
    cat >"$prefix/conf/nginx.conf" <<EOF
$user
daemon off;
master_process on;
worker_processes $NGINX_WORKERS;
worker_rlimit_nofile 65536;
pid $prefix/nginx.pid;
error_log $prefix/logs/error.log warn;
events { worker_connections 16384; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    open_file_cache max=16;
    open_file_cache_valid 60s;
    types { video/mp4 m4s; }
    server {
        listen $HOST:$nginx_port;
        root $prefix/www;
        # What panocast says about a published part.
        add_header Cache-Control "public, max-age=31536000, immutable";
        add_header Access-Control-Allow-Origin "*";
    }
}
EOF
    nginx -p "$prefix" -e "$prefix/logs/error.log" -c "$prefix/conf/nginx.conf" >"$logs/nginx.log" 2>&1 &
    nginx_pid=$!
    local i
    for ((i = 0; i < 100; i++)); do
        curl -s -o /dev/null "http://$HOST:$nginx_port/" && break
        sleep 0.1
    done
}

nginx_pids() { echo "$nginx_pid" $(cat "/proc/$nginx_pid/task/"*/children 2>/dev/null); }

fetch_rows=()
if has "$BENCH_PARTS" fetch; then
    max=0
    for c in $BENCH_CONNECTIONS; do ((c > max)) && max=$c; done
    # A part stays as long as its segment is in the window: 60 s of them, so the
    # part chosen is still there at the end of its run.
    start_panocast fetch "$max" 30
    nginx_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
    start_nginx
    base="http://$HOST:$http_port/hls/bench"
    playlist="$BENCH_FETCH_RENDITION.m3u8"
    for c in $BENCH_CONNECTIONS; do
        # The newest part that does not start a segment (those carry the keyframe and
        # are several times larger), so runs compare like with like.
        part="$(curl -sf "$base/$playlist" | grep '^#EXT-X-PART:' | grep -v INDEPENDENT=YES |
            sed -n 's/.*URI="\([^"]*\)".*/\1/p' | tail -n 1)"
        # (Audio parts are all independent: any will do.)
        [[ -n "$part" ]] || part="$(curl -sf "$base/$playlist" | grep '^#EXT-X-PART:' |
            sed -n 's/.*URI="\([^"]*\)".*/\1/p' | tail -n 1)"
        # Part URIs are relative to the playlist: "video/part-M-P.m4s".
        path="/hls/bench/$part"
        curl -sf -o "$tmp/nginx/www/part.m4s" "http://$HOST:$http_port$path" || die "cannot fetch $path"
        size="$(stat -c %s "$tmp/nginx/www/part.m4s")"
        log "(b) $c connections, ${BENCH_SECONDS}s each: $path ($size bytes)"
        p="$(load fetch --addr "$HOST:$http_port" --path "$path" --connections "$c" \
            --seconds "$BENCH_SECONDS" --warmup "$BENCH_WARMUP" --threads "$BENCH_THREADS" \
            --pid "$server_pid" 2>>"$logs/fetch-tool.log")"
        printf 'panocast %s\n' "$p" | tee -a "$logs/results.jsonl" | head -n 1
        # shellcheck disable=SC2046
        x="$(load fetch --addr "$HOST:$nginx_port" --path /part.m4s --connections "$c" \
            --seconds "$BENCH_SECONDS" --warmup "$BENCH_WARMUP" --threads "$BENCH_THREADS" \
            $(for pid in $(nginx_pids); do printf -- '--pid %s ' "$pid"; done) 2>>"$logs/fetch-tool.log")"
        printf 'nginx    %s\n' "$x" | tee -a "$logs/results.jsonl" | head -n 1
        pj="$(tail -n 1 <<<"$p")"
        xj="$(tail -n 1 <<<"$x")"
        fetch_rows+=("$(printf '%6s %8s %10.0f %10.0f %7.2f %8.2f %8.2f %8.1f %8.1f %5s/%-5s' "$c" "$size" \
            "$(field "$pj" requests_per_s)" "$(field "$xj" requests_per_s)" \
            "$(awk -v a="$(field "$pj" requests_per_s)" -v b="$(field "$xj" requests_per_s)" 'BEGIN { print a / b }')" \
            "$(field "$pj" latency_ms_p99)" "$(field "$xj" latency_ms_p99)" \
            "$(field "$pj" server_cpu_us_per_request)" "$(field "$xj" server_cpu_us_per_request)" \
            "$(field "$pj" errors)" "$(field "$xj" errors)")")
    done
    stop_pid "$nginx_pid"
    nginx_pid=""
    stop_panocast
fi

echo
echo "machine: $(nproc) cores, load average at the end $(cut -d' ' -f1-3 /proc/loadavg); load tool threads $BENCH_THREADS"
if ((${#viewer_rows[@]})); then
    echo
    echo "(a) LL-HLS viewers, ${BENCH_SECONDS}s each; delay = a held viewer's playlist response behind the first viewer's (target p99 <= 50 ms at 2000)"
    printf '%6s %9s %9s %9s %9s %7s %7s %9s %8s %9s %9s\n' viewers "delay p50" "delay p99" \
        "sprd p50" "sprd p99" held errors "req/s" "µs/req" "idle KiB" "KiB/1000"
    printf '%s\n' "${viewer_rows[@]}"
fi
if ((${#fetch_rows[@]})); then
    echo
    echo "(b) one part over and over, ${BENCH_SECONDS}s each, panocast then nginx (static file, sendfile) (target ratio >= 1)"
    printf '%6s %8s %10s %10s %7s %8s %8s %8s %8s %11s\n' conns bytes "panocast/s" "nginx/s" ratio \
        "p99 ms P" "p99 ms N" "µs/req P" "µs/req N" "errors P/N"
    printf '%s\n' "${fetch_rows[@]}"
fi
echo
echo "raw figures: $logs/results.jsonl"
