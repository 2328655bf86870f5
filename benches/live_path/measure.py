#!/usr/bin/env python3
"""Measurement helpers for benches/live_path/run.sh (Python standard library only).

Subcommands (all output on stdout, errors on stderr with a non-zero exit):

  port-free HOST PORT            exit 0 if nothing listens on HOST:PORT
  wait-tcp HOST PORT TIMEOUT     wait until HOST:PORT accepts a connection
  wait-http URL TIMEOUT          wait until URL answers 200
  http-status URL                print the HTTP status of GET URL (0 if unreachable)
  tree PID                       print PID and its direct children (nginx master + workers)
  workers PID                    print the children of PID named "... worker process"
  cpu PID...                     print utime+stime of the PIDs, summed, in seconds
  hwm PID...                     print VmHWM (peak RSS) of the PIDs, summed, in KiB
  metric URL NAME [LABEL=VALUE...]
                                 print the sum of the Prometheus samples NAME whose
                                 labels include all the given LABEL=VALUE pairs
  latency URL                    print p50/p99 of panocast_part_latency_seconds per track
  table RESULTS.tsv              print the load table (see run.sh for the columns)
"""

import os
import re
import socket
import sys
import time
import urllib.error
import urllib.request

CLK_TCK = os.sysconf("SC_CLK_TCK")


def die(msg):
    print(f"measure.py: {msg}", file=sys.stderr)
    sys.exit(1)


def port_free(host, port):
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, int(port))) != 0


def wait_tcp(host, port, timeout):
    deadline = time.monotonic() + float(timeout)
    while time.monotonic() < deadline:
        if not port_free(host, port):
            return
        time.sleep(0.1)
    die(f"nothing listening on {host}:{port} after {timeout}s")


def http_status(url, timeout=5.0):
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            resp.read()
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code
    except (urllib.error.URLError, OSError):
        return 0


def wait_http(url, timeout):
    deadline = time.monotonic() + float(timeout)
    while time.monotonic() < deadline:
        if http_status(url, timeout=1.0) == 200:
            return
        time.sleep(0.2)
    die(f"{url} did not answer 200 within {timeout}s")


def stat_fields(pid):
    with open(f"/proc/{pid}/stat") as f:
        data = f.read()
    # comm (field 2) may contain spaces and parentheses: split after the last ')'.
    return data[data.rindex(")") + 2 :].split()


def children(pid):
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            # After the comm: state(3) ppid(4) -> index 1 here.
            if int(stat_fields(entry)[1]) == int(pid):
                out.append(int(entry))
        except (OSError, ValueError):
            continue
    return sorted(out)


def cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def cpu_seconds(pids):
    total = 0
    for pid in pids:
        f = stat_fields(pid)
        # utime(14) stime(15) in clock ticks; fields after comm start at 3.
        total += int(f[14 - 3]) + int(f[15 - 3])
    return total / CLK_TCK


def hwm_kib(pids):
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1])
                    break
    return total


SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+(\S+)")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def samples(url):
    with urllib.request.urlopen(url, timeout=5) as resp:
        text = resp.read().decode()
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            continue
        labels = dict(LABEL.findall(m.group(3) or ""))
        try:
            value = float(m.group(4))
        except ValueError:
            continue
        yield m.group(1), labels, value


def metric(url, name, wanted):
    found = [v for n, l, v in samples(url) if n == name and all(l.get(k) == x for k, x in wanted.items())]
    return sum(found) if found else None


def latency(url):
    rows = {}
    for name, labels, value in samples(url):
        track = labels.get("track")
        if track is None:
            continue
        if name == "panocast_part_latency_seconds" and "quantile" in labels:
            rows.setdefault(track, {})[labels["quantile"]] = value
        elif name == "panocast_part_latency_seconds_count":
            rows.setdefault(track, {})["count"] = value
    if not rows:
        die(f"no panocast_part_latency_seconds samples at {url}")

    def ms(v):
        return "-" if v is None else f"{v * 1000:.1f}"

    print(f"{'track':<8}{'p50 ms':>10}{'p99 ms':>10}{'frames':>10}")
    for track in sorted(rows):
        r = rows[track]
        count = r.get("count")
        print(
            f"{track:<8}{ms(r.get('0.5')):>10}{ms(r.get('0.99')):>10}"
            f"{'-' if count is None else int(count):>10}"
        )


def table(path):
    # publishers server cpu_s media_s rss_kib note
    runs = {}
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 5 or parts[0] == "publishers":
                continue
            n, server, cpu, media, rss = parts[:5]
            note = parts[5] if len(parts) > 5 else ""
            runs.setdefault(int(n), {})[server] = (float(cpu), float(media), int(rss), note)

    head = f"{'publishers':>10}  {'server':<16}{'CPU s':>9}{'CPU s/stream/media-s':>22}{'peak RSS MiB':>14}  note"
    print(head)
    print("-" * len(head))
    for n in sorted(runs):
        by = runs[n]
        per = {}
        for server, (cpu, media, rss, note) in by.items():
            per[server] = cpu / media if media > 0 else float("nan")
            print(f"{n:>10}  {server:<16}{cpu:>9.2f}{per[server]:>22.4f}{rss / 1024:>14.1f}  {note}")
        if "panocast" in by and "nginx" in by:
            p, x = by["panocast"], by["nginx"]

            def ratio(a, b):
                return f"{a / b:.2f}" if b else "-"

            print(
                f"{n:>10}  {'panocast/nginx':<16}{ratio(p[0], x[0]):>9}"
                f"{ratio(per['panocast'], per['nginx']):>22}{ratio(p[2], x[2]):>14}"
            )


def main(argv):
    if len(argv) < 2:
        die(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "port-free":
        sys.exit(0 if port_free(*args) else 1)
    elif cmd == "wait-tcp":
        wait_tcp(*args)
    elif cmd == "wait-http":
        wait_http(*args)
    elif cmd == "http-status":
        print(http_status(args[0]))
    elif cmd == "tree":
        pid = int(args[0])
        print(" ".join(str(p) for p in [pid] + children(pid)))
    elif cmd == "workers":
        print(" ".join(str(p) for p in children(int(args[0])) if "worker process" in cmdline(p)))
    elif cmd == "cpu":
        print(f"{cpu_seconds(args):.3f}")
    elif cmd == "hwm":
        print(hwm_kib(args))
    elif cmd == "metric":
        wanted = dict(a.split("=", 1) for a in args[2:])
        v = metric(args[0], args[1], wanted)
        print("-" if v is None else f"{v:g}")
    elif cmd == "latency":
        latency(args[0])
    elif cmd == "table":
        table(args[0])
    else:
        die(f"unknown subcommand {cmd!r}\n{__doc__}")


if __name__ == "__main__":
    main(sys.argv)
