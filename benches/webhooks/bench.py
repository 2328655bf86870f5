#!/usr/bin/env python3
"""Webhook delivery throughput (issue 12): BENCH_MESSAGES (2,000) outbox messages, made
by creating that many scheduled events over the REST API (each `event.scheduled` is
written in the same transaction as its event), delivered to BENCH_ENDPOINTS (1) fast
local receivers that check every Standard Webhooks signature (HMAC-SHA256 over
"id.timestamp.body", standard library) and answer 204 at once. It prints, as a table
and one JSON line:
  - messages per second delivered, from the first create to the last receipt, and the
    API's own rate of creating them (the ceiling the dispatcher is measured against);
  - delivery latency p50/p99/max, from the create request's answer to the receipt;
  - signature failures and duplicates (both must be 0), server RSS at the end.

Everything listens on 127.0.0.1; the receiver is asyncio sockets, standard library.
"""

import asyncio
import base64
import hashlib
import hmac
import json
import os
import sys
import threading
import time
import urllib.request
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench_server import BenchServer, rss_kib  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("PANOCAST_BIN", os.path.join(REPO, "target/release/panocast"))
MESSAGES = int(os.environ.get("BENCH_MESSAGES", "2000"))
ENDPOINTS = int(os.environ.get("BENCH_ENDPOINTS", "1"))
PASSWORD = "webhook-bench-admin-1"
CONFIG = """
[webhooks]
allow_private_targets = true
"""


def log(msg):
    print(f"[webhooks {time.strftime('%T')}] {msg}", file=sys.stderr, flush=True)


class Receiver:
    """One endpoint: verifies, records arrival times by webhook-id."""

    def __init__(self):
        self.secret = None
        self.arrived = {}
        self.bad = 0
        self.duplicates = 0
        self.loop = asyncio.new_event_loop()
        self.port = None
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait()

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        ready.set()
        self.loop.run_forever()

    def verify(self, headers, body):
        if self.secret is None:
            return False
        key = base64.b64decode(self.secret.removeprefix("whsec_"))
        signed = f"{headers.get('webhook-id')}.{headers.get('webhook-timestamp')}.".encode() + body
        want = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
        return any(sig == f"v1,{want}" for sig in headers.get("webhook-signature", "").split())

    async def _client(self, reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                now = time.monotonic()
                wid = headers.get("webhook-id", "")
                if not self.verify(headers, body):
                    self.bad += 1
                elif wid in self.arrived:
                    self.duplicates += 1
                else:
                    self.arrived[wid] = (now, json.loads(body))
                writer.write(b"HTTP/1.1 204 No Content\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ValueError):
            pass
        finally:
            writer.close()


def call(base, method, path, token=None, body=None):
    req = urllib.request.Request(base + path, method=method,
                                 data=None if body is None else json.dumps(body).encode())
    req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=30) as r:
        text = r.read()
        return json.loads(text) if text else None


def percentile(values, p):
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))] if s else None


def main():
    if not os.access(BIN, os.X_OK):
        sys.exit(f"{BIN} missing: cargo build --release first")
    receivers = [Receiver() for _ in range(ENDPOINTS)]
    with BenchServer(BIN, CONFIG, {"PANOCAST_ADMIN_PASSWORD": PASSWORD}) as server:
        base = server.http
        token = call(base, "POST", "/api/v1/auth/login", body={
            "username": "admin", "password": PASSWORD})["access_token"]
        for r in receivers:
            hook = call(base, "POST", "/api/v1/webhooks", token, {
                "url": f"http://127.0.0.1:{r.port}/hook", "event_types": ["event.scheduled"]})
            r.secret = hook["secret"]
        call(base, "POST", "/api/v1/streams", token, {"slug": "bench"})
        start = (datetime.now(timezone.utc) + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
        created = {}
        log(f"creating {MESSAGES} events, {ENDPOINTS} endpoint(s)")
        t0 = time.monotonic()
        for i in range(MESSAGES):
            e = call(base, "POST", "/api/v1/events", token, {
                "title": f"bench {i}", "stream": "bench", "scheduled_start": start})
            created[e["id"]] = time.monotonic()
        t_created = time.monotonic()
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and any(len(r.arrived) < MESSAGES for r in receivers):
            time.sleep(0.05)
        t_done = max((max((a for a, _ in r.arrived.values()), default=t0) for r in receivers))
        rss = rss_kib(server.pid)
    delivered = sum(len(r.arrived) for r in receivers)
    latencies = []
    for r in receivers:
        for at, payload in r.arrived.values():
            made = created.get(payload.get("data", {}).get("event", {}).get("id"))
            if made is not None:
                latencies.append((at - made) * 1000)
    result = {
        "messages": MESSAGES, "endpoints": ENDPOINTS, "delivered": delivered,
        "create_per_s": round(MESSAGES / (t_created - t0), 1),
        "delivered_per_s": round(delivered / max(t_done - t0, 1e-9), 1),
        "latency_ms_p50": round(percentile(latencies, 50) or 0, 1),
        "latency_ms_p99": round(percentile(latencies, 99) or 0, 1),
        "latency_ms_max": round(max(latencies, default=0), 1),
        "bad_signatures": sum(r.bad for r in receivers),
        "duplicates": sum(r.duplicates for r in receivers),
        "server_rss_kib": rss,
    }
    for k, v in result.items():
        print(f"{k:>18}  {v}")
    print(json.dumps(result))
    if delivered < MESSAGES * ENDPOINTS or result["bad_signatures"]:
        sys.exit("not every message arrived verified")


if __name__ == "__main__":
    main()
