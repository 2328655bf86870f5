#!/usr/bin/env bash
# Whole-system benchmark of the live path (RTMP in -> HLS out). Prints:
#   (a) server-added latency: p50/p99 of panocast_part_latency_seconds for one
#       1920x960@30 H.264+AAC publisher, read from /metrics;
#   (b) CPU seconds and peak RSS of the server for 1, 4 and 8 simultaneous
#       3840x1920@30 passthrough publishers, panocast next to nginx-rtmp
#       (hls on; hls_fragment 2s) fed the same pushes.
#
#   ./scripts/deps.sh --bench && benches/live_path/run.sh
#
# Environment (defaults in brackets):
#   BENCH_SECONDS        (a) publishing time in seconds [60]
#   BENCH_LOAD_SECONDS   (b) publishing time per run in seconds [30]
#   BENCH_PUBLISHERS     (b) publisher counts [1 4 8]
#   BENCH_SERVERS        servers to measure [panocast nginx]; (a) needs panocast
#   BENCH_PARTS          what to run [latency load]
#   BENCH_OUT            cache for the encoded inputs and logs [<repo>/bench-out]
#   BENCH_HTTP_PORT, BENCH_RTMP_PORT, BENCH_NGINX_PORT  [28080, 21935, 21936]
#   PANOCAST_BIN         run this binary instead of building target/release/panocast
#   NGINX_WORKERS        nginx worker_processes [auto]
#   NGINX_RTMP_MODULE    [/usr/lib/nginx/modules/ngx_rtmp_module.so]
#
# Everything listens on 127.0.0.1 only; every child process is stopped on exit.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"

BENCH_SECONDS="${BENCH_SECONDS:-60}"
BENCH_LOAD_SECONDS="${BENCH_LOAD_SECONDS:-30}"
BENCH_PUBLISHERS="${BENCH_PUBLISHERS:-1 4 8}"
BENCH_SERVERS="${BENCH_SERVERS:-panocast nginx}"
BENCH_PARTS="${BENCH_PARTS:-latency load}"
BENCH_OUT="${BENCH_OUT:-$repo/bench-out}"
HTTP_PORT="${BENCH_HTTP_PORT:-28080}"
RTMP_PORT="${BENCH_RTMP_PORT:-21935}"
NGINX_PORT="${BENCH_NGINX_PORT:-21936}"
NGINX_WORKERS="${NGINX_WORKERS:-auto}"
NGINX_RTMP_MODULE="${NGINX_RTMP_MODULE:-/usr/lib/nginx/modules/ngx_rtmp_module.so}"
HOST=127.0.0.1
MAX_PUBLISHERS=8

measure() { python3 "$here/measure.py" "$@"; }
log() { printf '[bench %s] %s\n' "$(date +%T)" "$*" >&2; }
die() { log "error: $*"; exit 1; }
has() { [[ " $1 " == *" $2 "* ]]; }

# --- child processes and cleanup ---------------------------------------------

tmp="$(mktemp -d "${TMPDIR:-/tmp}/panocast-bench.XXXXXX")"
server_pid=""
pusher_pids=()
sleep_pid=""

# pause SECONDS: a sleep that a signal interrupts at once (a foreground
# `sleep` would hold back the trap until it ends).
pause() {
    sleep "$1" &
    sleep_pid=$!
    wait "$sleep_pid" || true
    sleep_pid=""
}

