#!/usr/bin/env python3
"""Search latency over 10,000 indexed items (issue 13 item 5).

Starts the server once so that its migrations create the tables and the search index,
stops it, writes BENCH_ITEMS (10,000) items straight into its SQLite file in one
transaction (7,000 streams, 3,000 events, titles and descriptions from a small word
list plus a unique word each; migration 0007's triggers index them as the API's writes
would), starts it again on the same data directory, and times BENCH_QUERIES (600)
`GET /api/v1/search` requests over loopback, one at a time: a common word, a prefix, a
word one letter off, and two words. Prints p50/p99 per kind and overall, as a table and
one JSON line.

Usage: benches/search/run.sh (uses target/debug/panocast unless PANOCAST_BIN is set).
Standard library only; everything listens on 127.0.0.1.
"""

import json
import os
import random
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("PANOCAST_BIN", os.path.join(REPO, "target/debug/panocast"))
ITEMS = int(os.environ.get("BENCH_ITEMS", "10000"))
QUERIES = int(os.environ.get("BENCH_QUERIES", "600"))

WORDS = (
    "lobby hall stage arena keynote concert match training class museum tour garden "
    "beach harbour city night morning festival rehearsal opening closing final panel "
    "workshop studio campus library market stadium forest river mountain skyline"
).split()


def start(data_dir):
    proc = subprocess.Popen(
        [BIN, "serve", "--http", "127.0.0.1:0", "--rtmp", "127.0.0.1:0", "--data-dir", data_dir],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "RUST_LOG": "warn", "NO_COLOR": "1"},
        text=True,
    )
    for line in proc.stdout:
        m = re.search(r"(http://127\.0\.0\.1:\d+)/hls/", line)
        if m:
            return proc, m.group(1)
    raise SystemExit("the server exited before printing its URLs")


def stop(proc):
    proc.terminate()
    proc.wait(timeout=30)


def seed(db_path, rng):
    db = sqlite3.connect(db_path)
    streams = int(ITEMS * 0.7)
    with db:
        for i in range(streams):
            title = f"{rng.choice(WORDS).title()} {rng.choice(WORDS)} cam{i}"
            desc = " ".join(rng.choice(WORDS) for _ in range(12))
            tags = json.dumps([rng.choice(WORDS), rng.choice(WORDS)])
            db.execute(
                "INSERT INTO streams (id, slug, title, description, tags, projection, yaw, pitch, "
                "roll, ladder, visibility, key_hash, created_at, updated_at) VALUES "
                "(?, ?, ?, ?, ?, 'equirect', 0, 0, 0, 'default', ?, ?, 0, 0)",
                (f"st_b{i}", f"bench-{i}", title, desc, tags,
                 "private" if i % 5 == 0 else "public", f"key{i}"),
            )
        for i in range(ITEMS - streams):
            title = f"{rng.choice(WORDS).title()} {rng.choice(WORDS)} session{i}"
            desc = " ".join(rng.choice(WORDS) for _ in range(12))
            db.execute(
                "INSERT INTO scheduled_events (id, title, description, tags, stream_id, "
                "scheduled_start, start_ms, scheduled_end, lead_s, state, session_id, "
                "created_at, updated_at) VALUES (?, ?, ?, '[]', ?, '2030-01-01T10:00:00Z', "
                "1893492000000, NULL, 900, 'scheduled', NULL, 0, 0)",
                (f"ev_b{i}", title, desc, f"st_b{i % streams}"),
            )
    indexed = db.execute("SELECT count(*) FROM search_items").fetchone()[0]
    db.close()
    return indexed


def typo(word, rng):
    i = rng.randrange(len(word))
    return word[:i] + rng.choice("abcdefghijklmnopqrstuvwxyz".replace(word[i], "")) + word[i + 1:]


def pct(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def main():
    rng = random.Random(1305)
    with tempfile.TemporaryDirectory() as work:
        data = os.path.join(work, "data")
        proc, _ = start(data)
        stop(proc)
        indexed = seed(os.path.join(data, "panocast.db"), rng)
        proc, base = start(data)
        try:
            kinds = {
                "word": lambda: rng.choice(WORDS),
                "prefix": lambda: rng.choice(WORDS)[:3],
                "typo": lambda: typo(rng.choice(WORDS), rng),
                "two words": lambda: f"{rng.choice(WORDS)} {rng.choice(WORDS)}",
            }
            times = {k: [] for k in kinds}
            names = list(kinds)
            for n in range(QUERIES):
                kind = names[n % len(names)]
                q = urllib.parse.urlencode({"q": kinds[kind](), "limit": "20"})
                t0 = time.perf_counter()
                with urllib.request.urlopen(f"{base}/api/v1/search?{q}") as r:
                    body = r.read()
                    assert r.status == 200, body
                times[kind].append((time.perf_counter() - t0) * 1000)
        finally:
            stop(proc)
    every = [t for ts in times.values() for t in ts]
    print(f"search latency, {indexed} indexed items, {QUERIES} queries, {os.path.basename(BIN)} at {BIN}")
    print(f"{'query':<10} {'p50 ms':>8} {'p99 ms':>8}")
    for kind, ts in times.items():
        print(f"{kind:<10} {pct(ts, 50):8.1f} {pct(ts, 99):8.1f}")
    print(f"{'all':<10} {pct(every, 50):8.1f} {pct(every, 99):8.1f}")
    print(json.dumps({
        "bench": "search_latency", "items": indexed, "queries": QUERIES, "binary": BIN,
        "p50_ms": round(pct(every, 50), 2), "p99_ms": round(pct(every, 99), 2),
        "by_kind": {k: {"p50_ms": round(pct(v, 50), 2), "p99_ms": round(pct(v, 99), 2)}
                    for k, v in times.items()},
    }))


if __name__ == "__main__":
    sys.exit(main())
