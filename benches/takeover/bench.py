#!/usr/bin/env python3
"""Takeover isolation benchmark (issue 10): does one stream's takeover storm slow the others?

8 passthrough streams publish 1920x960@30 H.264+AAC (ffmpeg -c copy, looped). For
BENCH_SECONDS (60) a new publisher takes stream 8 over every BENCH_TAKEOVER_S (3) s.
Meanwhile the API's GET /api/v1/streams is timed every 50 ms. At the end it prints, as
one JSON line and a table:
  - server-added part latency p50/p99 of each of the seven other streams (video and
    audio), read from /metrics (panocast_stream_part_latency_seconds), against the
    target: part target (200 ms) + 30 ms;
  - GET /api/v1/streams latency p50/p99/max over the run, against the 20 ms target;
  - how many takeovers the server saw (stream 8's live-session reconnects).

Usage: benches/takeover/run.sh  (builds target/release/panocast unless PANOCAST_BIN
is set). Standard library only; everything listens on 127.0.0.1.
"""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench_server import BenchServer, push, test_source  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("PANOCAST_BIN", os.path.join(REPO, "target/release/panocast"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "60"))
TAKEOVER_S = float(os.environ.get("BENCH_TAKEOVER_S", "3"))
WARMUP_S = float(os.environ.get("BENCH_WARMUP_S", "8"))
STREAMS = 8
PART_TARGET_MS = 200
OUT = os.environ.get("BENCH_OUT", os.path.join(REPO, "bench-out"))
PASSWORD = "takeover-bench-admin"


def log(msg):
    print(f"[takeover {time.strftime('%T')}] {msg}", file=sys.stderr, flush=True)


def source():
    return test_source(OUT, "takeover-1920x960-20s.flv", "1920x960", "4M", 20, log)


def http(url, body=None, token=None, timeout=10):
    req = urllib.request.Request(url, data=body)
    if body is not None:
        req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.read()


def quantile(values, q):
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def main():
    if not os.path.exists(BIN):
        sys.exit(f"{BIN} not built")
    src = source()
    keys = [f"takeover-key-{i:04d}-abcdef" for i in range(STREAMS)]
    config = "".join(
        f'[[streams]]\nslug = "s{i}"\nkey = "{k}"\n\n' for i, k in enumerate(keys)
    )
    with BenchServer(BIN, config, {"PANOCAST_ADMIN_PASSWORD": PASSWORD},
                     prefix="panocast-takeover.") as server:
        run(src, keys, server.http, server.rtmp)


def run(src, keys, http_base, rtmp_base):
    procs = []
    try:
        token = json.loads(http(f"{http_base}/api/v1/auth/login",
                                json.dumps({"username": "admin", "password": PASSWORD}).encode()))["access_token"]
        for i in range(STREAMS):
            procs.append(push(src, f"{rtmp_base}/{keys[i]}"))
        log(f"8 publishers up; warming up {WARMUP_S:.0f} s")
        time.sleep(WARMUP_S)
        api_ms = []
        stop = threading.Event()

        def poll_api():
            while not stop.is_set():
                t = time.perf_counter()
                http(f"{http_base}/api/v1/streams?limit=100", token=token)
                api_ms.append((time.perf_counter() - t) * 1000)
                time.sleep(0.05)

        poller = threading.Thread(target=poll_api, daemon=True)
        poller.start()
        log(f"taking stream s7 over every {TAKEOVER_S:.0f} s for {SECONDS:.0f} s")
        takeovers = 0
        end = time.monotonic() + SECONDS
        while time.monotonic() < end:
            time.sleep(TAKEOVER_S)
            procs.append(push(src, f"{rtmp_base}/{keys[7]}"))
            takeovers += 1
        stop.set()
        poller.join()
        metrics = http(f"{http_base}/metrics").decode()
        info = json.loads(http(f"{http_base}/api/v1/streams/s7", token=token))
        per_stream = {}
        for m in re.finditer(
            r'panocast_stream_part_latency_seconds\{stream="(s\d)",track="(\w+)",quantile="([0-9.]+)"\} ([0-9.]+)',
            metrics,
        ):
            slug, track, q, v = m.groups()
            per_stream.setdefault(slug, {})[f"{track}_p{int(float(q) * 100)}_ms"] = round(float(v) * 1000, 1)
        others = {k: v for k, v in per_stream.items() if k != "s7"}
        worst_p99 = max((v for s in others.values() for k, v in s.items() if k.endswith("p99_ms")), default=None)
        result = {
            "bench": "takeover",
            "streams": STREAMS,
            "seconds": SECONDS,
            "takeovers_sent": takeovers,
            "s7_reconnects_seen": (info.get("session") or {}).get("reconnects"),
            "others_part_latency": others,
            "others_worst_p99_ms": worst_p99,
            "part_latency_target_ms": PART_TARGET_MS + 30,
            "api_list_requests": len(api_ms),
            "api_list_p50_ms": round(quantile(api_ms, 0.5) or 0, 2),
            "api_list_p99_ms": round(quantile(api_ms, 0.99) or 0, 2),
            "api_list_max_ms": round(max(api_ms or [0]), 2),
            "api_target_ms": 20,
            "note": "latency quantiles are cumulative since start (warm-up included)",
        }
        print(json.dumps(result))
        print(f"\nother seven streams, worst part latency p99: {worst_p99} ms (target {PART_TARGET_MS + 30} ms)")
        print(f"GET /api/v1/streams: p50 {result['api_list_p50_ms']} ms, p99 {result['api_list_p99_ms']} ms, "
              f"max {result['api_list_max_ms']} ms over {len(api_ms)} requests (target p99 < 20 ms)")
        print(f"takeovers sent {takeovers}, stream s7 session reconnects {result['s7_reconnects_seen']}")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    main()