stop_pid() { # PID: TERM, wait up to 5 s, then KILL
    local pid="$1" i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

stop_pushers() {
    local pid
    for pid in "${pusher_pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${pusher_pids[@]}"; do stop_pid "$pid"; done
    pusher_pids=()
}

stop_server() {
    if [[ -n "$server_pid" ]]; then
        stop_pid "$server_pid"
        server_pid=""
    fi
}

cleanup() {
    trap - EXIT INT TERM
    [[ -n "$sleep_pid" ]] && kill "$sleep_pid" 2>/dev/null
    stop_pushers
    stop_server
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- checks ------------------------------------------------------------------

for tool in ffmpeg ffprobe python3 curl; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found: run ./scripts/deps.sh --bench"
done
if has "$BENCH_SERVERS" nginx; then
    command -v nginx >/dev/null 2>&1 || die "nginx not found: run ./scripts/deps.sh --bench"
    [[ -f "$NGINX_RTMP_MODULE" ]] || die "$NGINX_RTMP_MODULE not found: run ./scripts/deps.sh --bench"
fi
for port in "$HTTP_PORT" "$RTMP_PORT" "$NGINX_PORT"; do
    measure port-free "$HOST" "$port" || die "$HOST:$port is in use (set BENCH_*_PORT)"
done

mkdir -p "$BENCH_OUT/media" "$BENCH_OUT/logs"
logs="$BENCH_OUT/logs"
rm -f "$logs"/*.log

panocast_bin="${PANOCAST_BIN:-$repo/target/release/panocast}"
if has "$BENCH_SERVERS" panocast && [[ -z "${PANOCAST_BIN:-}" ]]; then
    log "cargo build --release"
    (cd "$repo" && cargo build --release --quiet) || die "cargo build --release failed"
    [[ -x "$panocast_bin" ]] || die "$panocast_bin not built"
fi

# --- inputs: encoded once, cached in $BENCH_OUT/media ------------------------

# encode OUT WIDTH HEIGHT VIDEO_BITRATE SECONDS
# H.264 High (x264, B-frames on), 30 fps, 2 s closed GOP, AAC-LC 128k stereo.
# Temporal noise over testsrc2 keeps the encoder at the target bitrate, as
# camera footage would; a clean test pattern would come out far smaller.
encode() {
    local out="$1" w="$2" h="$3" rate="$4" secs="$5"
    [[ -s "$out" ]] && return 0
    log "encoding $(basename "$out") (once; cached in $BENCH_OUT/media)"
    ffmpeg -nostdin -hide_banner -loglevel error -y \
        -f lavfi -i "testsrc2=size=${w}x${h}:rate=30,noise=alls=16:allf=t" \
        -f lavfi -i "sine=frequency=440:sample_rate=48000" \
        -t "$secs" -map 0:v -map 1:a \
        -c:v libx264 -preset veryfast -profile:v high -pix_fmt yuv420p \
        -b:v "$rate" -maxrate "$rate" -bufsize "$(( ${rate%M} * 2 ))M" \
        -g 60 -keyint_min 60 -sc_threshold 0 -flags +cgop \
        -c:a aac -b:a 128k -ac 2 \
        -movflags +faststart "$out.tmp.mp4"
    mv "$out.tmp.mp4" "$out"
}

describe() { # FILE: one line of what is in it
    local v a
    v="$(ffprobe -v error -select_streams v:0 -show_entries stream=codec_name,profile,width,height,r_frame_rate \
        -of csv=p=0 "$1")"
    a="$(ffprobe -v error -select_streams a:0 -show_entries stream=codec_name,sample_rate,channels -of csv=p=0 "$1")"
    local dur size
    dur="$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$1")"
    size="$(stat -c %s "$1")"
    printf '%s: video %s, audio %s, %.1f s, %.1f Mb/s\n' "$(basename "$1")" "$v" "$a" "$dur" \
        "$(awk -v s="$size" -v d="$dur" 'BEGIN { print s * 8 / d / 1e6 }')"
}

latency_input="$BENCH_OUT/media/h264-aac-1920x960-30fps-6M-gop2s-20s.mp4"
load_input="$BENCH_OUT/media/h264-aac-3840x1920-30fps-12M-gop2s-24s.mp4"
if has "$BENCH_PARTS" latency; then
    encode "$latency_input" 1920 960 6M 20
    describe "$latency_input"
fi
if has "$BENCH_PARTS" load; then
    encode "$load_input" 3840 1920 12M 24
    describe "$load_input"
fi

# --- servers -----------------------------------------------------------------

stream_key() { printf 'bench-key-%d-%s' "$1" "$run_id"; }
run_id="$(od -An -N6 -tx1 /dev/urandom | tr -d ' \n')"

# panocast_config FILE STREAMS
panocast_config() {
    local file="$1" streams="$2" i
    {
        printf 'http = "%s:%s"\nrtmp = "%s:%s"\ndata_dir = "%s"\n\n' \
            "$HOST" "$HTTP_PORT" "$HOST" "$RTMP_PORT" "$tmp/panocast-data"
        printf '[hls]\npart_target_ms = 200\nsegment_target_ms = 2000\nwindow_segments = 10\n'
        for ((i = 1; i <= streams; i++)); do
            printf '\n[[streams]]\nslug = "bench%d"\nkey = "%s"\nprojection = "equirect"\n' \
                "$i" "$(stream_key "$i")"
        done
    } >"$file"
}

# Server PIDs to measure, set by start_*.
measured_pids=()

start_panocast() { # STREAMS LOGNAME
    local cfg="$tmp/panocast.toml"
    rm -rf "$tmp/panocast-data"
    panocast_config "$cfg" "$1"
    # Run the binary itself (not `cargo run`) so that $! is the server.
    # The PANOCAST_* env overrides would win over the file: clear them.
    env -u PANOCAST_HTTP -u PANOCAST_RTMP -u PANOCAST_DATA_DIR \
        "$panocast_bin" serve --config "$cfg" >"$logs/$2.log" 2>&1 &
    server_pid=$!
    measure wait-http "http://$HOST:$HTTP_PORT/healthz" 30 ||
        { tail -n 20 "$logs/$2.log" >&2; die "panocast did not start"; }
    # Both listeners are bound before /healthz answers; a TCP probe of the
    # RTMP port would only put a failed handshake in the server's log.
    measured_pids=("$server_pid")
}

start_nginx() { # LOGNAME
    local prefix="$tmp/nginx" user=""
    rm -rf "$prefix"
    mkdir -p "$prefix/conf" "$prefix/logs" "$prefix/hls"
    # As root, workers would switch to "nobody", which cannot write to a
    # mktemp directory: keep them as the invoking user.
    ((EUID == 0)) && user="user root;"
    sed -e "s|@RTMP_MODULE@|$NGINX_RTMP_MODULE|" -e "s|@USER@|$user|" \
        -e "s|@WORKERS@|$NGINX_WORKERS|" -e "s|@PREFIX@|$prefix|g" \
        -e "s|@RTMP_PORT@|$NGINX_PORT|" \
        "$here/nginx.conf.in" >"$prefix/conf/nginx.conf"
    nginx -p "$prefix" -e "$prefix/logs/error.log" -c "$prefix/conf/nginx.conf" >"$logs/$1.log" 2>&1 &
    server_pid=$!
    measure wait-tcp "$HOST" "$NGINX_PORT" 10 ||
        { cat "$logs/$1.log" "$prefix/logs/error.log" >&2; die "nginx did not start"; }
    # Let the master fork its workers, then measure master + workers (and
    # the cache manager nginx starts beside them).
    local i tree
    for ((i = 0; i < 50; i++)); do
        read -r -a tree <<<"$(measure tree "$server_pid")"
        ((${#tree[@]} > 1)) && break
        sleep 0.1
    done
    ((${#tree[@]} > 1)) || die "nginx has no worker processes"
    measured_pids=("${tree[@]}")
}

start_server() { # SERVER STREAMS LOGNAME
    case "$1" in
        panocast) start_panocast "$2" "$3" ;;
        nginx) start_nginx "$3" ;;
        *) die "unknown server $1" ;;
    esac
}

rtmp_port_of() { if [[ "$1" == nginx ]]; then echo "$NGINX_PORT"; else echo "$RTMP_PORT"; fi; }

# start_pushers SERVER COUNT FILE
start_pushers() {
    local server="$1" n="$2" file="$3" port i
    port="$(rtmp_port_of "$server")"
    for ((i = 1; i <= n; i++)); do
        ffmpeg -nostdin -hide_banner -loglevel warning -re -stream_loop -1 -i "$file" \
            -c copy -f flv -flvflags no_duration_filesize \
            "rtmp://$HOST:$port/live/$(stream_key "$i")" >"$logs/push-$server-$n-$i.log" 2>&1 &
        pusher_pids+=($!)
    done
}

alive_pushers() {
    local pid alive=0
    for pid in "${pusher_pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=$((alive + 1)); done
    echo "$alive"
}

# outputs_ok SERVER COUNT: how many streams have an HLS playlist
outputs_ok() {
    local server="$1" n="$2" i ok=0
    for ((i = 1; i <= n; i++)); do
        if [[ "$server" == nginx ]]; then
            # nginx-rtmp names the files after the stream key.
            [[ -s "$tmp/nginx/hls/$(stream_key "$i").m3u8" ]] && ok=$((ok + 1))
        else
            [[ "$(measure http-status "http://$HOST:$HTTP_PORT/hls/bench$i/index.m3u8")" == 200 ]] &&
                ok=$((ok + 1))
        fi
    done
    echo "$ok"
}

# probe_output SERVER: what ffprobe reads from stream 1's HLS output, as a
# check that the server did the work being measured.
probe_output() {
    local url out
    if [[ "$1" == nginx ]]; then
        url="$tmp/nginx/hls/$(stream_key 1).m3u8"
    else
        url="http://$HOST:$HTTP_PORT/hls/bench1/index.m3u8"
    fi
    out="$(timeout 20 ffprobe -v error -show_entries stream=codec_name,width,height -of csv=p=0 "$url" 2>/dev/null |
        sed 's/,*$//; /^$/d' | sort -u | paste -sd ' ' -)" || true
    echo "${out:-probe failed}"
}

now() { date +%s.%N; }

# --- (a) latency ---------------------------------------------------------------

if has "$BENCH_PARTS" latency && has "$BENCH_SERVERS" panocast; then
    log "(a) latency: 1 publisher, 1920x960@30, ${BENCH_SECONDS}s"
    start_server panocast 1 latency-panocast
    start_pushers panocast 1 "$latency_input"
    pause "$BENCH_SECONDS"
    [[ "$(alive_pushers)" == 1 ]] || { tail -n 20 "$logs/push-panocast-1-1.log" >&2; die "publisher exited early"; }
    echo
    echo "(a) server-added latency, RTMP frame parsed -> LL-HLS part published"
    echo "    1 publisher, $(basename "$latency_input"), ${BENCH_SECONDS}s, part target 200 ms"
    measure latency "http://$HOST:$HTTP_PORT/metrics"
    echo
    stop_pushers
    stop_server
fi

# --- (b) load ------------------------------------------------------------------

if has "$BENCH_PARTS" load; then
    results="$BENCH_OUT/load.tsv"
    printf 'publishers\tserver\tcpu_s\tmedia_s\trss_kib\tnote\n' >"$results"
    for n in $BENCH_PUBLISHERS; do
        ((n >= 1 && n <= MAX_PUBLISHERS)) || die "BENCH_PUBLISHERS: $n not in 1..$MAX_PUBLISHERS"
        for server in $BENCH_SERVERS; do
            log "(b) load: $server, $n x 3840x1920@30 passthrough, ${BENCH_LOAD_SECONDS}s"
            start_server "$server" "$MAX_PUBLISHERS" "load-$server-$n"
            sleep 1
            cpu0="$(measure cpu "${measured_pids[@]}")"
            frames0=""
            if [[ "$server" == panocast ]]; then
                frames0="$(measure metric "http://$HOST:$HTTP_PORT/metrics" \
                    panocast_part_latency_seconds_count track=video || true)"
            fi
            t0="$(now)"
            start_pushers "$server" "$n" "$load_input"
            pause "$BENCH_LOAD_SECONDS"
            # The measured window is [t0, t1]: publishers start right after t0
            # and are still sending at t1; the checks below come after it.
            t1="$(now)"
            cpu1="$(measure cpu "${measured_pids[@]}")"
            alive="$(alive_pushers)"
            frames1=""
            if [[ "$server" == panocast ]]; then
                frames1="$(measure metric "http://$HOST:$HTTP_PORT/metrics" \
                    panocast_part_latency_seconds_count track=video || true)"
            fi
            ok="$(outputs_ok "$server" "$n")"
            note="publishers alive $alive/$n, HLS out $ok/$n, probe: $(probe_output "$server")"
            if [[ "$server" == panocast ]]; then
                if [[ "$frames0" =~ ^[0-9.]+$ && "$frames1" =~ ^[0-9.]+$ ]]; then
                    note+=", video frames $(awk -v a="$frames0" -v b="$frames1" 'BEGIN { print b - a }')"
                fi
            else
                note+=", segments $(find "$tmp/nginx/hls" -name '*.ts' | wc -l)"
            fi
            if [[ "$server" == nginx ]]; then
                read -r -a workers <<<"$(measure workers "$server_pid")"
                rss="$(measure hwm "${workers[@]}")"
            else
                rss="$(measure hwm "${measured_pids[@]}")"
            fi
            stop_pushers
            stop_server
            media_s="$(awk -v n="$n" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", n * (b - a) }')"
            cpu_s="$(awk -v a="$cpu0" -v b="$cpu1" 'BEGIN { printf "%.3f", b - a }')"
            printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$n" "$server" "$cpu_s" "$media_s" "$rss" "$note" >>"$results"
            log "$server n=$n: cpu ${cpu_s}s over ${media_s} media-s, peak RSS ${rss} KiB; $note"
            if [[ "$alive" != "$n" || "$ok" != "$n" ]]; then
                log "warning: not every publisher made it through; see $logs/"
            fi
        done
    done
    echo
    echo "(b) server CPU and memory, passthrough publishing of 3840x1920@30 H.264 ~12 Mb/s + AAC 128k"
    echo "    ${BENCH_LOAD_SECONDS}s per run, fresh server per run; media-s = publishers x wall seconds published;"
    echo "    nginx: CPU of master + workers (worker_processes $NGINX_WORKERS), RSS = sum of workers' peaks"
    measure table "$results"
    echo
    echo "raw figures: $results; logs: $logs/"
fi
