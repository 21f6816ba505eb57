"""Load test of ``cnnkit serve`` on loopback: throughput and latency percentiles at several
numbers of concurrent clients, with dynamic batching on and off (batch-1 serving).

    python bench/serve_load.py MODEL.cnnkit [--clients 1 8 32 128] [--seconds 8]
                               [--requests 4000] [--markdown]

Each setting starts its own server process (``cnnkit serve``), warms it up, then runs the
clients for at most ``--seconds`` or ``--requests`` requests, whichever ends first (bounded
in time and work). The clients are keep-alive HTTP/1.1 connections on one asyncio loop in
this process, each sending one 28x28 PNG digit per request and waiting for the answer
(closed loop). Every answer is checked (status 200, a prediction in the body).
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _pngs(count: int) -> list[bytes]:
    """PNG files of held-out mnist5k digits (a varied stream: the drift monitor stays quiet)."""
    from PIL import Image

    from cnnkit.datasets import mnist5k

    (_, _), (xv, _) = mnist5k.load_data()
    out = []
    for i in range(count):
        buf = io.BytesIO()
        Image.fromarray(xv[i % len(xv)].reshape(28, 28).astype(np.uint8)).save(buf, "PNG")
        out.append(buf.getvalue())
    return out


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, port: int, batch: int, wait_ms: float) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.Popen([sys.executable, "-m", "cnnkit.cli", "serve", f"m={model}",
                             "--port", str(port), "--max-batch-size", str(batch),
                             "--max-wait-ms", str(wait_ms), "--queue-length", "1024",
                             "--reload-interval", "0", "--log-level", "warning"], env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the server did not start")


async def _client(port: int, bodies: list[bytes], stop_at: float, budget: list[int],
                  lat: list[float], errors: list[str]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while time.perf_counter() < stop_at and budget[0] > 0:
            budget[0] -= 1
            body = bodies[budget[0] % len(bodies)]
            head = (f"POST /v1/models/m:predict?top_k=3 HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    f"Content-Type: image/png\r\nContent-Length: {len(body)}\r\n\r\n")
            t = time.perf_counter()
            writer.write(head.encode() + body)
            await writer.drain()
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            payload = await reader.readexactly(length)
            lat.append(time.perf_counter() - t)
            if b" 200 " not in status_line or b"predictions" not in payload:
                errors.append(status_line.decode().strip())
    finally:
        writer.close()


async def _load(port: int, body: list[bytes], clients: int, seconds: float, requests: int
                ) -> dict:
    lat: list[float] = []
    errors: list[str] = []
    budget = [requests]
    start = time.perf_counter()
    await asyncio.gather(*[_client(port, body, start + seconds, budget, lat, errors)
                           for _ in range(clients)])
    wall = time.perf_counter() - start
    ms = np.array(lat) * 1000
    return {"clients": clients, "requests": len(lat), "errors": len(errors),
            "rps": len(lat) / wall, "p50": float(np.percentile(ms, 50)),
            "p95": float(np.percentile(ms, 95)), "p99": float(np.percentile(ms, 99))}


def _batches(port: int) -> tuple[float, float]:
    """(model calls, samples) from the server's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    calls = samples = 0.0
    for line in text.splitlines():
        if line.startswith("cnnkit_batch_size_count"):
            calls = float(line.split()[-1])
        elif line.startswith("cnnkit_batch_size_sum"):
            samples = float(line.split()[-1])
    return calls, samples


def run_setting(model: str, batching: bool, levels: list[int], seconds: float,
                requests: int, body: list[bytes]) -> list[dict]:
    port = _free_port()
    proc = start_server(model, port, 32 if batching else 1, 5.0 if batching else 0.0)
    try:
        asyncio.run(_load(port, body, 4, 1.0, 200))  # warm-up
        rows = []
        for c in levels:
            c0, s0 = _batches(port)
            cpu0 = _cpu_seconds(proc.pid)
            row = asyncio.run(_load(port, body, c, seconds, requests))
            cpu1 = _cpu_seconds(proc.pid)
            c1, s1 = _batches(port)
            row["mean_batch"] = (s1 - s0) / max(c1 - c0, 1)
            row["server_cpu_ms"] = (cpu1 - cpu0) * 1000 / max(row["requests"], 1)
            row["batching"] = batching
            rows.append(row)
            print(json.dumps(row), flush=True)
        return rows
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


def markdown(rows: list[dict]) -> str:
    out = ["| batching | clients | requests | req/s | p50 ms | p95 ms | p99 ms | mean batch "
           "| server CPU ms/req | errors |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        out.append(f"| {'on (32, 5 ms)' if r['batching'] else 'off (batch 1)'} | "
                   f"{r['clients']} | {r['requests']} | {r['rps']:.0f} | {r['p50']:.1f} | "
                   f"{r['p95']:.1f} | {r['p99']:.1f} | {r['mean_batch']:.1f} | "
                   f"{r['server_cpu_ms']:.2f} | {r['errors']} |")
    on = {r["clients"]: r for r in rows if r["batching"]}
    off = {r["clients"]: r for r in rows if not r["batching"]}
    ratios = ", ".join(f"{c} clients {on[c]['rps'] / off[c]['rps']:.2f}x" for c in sorted(on)
                       if c in off)
    cpu = ", ".join(f"{c} clients {off[c]['server_cpu_ms'] / on[c]['server_cpu_ms']:.2f}x"
                    for c in sorted(on) if c in off)
    out.append("")
    out.append(f"Throughput with batching / batch-1 serving: {ratios}.")
    out.append(f"Server CPU per request, batch-1 / batching: {cpu}.")
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("model")
    p.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32, 128])
    p.add_argument("--seconds", type=float, default=8.0)
    p.add_argument("--requests", type=int, default=4000)
    args = p.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    body = _pngs(256)
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}", flush=True)
    rows = []
    for batching in (True, False):
        rows += run_setting(args.model, batching, args.clients, args.seconds, args.requests,
                            body)
    print(markdown(rows))


if __name__ == "__main__":
    main()
