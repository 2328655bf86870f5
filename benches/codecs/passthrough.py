#!/usr/bin/env python3
"""HEVC against H.264 passthrough CPU (issue 16): what one stream costs the server.

The same 1920x960@30 content is encoded once in H.264 (libx264) and once in HEVC
(libx265), both at BENCH_KBPS (6000) with 2 s GOPs and B-frames, plus AAC. For each
codec the release server gets BENCH_STREAMS (4) passthrough streams, each pushed by the
static ffmpeg 7 (scripts/ffmpeg7.sh; Enhanced RTMP for HEVC) with -re -c copy, looped,
and one LL-HLS reader per stream fetching every new part as a player would. After
BENCH_WARMUP_S (5) the server's CPU time (/proc/PID/stat) is sampled over
BENCH_SECONDS (20). The two codecs take turns for BENCH_ROUNDS (3) rounds, so that
other load on the machine falls on both alike; it prints the median CPU per stream of
each codec (with the spread) and the ratio HEVC/H.264 against the 1.1x target, as a
table and one JSON line.

Usage: benches/codecs/run.sh (builds target/release/panocast unless PANOCAST_BIN is
set). Standard library only; everything listens on 127.0.0.1.
"""

import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench_server import BenchServer  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("PANOCAST_BIN", os.path.join(REPO, "target/release/panocast"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
WARMUP_S = float(os.environ.get("BENCH_WARMUP_S", "5"))
STREAMS = int(os.environ.get("BENCH_STREAMS", "4"))
KBPS = int(os.environ.get("BENCH_KBPS", "6000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
OUT = os.environ.get("BENCH_OUT", os.path.join(REPO, "bench-out"))
TARGET = 1.1
TICKS = os.sysconf("SC_CLK_TCK")


def log(msg):
    print(f"[codecs {time.strftime('%T')}] {msg}", file=sys.stderr, flush=True)


def ffmpeg7():
    out = subprocess.run([os.path.join(REPO, "scripts/ffmpeg7.sh")], check=True,
                         capture_output=True, text=True)
    return out.stdout.strip()


def source(ffmpeg, codec):
    path = os.path.join(OUT, "media", f"passthrough-{codec}-1920x960-{KBPS}k-20s.mkv")
    if os.path.exists(path) and os.path.getsize(path) > 0:
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    log(f"encoding the {codec} input once (cached in bench-out/media)")
    rate = ["-b:v", f"{KBPS}k", "-maxrate", f"{KBPS}k", "-bufsize", f"{2 * KBPS}k"]
    video = {
        "h264": ["-c:v", "libx264", "-preset", "veryfast", "-g", "60", "-keyint_min", "60",
                 "-sc_threshold", "0", "-bf", "3"],
        "hevc": ["-c:v", "libx265", "-preset", "ultrafast",
                 "-x265-params", "keyint=60:min-keyint=60:scenecut=0:bframes=3:log-level=error"],
    }[codec]
    subprocess.run(
        [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=1920x960:rate=30,noise=alls=8:allf=t",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
         "-t", "20", "-map", "0:v", "-map", "1:a", "-pix_fmt", "yuv420p",
         *video, *rate, "-c:a", "aac", "-b:a", "128k", path + ".tmp.mkv"],
        check=True,
    )
    os.rename(path + ".tmp.mkv", path)
    return path


def get(url, timeout=10):
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return resp.read()


def reader(base, slug, stop, counts):
    """Fetches each new part of the video rendition, blocking on _HLS_msn/_HLS_part."""
    url = f"{base}/hls/{slug}/video.m3u8"
    seen = set()
    while not stop.is_set():
        try:
            text = get(url).decode()
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
            continue
        parts = re.findall(r'#EXT-X-PART:[^\n]*URI="([^"]+)"', text)
        for uri in parts[-3:]:
            if uri not in seen:
                seen.add(uri)
                try:
                    counts[slug] = counts.get(slug, 0) + len(get(f"{base}/hls/{slug}/{uri}"))
                except (urllib.error.URLError, OSError):
                    pass
        # The preload hint blocks until the next part exists: it paces this loop as
        # it paces a player.
        hint = re.search(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+)"', text)
        try:
            if not hint:
                raise OSError("no preload hint yet")
            seen.add(hint.group(1))
            counts[slug] = counts.get(slug, 0) + len(get(f"{base}/hls/{slug}/{hint.group(1)}"))
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def measure(ffmpeg, codec, src):
    keys = [f"codec-bench-key-{i:04d}-abcdef" for i in range(STREAMS)]
    config = "".join(f'[[streams]]\nslug = "s{i}"\nkey = "{k}"\nprojection = "equirect"\n\n'
                     for i, k in enumerate(keys))
    procs, stop, counts = [], threading.Event(), {}
    with BenchServer(BIN, config, prefix=f"panocast-codecs-{codec}.") as server:
        try:
            for k in keys:
                procs.append(subprocess.Popen(
                    [ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "quiet", "-re",
                     "-stream_loop", "-1", "-i", src, "-c", "copy", "-f", "flv",
                     f"{server.rtmp}/{k}"],
                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL))
            deadline = time.monotonic() + 60
            for i in range(STREAMS):
                while True:
                    try:
                        get(f"{server.http}/hls/s{i}/index.m3u8")
                        break
                    except (urllib.error.URLError, OSError):
                        if time.monotonic() > deadline:
                            sys.exit(f"stream s{i} did not go live")
                        time.sleep(0.2)
            for i in range(STREAMS):
                threading.Thread(target=reader, args=(server.http, f"s{i}", stop, counts),
                                 daemon=True).start()
            time.sleep(WARMUP_S)
            c0, t0 = cpu_seconds(server.pid), time.monotonic()
            time.sleep(SECONDS)
            c1, t1 = cpu_seconds(server.pid), time.monotonic()
            return {
                "codec": codec,
                "cpu_share_per_stream": (c1 - c0) / (t1 - t0) / STREAMS,
                "rss_mib": rss_mib(server.pid),
                "served_mbit_s": sum(counts.values()) * 8 / 1e6 / (t1 - t0 + WARMUP_S),
            }
        finally:
            stop.set()
            for p in procs:
                p.kill()
                p.wait()


def main():
    if not os.path.exists(BIN):
        sys.exit(f"{BIN} not built")
    ffmpeg = ffmpeg7()
    sources = {codec: source(ffmpeg, codec) for codec in ("h264", "hevc")}
    runs = {"h264": [], "hevc": []}
    for r in range(ROUNDS):
        for codec in ("h264", "hevc"):
            log(f"round {r + 1}/{ROUNDS}: {STREAMS} {codec} passthrough streams for {SECONDS:.0f} s")
            runs[codec].append(measure(ffmpeg, codec, sources[codec]))
    median = {c: statistics.median(x["cpu_share_per_stream"] for x in runs[c]) for c in runs}
    ratio = median["hevc"] / median["h264"]
    print(f"\npassthrough, {STREAMS} streams of 1920x960@30 at {KBPS} kb/s + AAC, one LL-HLS reader "
          f"each, {os.cpu_count()} cores, median of {ROUNDS} alternating rounds")
    print(f"{'codec':<8}{'CPU per stream (median, range)':<36}{'server RSS'}")
    for codec in ("h264", "hevc"):
        shares = [x["cpu_share_per_stream"] * 100 for x in runs[codec]]
        rss = max(x["rss_mib"] for x in runs[codec])
        print(f"{codec:<8}{median[codec] * 100:>6.2f} % of a core ({min(shares):.2f}-{max(shares):.2f})"
              f"{'':<6}{rss:>7.1f} MiB")
    verdict = "meets" if ratio <= TARGET else "misses"
    print(f"HEVC / H.264: {ratio:.2f}x ({verdict} the {TARGET}x target)")
    print(json.dumps({"bench": "codec-passthrough", "streams": STREAMS, "kbps": KBPS,
                      "rounds": runs, "median_cpu_share_per_stream": median,
                      "hevc_vs_h264": ratio, "target": TARGET}))


if __name__ == "__main__":
    main()
