#!/usr/bin/env python3
"""Live-state SSE fan-out benchmark (issue 12): BENCH_CLIENTS (1,000) clients follow one
stream's GET /api/v1/streams/{stream}/live-state/stream while an ffmpeg publisher goes
live and offline BENCH_CYCLES (10) times (the stream has no reconnect window, so each
cycle is connected, live_session.started, active, disconnected, live_session.ended,
idle). It prints, as a table and one JSON line:
  - how many clients got every change: each client's list of lifecycle event ids
    (the bus `seq`) against the union over all clients, and the count per client;
  - delivery latency p50/p99/max from the server's event time (`at` in each event,
    milliseconds) to the moment a client parsed it, against the 100 ms p99 target
    (clients and server share the host clock);
  - server RSS (VmRSS) idle, with every client connected, and its peak (VmHWM).

The clients are BENCH_PROCS (4) processes of asyncio sockets speaking HTTP/1.1 with
chunked bodies, standard library only; everything listens on 127.0.0.1.
"""

import asyncio
import json
import multiprocessing
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("PANOCAST_BIN", os.path.join(REPO, "target/release/panocast"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "1000"))
CYCLES = int(os.environ.get("BENCH_CYCLES", "10"))
PROCS = int(os.environ.get("BENCH_PROCS", "4"))
LIVE_S = float(os.environ.get("BENCH_LIVE_S", "3"))
OUT = os.environ.get("BENCH_OUT", os.path.join(REPO, "bench-out"))
KEY = "sse-bench-key-0001-abcdef"
TARGET_P99_MS = 100
LIFECYCLE = ("stream.connected", "stream.active", "stream.disconnected", "stream.idle",
             "live_session.started", "live_session.ended")


def log(msg):
    print(f"[sse {time.strftime('%T')}] {msg}", file=sys.stderr, flush=True)


def source():
    path = os.path.join(OUT, "media", "sse-640x320-10s.flv")
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


