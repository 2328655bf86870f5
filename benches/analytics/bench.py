#!/usr/bin/env python3
"""Audience analytics cost benchmark (issue 13): BENCH_VIEWERS (2,000) simulated LL-HLS
viewers play one live stream (an ffmpeg publisher looping a test clip, passthrough),
each a loop of a blocking playlist reload (`_HLS_msn`/`_HLS_part` of the preload hint)
and then the new part, over keep-alive HTTP/1.1. The same load runs twice: with
`[analytics] enabled = false`, then `true`. Prints, as a table and one JSON line:
  - server CPU (utime + stime from /proc) per 1,000 requests served over
    BENCH_MEASURE_S (20 s) of steady load, off and on, and the ratio on/off
    (target <= 1.05);
  - server RSS (VmRSS) under the load, off and on; the difference per 1,000 active
    viewer sessions is the tracker's memory;
  - the viewers counted by GET /api/v1/streams/{stream}/viewers (on) against
    BENCH_VIEWERS.
The viewers are BENCH_PROCS (4) processes of asyncio sockets, standard library only;
everything listens on 127.0.0.1.
"""

import asyncio
import json
import multiprocessing
import os
import re
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench_server import BenchServer  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("PANOCAST_BIN", os.path.join(REPO, "target/release/panocast"))
VIEWERS = int(os.environ.get("BENCH_VIEWERS", "2000"))
PROCS = int(os.environ.get("BENCH_PROCS", "4"))
MEASURE_S = float(os.environ.get("BENCH_MEASURE_S", "20"))
OUT = os.environ.get("BENCH_OUT", os.path.join(REPO, "bench-out"))
KEY = "analytics-bench-key-0001-abcdef"
ADMIN_PASSWORD = "analytics-bench-admin-1"
TARGET_RATIO = 1.05
HINT = re.compile(rb'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+)"')
PART = re.compile(rb"part-(\d+)-(\d+)\.m4s")


def log(msg):
    print(f"[analytics {time.strftime('%T')}] {msg}", file=sys.stderr, flush=True)


def source():
    path = os.path.join(OUT, "media", "analytics-640x320-10s.flv")
    if os.path.exists(path) and os.path.getsize(path) > 0:
        return path
    os.makedirs(os.path.dirname(path), exist_ok=True)
    subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "testsrc2=size=640x320:rate=30",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
         "-t", "10", "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "veryfast",
         "-g", "30", "-c:a", "aac", "-f", "flv", path + ".tmp"],
        check=True,
    )
    os.rename(path + ".tmp", path)
    return path


