"""Fuzz ``duetto serve``: the HTTP API from its OpenAPI schema, the realtime WebSocket with
malformed frames and events; then check the server still answers and what it holds in memory.

Starts ``duetto serve`` (embedded models, rate limit off so every case reaches its route) on a
free port, runs schemathesis over every operation (positive and negative cases; checks: no 5xx,
documented status, content type and schema), then duetto.safety.hardening.fuzz_realtime, and
prints one table. The server's RSS is read from /proc before and after.

    python bench/fuzz_server.py [--examples 50] [--ws-cases 400] [--seed 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from duetto.safety.hardening import fuzz_http, fuzz_realtime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    pages = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=10) as r:
            return json.load(r)["status"] == "ok"
    except Exception:  # noqa: BLE001
        return False


def start_server(port: int) -> subprocess.Popen:
    duetto = Path(sys.executable).with_name("duetto")
    cmd = [str(duetto), "serve", "--port", str(port), "--rate-limit", "0", "--log-level", "error"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while not healthy(url):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"server did not start: {proc.stderr.read()[-2000:]}")
        time.sleep(0.5)
    return proc


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=50, help="cases per operation and mode")
    parser.add_argument("--ws-cases", type=int, default=400, help="malformed realtime messages")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    print(f"starting duetto serve on {url} ...", file=sys.stderr, flush=True)
    proc = start_server(port)
    try:
        rss_before = rss_mb(proc.pid)
        print("fuzzing the HTTP API (schemathesis) ...", file=sys.stderr, flush=True)
        http = fuzz_http(url, examples=args.examples, seed=args.seed)
        rss_mid = rss_mb(proc.pid)
        print("fuzzing the realtime WebSocket ...", file=sys.stderr, flush=True)
        ws = asyncio.run(
            fuzz_realtime(f"ws://127.0.0.1:{port}/v1/realtime", args.ws_cases, args.seed)
        )
        time.sleep(1.0)
        alive = proc.poll() is None and healthy(url)
        rss_after = rss_mb(proc.pid) if proc.poll() is None else float("nan")
    finally:
        proc.terminate()
        proc.wait(timeout=30)

    print(f"\n## duetto serve fuzzing (seed {args.seed})\n")
    print("| target | cases | 5xx / crashes | check failures | outcomes | seconds |")
    print("| --- | ---: | ---: | ---: | --- | ---: |")
    for name, r in (("HTTP (schemathesis, OpenAPI)", http), ("realtime WebSocket", ws)):
        outcomes = ", ".join(f"{k}: {v}" for k, v in sorted(r.statuses.items()))
        row = f"| {name} | {r.cases} | {len(r.server_errors)} | {len(r.check_failures)} |"
        print(f"{row} {outcomes} | {r.seconds:.0f} |")
    print(f"\n/healthz after: {'ok' if alive else 'NOT ANSWERING'}")
    print(
        f"server RSS: {rss_before:.0f} MB before, {rss_mid:.0f} MB after HTTP, "
        f"{rss_after:.0f} MB after WebSocket"
    )
    for line in (http.server_errors + ws.server_errors)[:20]:
        print("  5xx/crash:", line)
    for line in http.check_failures[:20]:
        print("  check:", line)
    return 0 if alive and not http.server_errors and not ws.server_errors else 1


if __name__ == "__main__":
    sys.exit(main())