def rss_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def at_seconds(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


async def one_client(host, port, path, ready, out, stop):
    """Reads one feed until `stop`; appends (id, type, latency ms) to `out`."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                 "Accept: text/event-stream\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    if b" 200 " not in head.split(b"\r\n", 1)[0]:
        raise RuntimeError(head.decode(errors="replace"))
    buf = b""
    first_state = False
    try:
        while not stop.is_set():
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.strip().split(b";")[0], 16)
            if size == 0:
                break
            buf += await reader.readexactly(size + 2)
            buf = buf[:-2] if buf.endswith(b"\r\n") else buf
            while b"\n\n" in buf:
                block, buf = buf.split(b"\n\n", 1)
                now = time.time()
                fields = {}
                for line in block.decode().split("\n"):
                    if line.startswith(":"):
                        continue
                    k, _, v = line.partition(":")
                    fields[k] = v[1:] if v.startswith(" ") else v
                event = fields.get("event")
                if event == "state" and not first_state:
                    first_state = True
                    ready.set()
                elif event in LIFECYCLE:
                    data = json.loads(fields["data"])
                    out.append((int(fields["id"]), event, (now - at_seconds(data["at"])) * 1000))
                elif event == "lagged":
                    out.append((-1, "lagged", 0.0))
    finally:
        writer.close()


def client_proc(host, port, path, n, conn, go):
    """One process of `n` clients: reports ready, runs until told, sends results."""
    async def main():
        stop = asyncio.Event()
        readies = [asyncio.Event() for _ in range(n)]
        outs = [[] for _ in range(n)]
        tasks = []
        for i in range(n):
            tasks.append(asyncio.create_task(one_client(host, port, path, readies[i], outs[i], stop)))
            if i % 50 == 49:
                await asyncio.sleep(0.05)
        await asyncio.gather(*(r.wait() for r in readies))
        conn.send("ready")
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, go.wait)
        stop.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        conn.send(outs)
    asyncio.run(main())


def quantile(values, q):
    values = sorted(values)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(q * len(values)))]


def wait_state(base, state, limit=40):
    import urllib.request
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{base}/api/v1/streams/bench", timeout=5) as r:
            if json.load(r)["state"] == state:
                return
        time.sleep(0.1)
    raise RuntimeError(f"stream not {state} within {limit} s")


def main():
    src = source()
    tmp = tempfile.mkdtemp(prefix="panocast-sse.")
    with open(os.path.join(tmp, "panocast.toml"), "w") as f:
        f.write(f'[limits]\nhttp_connections_per_address = {CLIENTS + 100}\n'
                f'http_connections = {CLIENTS + 200}\n\n'
                f'[[streams]]\nslug = "bench"\nkey = "{KEY}"\nreconnect_window_s = 0\n')
    env = dict(os.environ, RUST_LOG="warn", NO_COLOR="1")
    server = subprocess.Popen(
        [BIN, "serve", "--config", os.path.join(tmp, "panocast.toml"),
         "--http", "127.0.0.1:0", "--rtmp", "127.0.0.1:0", "--data-dir", os.path.join(tmp, "data")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env, text=True,
    )
    procs = []
    try:
        http_base = rtmp_base = None
        while http_base is None or rtmp_base is None:
            line = server.stdout.readline()
            if not line:
                sys.exit("server exited")
            m = re.search(r"http://([0-9.]+:\d+)/api/v1", line)
            if m:
                http_base = "http://" + m.group(1)
            m = re.search(r"rtmp://([0-9.]+:\d+)/live", line)
            if m:
                rtmp_base = "rtmp://" + m.group(1) + "/live"
        threading.Thread(target=lambda: server.stdout.read(), daemon=True).start()
        host, port = http_base[len("http://"):].split(":")
        rss_idle = rss_kib(server.pid)
        go = multiprocessing.Event()
        per = [CLIENTS // PROCS + (1 if i < CLIENTS % PROCS else 0) for i in range(PROCS)]
        pipes = []
        for n in per:
            parent, child = multiprocessing.Pipe()
            p = multiprocessing.Process(target=client_proc, args=(
                host, int(port), "/api/v1/streams/bench/live-state/stream", n, child, go))
            p.start()
            procs.append(p)
            pipes.append(parent)
        for parent in pipes:
            if parent.recv() != "ready":
                sys.exit("a client process failed")
        rss_connected = rss_kib(server.pid)
        log(f"{CLIENTS} clients connected; server RSS {rss_connected / 1024:.1f} MiB; {CYCLES} cycles")
        for cycle in range(CYCLES):
            pub = subprocess.Popen(
                ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "quiet", "-re",
                 "-stream_loop", "-1", "-i", src, "-c", "copy", "-f", "flv", f"{rtmp_base}/{KEY}"],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wait_state(http_base, "active")
            time.sleep(LIVE_S)
            pub.kill()
            pub.wait()
            wait_state(http_base, "idle")
            log(f"cycle {cycle + 1}/{CYCLES} done")
        time.sleep(1.0)  # the last idle event reaches every client
        rss_peak = rss_kib(server.pid, "VmHWM")
        go.set()
        results = []
        for parent in pipes:
            results.extend(parent.recv())
        for p in procs:
            p.join(timeout=10)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
    every = set()
    for events in results:
        every.update(i for i, kind, _ in events if kind != "lagged")
    complete = sum(1 for events in results if sorted(i for i, k, _ in events if k != "lagged") == sorted(every))
    lagged = sum(1 for events in results if any(k == "lagged" for _, k, _ in events))
    latencies = [ms for events in results for _, k, ms in events if k != "lagged"]
    counts = sorted(len(events) for events in results)
    report = {
        "clients": len(results), "cycles": CYCLES, "changes": len(every),
        "changes_expected": len(LIFECYCLE) * CYCLES,
        "clients_with_every_change": complete, "clients_told_lagged": lagged,
        "events_per_client_min": counts[0] if counts else 0,
        "events_per_client_max": counts[-1] if counts else 0,
        "latency_ms_p50": round(quantile(latencies, 0.5), 1),
        "latency_ms_p99": round(quantile(latencies, 0.99), 1),
        "latency_ms_max": round(max(latencies), 1) if latencies else None,
        "latency_target_p99_ms": TARGET_P99_MS,
        "rss_mib_idle": round(rss_idle / 1024, 1),
        "rss_mib_connected": round(rss_connected / 1024, 1),
        "rss_mib_peak": round(rss_peak / 1024, 1),
        "binary": BIN,
    }
    print(f"clients with every change : {complete}/{len(results)} ({len(every)} of {len(LIFECYCLE) * CYCLES} changes, "
          f"{counts[0] if counts else 0}..{counts[-1] if counts else 0} events per client, {lagged} lagged)")
    print(f"delivery latency ms       : p50 {report['latency_ms_p50']}  p99 {report['latency_ms_p99']}  "
          f"max {report['latency_ms_max']}  (target p99 < {TARGET_P99_MS})")
    print(f"server RSS MiB            : idle {report['rss_mib_idle']}  connected "
          f"{report['rss_mib_connected']}  peak {report['rss_mib_peak']}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