def proc_cpu_s(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


async def request(reader, writer, host, path):
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: bench\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    location = None
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.lower() == b"content-length":
            length = int(v.strip())
        elif k.lower() == b"location":
            location = v.strip().decode()
    body = await reader.readexactly(length) if length else b""
    return status, body, location


async def one_viewer(host, port, counter, stop):
    """Plays until `stop`; adds each request to `counter[0]`."""
    reader, writer = await asyncio.open_connection(host, port)
    hostport = f"{host}:{port}"
    base = "/hls/bench/"
    status, body, location = await request(reader, writer, hostport, base + "index.m3u8")
    if status == 302 and location:
        base = base + location.rsplit("/", 1)[0] + "/"
        status, body, _ = await request(reader, writer, hostport, base + "index.m3u8")
    variant = next(l for l in body.decode().splitlines() if l and not l.startswith("#"))
    playlist = base + variant
    status, body, _ = await request(reader, writer, hostport, playlist)
    counter[0] += 2
    try:
        while not stop.is_set():
            m = HINT.search(body)
            if not m:
                await asyncio.sleep(0.1)
                status, body, _ = await request(reader, writer, hostport, playlist)
                continue
            hint = m.group(1)
            msn, part = PART.search(hint).groups()
            status, body, _ = await request(
                reader, writer, hostport,
                f"{playlist}?_HLS_msn={msn.decode()}&_HLS_part={part.decode()}")
            await request(reader, writer, hostport, base + hint.decode())
            counter[0] += 2
    finally:
        writer.close()


def viewer_proc(host, port, n, conn, go):
    async def main():
        stop = asyncio.Event()
        counter = [0]
        tasks = []
        for i in range(n):
            tasks.append(asyncio.create_task(one_viewer(host, port, counter, stop)))
            if i % 50 == 49:
                await asyncio.sleep(0.05)
        conn.send("started")
        loop = asyncio.get_running_loop()
        while True:
            cmd = await loop.run_in_executor(None, conn.recv)
            if cmd == "count":
                conn.send(counter[0])
            else:
                break
        stop.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        conn.send("stopped")
    asyncio.run(main())


def api(server, path, token):
    req = urllib.request.Request(server.http + path, headers={"Authorization": "Bearer " + token})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def login(server):
    body = json.dumps({"username": "admin", "password": ADMIN_PASSWORD}).encode()
    req = urllib.request.Request(server.http + "/api/v1/auth/login", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)["access_token"]


def run(enabled, src):
    config = (f'[limits]\nhttp_connections_per_address = {VIEWERS + 100}\n'
              f'http_connections = {VIEWERS + 200}\nmax_held_requests = {VIEWERS + 100}\n\n'
              f'[analytics]\nenabled = {"true" if enabled else "false"}\n\n'
              f'[[streams]]\nslug = "bench"\nkey = "{KEY}"\n')
    with BenchServer(BIN, config, {"PANOCAST_ADMIN_PASSWORD": ADMIN_PASSWORD},
                     prefix="panocast-analytics.") as server:
        publisher = subprocess.Popen(
            ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-re",
             "-stream_loop", "-1", "-i", src, "-c", "copy", "-f", "flv", f"{server.rtmp}/{KEY}"])
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(server.http + "/hls/bench/index.m3u8", timeout=5).read()
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            host, port = server.http[len("http://"):].rsplit(":", 1)
            pipes, procs = [], []
            for i in range(PROCS):
                parent, child = multiprocessing.Pipe()
                n = VIEWERS // PROCS + (1 if i < VIEWERS % PROCS else 0)
                p = multiprocessing.Process(target=viewer_proc, args=(host, int(port), n, child, None))
                p.start()
                pipes.append(parent)
                procs.append(p)
            for c in pipes:
                c.recv()
            log(f"analytics {'on' if enabled else 'off'}: {VIEWERS} viewers started; warming up")
            time.sleep(10)
            count = lambda: sum((c.send("count"), c.recv())[1] for c in pipes)
            r0, c0 = count(), proc_cpu_s(server.pid)
            time.sleep(MEASURE_S)
            r1, c1 = count(), proc_cpu_s(server.pid)
            rss = rss_kib(server.pid)
            counted = None
            if enabled:
                counted = api(server, "/api/v1/streams/bench/viewers", login(server))["concurrent"]
            for c in pipes:
                c.send("stop")
            for c in pipes:
                c.recv()
            for p in procs:
                p.join(10)
            requests = r1 - r0
            return {
                "requests": requests,
                "req_per_s": requests / MEASURE_S,
                "cpu_s": c1 - c0,
                "cpu_ms_per_1000_req": 1e6 * (c1 - c0) / max(1, requests),
                "rss_kib": rss,
                "viewers_counted": counted,
            }
        finally:
            publisher.terminate()
            publisher.wait()


def main():
    src = source()
    off = run(False, src)
    on = run(True, src)
    ratio = on["cpu_ms_per_1000_req"] / off["cpu_ms_per_1000_req"]
    rss_per_1000 = (on["rss_kib"] - off["rss_kib"]) * 1000 / VIEWERS
    print(f"{'':24}{'off':>12}{'on':>12}")
    for key in ("req_per_s", "cpu_s", "cpu_ms_per_1000_req", "rss_kib"):
        print(f"{key:24}{off[key]:>12.1f}{on[key]:>12.1f}")
    print(f"CPU ratio on/off (per request): {ratio:.3f} (target <= {TARGET_RATIO})")
    print(f"RSS per 1,000 active sessions: {rss_per_1000:.0f} KiB")
    print(f"viewers counted: {on['viewers_counted']} of {VIEWERS}")
    print(json.dumps({"viewers": VIEWERS, "off": off, "on": on, "cpu_ratio": ratio,
                      "rss_kib_per_1000_sessions": rss_per_1000}))


if __name__ == "__main__":
    main()
